/// What the gateway needs from an upstream's response head to relay it: the status, how the body
/// is framed, and whether the connection may be reused.
public struct ResponseHead: Sendable, Equatable {
    public var status = 0
    public var isHTTP11 = true
    /// `-1` when there is no Content-Length.
    public var contentLength: Int64 = -1
    /// Transfer-Encoding ends with `chunked`.
    public var isChunked = false
    /// Transfer-Encoding is present but does not end with `chunked`: the body runs until close.
    public var hasOtherTransferEncoding = false
    /// The upstream will close after this response (Connection: close, or HTTP/1.0 without keep-alive).
    public var closes = false
    /// Bytes of the head, the empty line included.
    public var headLength = 0
    /// Offset and length of the reason phrase in the head.
    public var reasonStart = 0
    public var reasonCount = 0

    public init() {}

    /// Whether this is an interim (1xx) response that a final one follows.
    public var isInterim: Bool { status >= 100 && status < 200 && status != 101 }
}
