import MarqueeHTTP

/// Runs `body` over the UTF-8 bytes of `text`, the way a server sees what arrived on a socket.
func withBytes<R>(_ text: String, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try Array(text.utf8).withUnsafeBytes(body)
}

/// What a request head came to after `HeadBoundary` and `RequestParser`, with the slices the
/// tests look at already turned into Strings (the buffer they refer to is gone by then).
struct ParsedRequest {
    var head: RequestHead
    var target: String?
    var path: String?
    var host: String?
    var range: String?
    var ifNoneMatch: String?
    var ifModifiedSince: String?
    var ifRange: String?
    var ifMatch: String?
    var ifUnmodifiedSince: String?
    var origin: String?
    var accessControlRequestMethod: String?
    var accessControlRequestHeaders: String?

    init(_ head: RequestHead, in buffer: UnsafeRawBufferPointer) {
        self.head = head
        target = head.target.string(in: buffer)
        path = head.path.string(in: buffer)
        host = head.host.string(in: buffer)
        range = head.range.string(in: buffer)
        ifNoneMatch = head.ifNoneMatch.string(in: buffer)
        ifModifiedSince = head.ifModifiedSince.string(in: buffer)
        ifRange = head.ifRange.string(in: buffer)
        ifMatch = head.ifMatch.string(in: buffer)
        ifUnmodifiedSince = head.ifUnmodifiedSince.string(in: buffer)
        origin = head.origin.string(in: buffer)
        accessControlRequestMethod = head.accessControlRequestMethod.string(in: buffer)
        accessControlRequestHeaders = head.accessControlRequestHeaders.string(in: buffer)
    }
}

enum RequestOutcome {
    /// `HeadBoundary` wants more bytes.
    case incomplete
    case failed(HTTPError)
    case parsed(ParsedRequest)

    /// The status the server answers with, or nil when the head parsed (or is incomplete).
    var status: HTTPStatus? {
        if case .failed(let error) = self { return error.status }
        return nil
    }

    var request: ParsedRequest? {
        if case .parsed(let request) = self { return request }
        return nil
    }

    var head: RequestHead? { request?.head }
}

/// Feeds `bytes` to a fresh `HeadBoundary` in one piece and, when it finds a complete head,
/// parses it: the path a connection takes for every request.
func receive(_ bytes: UnsafeRawBufferPointer, limits: RequestLimits = RequestLimits()) -> RequestOutcome {
    var boundary = HeadBoundary()
    switch boundary.scan(bytes, limits: limits) {
    case .incomplete: return .incomplete
    case .failed(let error): return .failed(error)
    case .complete(let headLength):
        switch RequestParser.parse(bytes, headLength: headLength, limits: limits) {
        case .failed(let error): return .failed(error)
        case .complete(let head): return .parsed(ParsedRequest(head, in: bytes))
        }
    }
}

func receive(_ text: String, limits: RequestLimits = RequestLimits()) -> RequestOutcome {
    withBytes(text) { receive($0, limits: limits) }
}

func receive(bytes: [UInt8], limits: RequestLimits = RequestLimits()) -> RequestOutcome {
    bytes.withUnsafeBytes { receive($0, limits: limits) }
}

/// A GET for `/` with a Host header and `fields` (each without CRLF), terminated by the empty line.
func makeRequest(_ fields: String..., version: String = "HTTP/1.1", method: String = "GET", target: String = "/")
    -> String
{
    var text = "\(method) \(target) \(version)\r\n"
    for field in fields { text += field + "\r\n" }
    return text + "\r\n"
}

/// `makeRequest(...)` with the fields as an array.
func makeRequest(fields: [String], version: String = "HTTP/1.1", method: String = "GET") -> String {
    var text = "\(method) / \(version)\r\n"
    for field in fields { text += field + "\r\n" }
    return text + "\r\n"
}

