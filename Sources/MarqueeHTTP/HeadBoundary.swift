/// Finds where a request head ends as bytes arrive, resuming where the previous call stopped so a
/// client that sends one byte at a time costs linear work. It also refuses the framing errors a
/// request smuggler relies on (bare CR, bare LF) and enforces the line and head size limits as
/// soon as they are crossed, before the head is complete.
public struct HeadBoundary: Sendable {
    public enum Result: Equatable, Sendable {
        /// More bytes are needed.
        case incomplete
        /// The head ends at this offset (just past the empty line).
        case complete(headLength: Int)
        case failed(HTTPError)
    }

    /// Offset up to which bytes were examined.
    public private(set) var scanned = 0
    /// Offset just past the request line's LF, or 0 while not seen.
    private var requestLineEnd = 0
    /// Offset where the current line started.
    private var lineStart = 0
    /// Leading empty lines (RFC 9112 §2.2 lets a server skip them before the request line).
    private var leadingSkipped = 0

    public init() {}

    public mutating func reset() { self = HeadBoundary() }

    /// Examines `bytes[scanned...]`; `bytes` is everything received for this request so far.
    public mutating func scan(_ bytes: UnsafeRawBufferPointer, limits: RequestLimits) -> Result {
        var i = scanned
        let n = bytes.count
        while i < n {
            // Most bytes are neither CR nor LF: skip them eight at a time (unless the previous byte
            // was a CR, whose LF the byte-wise path below must check).
            if i == 0 || bytes[i - 1] != 0x0D {
                let start = i
                while i + 8 <= n && !SWAR.hasCROrLF(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { i += 8 }
                if i != start {
                    if requestLineEnd == 0 && i - lineStart > limits.maxRequestLineBytes + 1 {
                        return .failed(HTTPError(.uriTooLong, "request line too long"))
                    }
                    if i > limits.maxHeadBytes {
                        return .failed(HTTPError(.requestHeaderFieldsTooLarge, "request head too large"))
                    }
                    if i >= n { break }
                }
            }
            let b = bytes[i]
            if b == 0x0A {  // LF must follow CR
                if i == 0 || bytes[i - 1] != 0x0D { return .failed(HTTPError(.badRequest, "bare LF in request head")) }
                if i - 1 == lineStart {  // empty line
                    if requestLineEnd == 0 {
                        // empty line before the request line: tolerate a few, as RFC 9112 allows
                        leadingSkipped += 1
                        if leadingSkipped > 4 { return .failed(HTTPError(.badRequest, "empty lines before request line")) }
                    } else {
                        // the final LF returns before the size check below: count it here
                        if i >= limits.maxHeadBytes {
                            return .failed(HTTPError(.requestHeaderFieldsTooLarge, "request head too large"))
                        }
                        scanned = i + 1
                        return .complete(headLength: i + 1)
                    }
                } else if requestLineEnd == 0 {
                    requestLineEnd = i + 1
                }
                lineStart = i + 1
            } else if i > 0 && bytes[i - 1] == 0x0D {
                return .failed(HTTPError(.badRequest, "bare CR in request head"))
            }
            i += 1
            // the line's CR may follow maxRequestLineBytes bytes; its LF never gets here (requestLineEnd is set)
            if requestLineEnd == 0 && i - lineStart > limits.maxRequestLineBytes + 1 {
                return .failed(HTTPError(.uriTooLong, "request line too long"))
            }
            if i > limits.maxHeadBytes {
                return .failed(HTTPError(.requestHeaderFieldsTooLarge, "request head too large"))
            }
        }
        scanned = i
        return .incomplete
    }
}

/// Eight bytes tested at once (SIMD within a register), for the scans every request goes through.
enum SWAR {
    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Whether any byte of `word` is zero.
    @inline(__always) static func hasZeroByte(_ word: UInt64) -> Bool {
        (word &- ones) & ~word & highs != 0
    }

    @inline(__always) static func hasCROrLF(_ word: UInt64) -> Bool {
        hasZeroByte(word ^ (ones &* 0x0D)) || hasZeroByte(word ^ (ones &* 0x0A))
    }

    /// Whether any byte is a control or space (≤ 0x20), DEL or non-ASCII (≥ 0x7F), or `?`: the
    /// bytes a request target's scan must stop at.
    @inline(__always) static func hasTargetStop(_ word: UInt64) -> Bool {
        let low = (word &- ones &* 0x21) & ~word & highs  // some byte < 0x21
        let high = ((word & ~highs) &+ ones &* 0x01 | word) & highs  // some byte ≥ 0x7F
        return low != 0 || high != 0 || hasZeroByte(word ^ (ones &* 0x3F))
    }
}
