/// Request methods the gateway distinguishes; every other valid token is `.other`.
public enum HTTPMethod: UInt8, Sendable {
    case get, head, options, post, put, delete, patch, other
}

/// A parsed HTTP/1.x request head. Header values are slices of the buffer it was parsed from,
/// so the head is only meaningful while that buffer is.
public struct RequestHead: Sendable, Equatable {
    public var method: HTTPMethod = .other
    /// `true` for HTTP/1.1, `false` for HTTP/1.0.
    public var isHTTP11 = true
    /// The request target as sent (origin-form path and query, `*`, or absolute-form).
    public var target = ByteSlice.none
    /// The path part of the target, still percent-encoded, without the query.
    public var path = ByteSlice.none
    /// Whether the connection may carry another request after this one.
    public var keepAlive = true
    /// The declared body length; `-1` when there is no Content-Length.
    public var contentLength: Int64 = -1
    /// Whether Transfer-Encoding was present (the gateway never reads request bodies).
    public var hasTransferEncoding = false
    public var host = ByteSlice.none
    public var range = ByteSlice.none
    public var ifNoneMatch = ByteSlice.none
    public var ifModifiedSince = ByteSlice.none
    public var ifRange = ByteSlice.none
    public var ifMatch = ByteSlice.none
    public var ifUnmodifiedSince = ByteSlice.none
    public var origin = ByteSlice.none
    public var accessControlRequestMethod = ByteSlice.none
    public var accessControlRequestHeaders = ByteSlice.none
    /// `X-Forwarded-For` and `Forwarded` (RFC 7239): believed only from trusted proxies.
    public var forwardedFor = ByteSlice.none
    public var forwarded = ByteSlice.none
    /// The player's CMCD headers (CTA-5004), kept as sent for the delivery record.
    public var cmcdRequest = ByteSlice.none
    public var cmcdObject = ByteSlice.none
    public var cmcdStatus = ByteSlice.none
    public var cmcdSession = ByteSlice.none
    /// `Marquee-Edge`: an edge's signature on its fetch from the origin (`EdgeSignature`).
    public var edgeSignature = ByteSlice.none
    /// Number of header fields.
    public var headerCount = 0
    /// Bytes of the head, the final empty line included: where the next request (or body) starts.
    public var headLength = 0

    public init() {}

    /// The query of the target (after `?`), still percent-encoded; absent when there is none.
    @inlinable public var query: ByteSlice {
        guard target.isPresent, path.isPresent, target.end > path.end else { return .none }
        return ByteSlice(start: path.end + 1, count: target.end - path.end - 1)
    }

    /// Whether a body follows the head; the gateway answers such requests and then closes,
    /// because it never reads bodies.
    @inlinable public var hasBody: Bool { contentLength > 0 || hasTransferEncoding }
}

/// Limits a request head must respect.
public struct RequestLimits: Sendable {
    /// Longest request line, CRLF excluded; longer gets 414.
    public var maxRequestLineBytes: Int
    /// Largest head (request line and all fields); larger gets 431.
    public var maxHeadBytes: Int
    /// Most header fields; more gets 431.
    public var maxHeaderCount: Int

    public init(maxRequestLineBytes: Int = 8192, maxHeadBytes: Int = 16384, maxHeaderCount: Int = 100) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
    }
}
