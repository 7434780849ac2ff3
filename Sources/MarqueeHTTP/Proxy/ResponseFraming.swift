/// Where a relayed response body ends (RFC 9112 §6.3), fed the raw bytes as they arrive from the
/// upstream. A value-type state machine: `consume` says how many bytes belong to this response and
/// whether it is complete; the loop relays those bytes and acts on the verdict.
public struct ResponseFraming: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No body: HEAD, 1xx, 204, 304.
        case none
        case length(Int64)
        case chunked
        /// Until the upstream closes (no Content-Length, or a coding other than chunked last).
        case untilClose
    }

    public enum Verdict: Equatable, Sendable {
        /// All `count` bytes belong to the body; more are expected.
        case more
        /// The body ended after `consumed` bytes of this input; bytes after them do not belong to it.
        case complete(consumed: Int)
        case failed(reason: StaticString)

        public static func == (lhs: Verdict, rhs: Verdict) -> Bool {
            switch (lhs, rhs) {
            case (.more, .more): true
            case (.complete(let a), .complete(let b)): a == b
            case (.failed(let a), .failed(let b)): a.utf8Start == b.utf8Start
            default: false
            }
        }
    }

    public private(set) var kind: Kind
    private var remaining: Int64 = 0
    private var chunks = ChunkedDecoder()

    /// The framing of the body that follows `head`, answering a request of method `method`.
    public init(head: ResponseHead, requestMethod: HTTPMethod) {
        if requestMethod == .head || head.status < 200 || head.status == 204 || head.status == 304 {
            kind = .none
        } else if head.isChunked {
            kind = .chunked
        } else if head.hasOtherTransferEncoding {
            kind = .untilClose
        } else if head.contentLength >= 0 {
            kind = .length(head.contentLength)
            remaining = head.contentLength
        } else {
            kind = .untilClose
        }
    }

    /// Whether the body is already complete before any byte (no body, or Content-Length: 0).
    public var isCompleteWithoutBody: Bool {
        switch kind {
        case .none: true
        case .length(let n): n == 0
        default: false
        }
    }

    /// Examines `bytes` that followed what was consumed before.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        switch kind {
        case .none:
            return .complete(consumed: 0)
        case .length:
            let take = Int(min(remaining, Int64(bytes.count)))
            remaining -= Int64(take)
            return remaining == 0 ? .complete(consumed: take) : .more
        case .chunked:
            switch chunks.decode(bytes) {
            case .needMore: return .more
            case .complete(let consumed): return .complete(consumed: consumed)
            case .failed(let reason): return .failed(reason: reason)
            }
        case .untilClose:
            return .more
        }
    }

    /// Like `consume`, also handing each run of body data to `onData` (for chunked bodies, the
    /// decoded data without the framing; otherwise the bytes themselves).
    public mutating func consume(_ bytes: UnsafeRawBufferPointer, onData: (UnsafeRawBufferPointer) -> Void) -> Verdict {
        guard kind == .chunked else {
            let verdict = consume(bytes)
            switch verdict {
            case .more: onData(bytes)
            case .complete(let n): if n > 0 { onData(UnsafeRawBufferPointer(rebasing: bytes[0..<n])) }
            case .failed: break
            }
            return verdict
        }
        switch chunks.decode(bytes, onData: onData) {
        case .needMore: return .more
        case .complete(let consumed): return .complete(consumed: consumed)
        case .failed(let reason): return .failed(reason: reason)
        }
    }

    /// The upstream closed: whether that ends the body properly (only a close-delimited one).
    public var closeCompletes: Bool { kind == .untilClose }
}
