/// Reads the `chunked` transfer coding (RFC 9112 §7.1) as bytes arrive, in any split, without
/// allocating: sizes, extensions, data, the last chunk and the trailer section. It is strict where
/// two parsers could disagree on where a message ends: CRLF only (no bare LF or CR), hexadecimal
/// sizes of at most 15 digits, bounded extension and trailer lengths.
///
/// The gateway uses it twice: to de-chunk a request body it forwards with Content-Length, and to
/// find where a chunked response ends while relaying its bytes unchanged.
public struct ChunkedDecoder: Sendable, Equatable {
    public enum Outcome: Equatable, Sendable {
        /// Every byte given was consumed; the message goes on.
        case needMore
        /// The message ended after `consumed` bytes of this input (the rest belongs to what follows).
        case complete(consumed: Int)
        case failed(reason: StaticString)

        public static func == (lhs: Outcome, rhs: Outcome) -> Bool {
            switch (lhs, rhs) {
            case (.needMore, .needMore): true
            case (.complete(let a), .complete(let b)): a == b
            case (.failed(let a), .failed(let b)): a.utf8Start == b.utf8Start
            default: false
            }
        }
    }

    enum State: UInt8, Sendable {
        case sizeStart, size, sizeExtension, sizeLF, data, dataCR, dataLF, trailerStart, trailerLine, trailerLF, finalLF, done
    }

    /// Longest chunk-extension accepted per chunk, and longest trailer section, in bytes.
    public static let maxExtensionBytes = 1024
    public static let maxTrailerBytes = 8192

    private(set) var state = State.sizeStart
    private var remaining: Int64 = 0
    private var digits = 0
    private var lineBytes = 0
    private var trailerBytes = 0
    /// Data bytes decoded so far.
    public private(set) var dataBytes: Int64 = 0

    public init() {}

    public var isComplete: Bool { state == .done }

    /// Decodes `input`, calling `onData` with each run of data bytes (slices of `input`).
    public mutating func decode(_ input: UnsafeRawBufferPointer, onData: (UnsafeRawBufferPointer) -> Void = { _ in }) -> Outcome {
        var i = 0
        let n = input.count
        while i < n {
            let b = input[i]
            switch state {
            case .sizeStart, .size:
                if let v = Self.hexValue(b) {
                    digits += 1
                    if digits > 15 { return .failed(reason: "chunk size too large") }
                    remaining = remaining << 4 | Int64(v)
                    state = .size
                } else if state == .sizeStart {
                    return .failed(reason: "malformed chunk size")
                } else if b == 0x3B || b == 0x20 || b == 0x09 {
                    state = .sizeExtension
                    lineBytes = 0
                } else if b == 0x0D {
                    state = .sizeLF
                } else {
                    return .failed(reason: "malformed chunk size")
                }
                i += 1
            case .sizeExtension:
                if b == 0x0D {
                    state = .sizeLF
                } else if (b < 0x20 && b != 0x09) || b == 0x7F {
                    return .failed(reason: "control character in chunk extension")
                } else {
                    lineBytes += 1
                    if lineBytes > Self.maxExtensionBytes { return .failed(reason: "chunk extension too long") }
                }
                i += 1
            case .sizeLF:
                guard b == 0x0A else { return .failed(reason: "bare CR after chunk size") }
                i += 1
                digits = 0
                state = remaining == 0 ? .trailerStart : .data
            case .data:
                let take = Int(min(remaining, Int64(n - i)))
                onData(UnsafeRawBufferPointer(rebasing: input[i..<(i + take)]))
                dataBytes += Int64(take)
                remaining -= Int64(take)
                i += take
                if remaining == 0 { state = .dataCR }
            case .dataCR:
                guard b == 0x0D else { return .failed(reason: "chunk data longer than its size") }
                state = .dataLF
                i += 1
            case .dataLF:
                guard b == 0x0A else { return .failed(reason: "bare CR after chunk data") }
                state = .sizeStart
                i += 1
            case .trailerStart:
                if b == 0x0D {
                    state = .finalLF
                } else if b == 0x0A {
                    return .failed(reason: "bare LF in trailer section")
                } else {
                    state = .trailerLine
                    trailerBytes += 1
                }
                i += 1
            case .trailerLine:
                if b == 0x0D {
                    state = .trailerLF
                } else if b == 0x0A {
                    return .failed(reason: "bare LF in trailer section")
                } else {
                    trailerBytes += 1
                    if trailerBytes > Self.maxTrailerBytes { return .failed(reason: "trailer section too long") }
                }
                i += 1
            case .trailerLF:
                guard b == 0x0A else { return .failed(reason: "bare CR in trailer section") }
                state = .trailerStart
                i += 1
            case .finalLF:
                guard b == 0x0A else { return .failed(reason: "bare CR after the last chunk") }
                state = .done
                return .complete(consumed: i + 1)
            case .done:
                return .complete(consumed: 0)
            }
        }
        return state == .done ? .complete(consumed: n) : .needMore
    }

    @inline(__always) static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }
}
