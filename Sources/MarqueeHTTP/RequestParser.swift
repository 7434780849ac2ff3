/// A strict HTTP/1.1 request-head parser (RFC 9110/9112). It reads a complete head, whose end
/// `HeadBoundary` found, in one pass without allocating, and refuses every shape that lets two
/// parsers disagree on where a request ends: Content-Length with Transfer-Encoding, duplicate or
/// malformed Content-Length, obs-fold, whitespace before the colon, control characters, and any
/// Transfer-Encoding but a single `chunked` (501).
///
/// Cost: one pass over the head; no allocation.
public enum RequestParser {
    public enum Result: Equatable, Sendable {
        case complete(RequestHead)
        case failed(HTTPError)
    }

    /// Parses `bytes[0..<headLength]`, a head that ends with an empty line.
    public static func parse(_ bytes: UnsafeRawBufferPointer, headLength: Int, limits: RequestLimits = RequestLimits()) -> Result {
        var head = RequestHead()
        head.headLength = headLength
        var i = 0
        // RFC 9112 §2.2: empty lines before the request line are skipped.
        while i + 1 < headLength && bytes[i] == 0x0D && bytes[i + 1] == 0x0A { i += 2 }

        // method SP
        let methodStart = i
        while i < headLength && Token.isTChar(bytes[i]) { i += 1 }
        if i == methodStart || i >= headLength || bytes[i] != 0x20 {
            return .failed(HTTPError(.badRequest, "malformed request method"))
        }
        head.method = method(UnsafeRawBufferPointer(rebasing: bytes[methodStart..<i]))
        i += 1

        // request-target SP
        let targetStart = i
        var queryStart = -1
        while i < headLength {
            // Until the query starts, skip eight plain path bytes at a time.
            if queryStart < 0 {
                while i + 8 <= headLength && !SWAR.hasTargetStop(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { i += 8 }
                if i >= headLength { break }
            }
            let b = bytes[i]
            if b == 0x20 { break }
            if b <= 0x20 || b >= 0x7F { return .failed(HTTPError(.badRequest, "invalid character in request target")) }
            if b == 0x3F && queryStart < 0 { queryStart = i }
            i += 1
        }
        if i == targetStart || i >= headLength { return .failed(HTTPError(.badRequest, "malformed request target")) }
        if i - targetStart > limits.maxRequestLineBytes { return .failed(HTTPError(.uriTooLong, "request target too long")) }
        head.target = ByteSlice(start: targetStart, count: i - targetStart)
        let pathEnd = queryStart >= 0 ? queryStart : i
        if let pathStart = pathStart(bytes, from: targetStart, to: pathEnd) {
            head.path = ByteSlice(start: pathStart, count: pathEnd - pathStart)
        } else if !(i - targetStart == 1 && bytes[targetStart] == 0x2A && head.method == .options) {
            return .failed(HTTPError(.badRequest, "request target is not a path"))
        }
        i += 1

        // HTTP-version CRLF
        guard i + 10 <= headLength, bytes[i + 8] == 0x0D, bytes[i + 9] == 0x0A else {
            return .failed(HTTPError(.badRequest, "malformed HTTP version"))
        }
        let version = UnsafeRawBufferPointer(rebasing: bytes[i..<(i + 8)])
        if version.equals("HTTP/1.1") {
            head.isHTTP11 = true
        } else if version.equals("HTTP/1.0") {
            head.isHTTP11 = false
            head.keepAlive = false
        } else if version.equals("HTTP/2.0") || (version[0..<5].elementsEqual("HTTP/".utf8) && isDigit(version[5])
            && version[6] == 0x2E && isDigit(version[7]))
        {
            return .failed(HTTPError(.httpVersionNotSupported, "only HTTP/1.0 and HTTP/1.1 are supported"))
        } else {
            return .failed(HTTPError(.badRequest, "malformed HTTP version"))
        }
        i += 10

        // header fields
        var sawContentLength = false
        var sawHost = false
        var connectionClose = false
        var connectionKeepAlive = false
        while i < headLength {
            if bytes[i] == 0x0D { break }  // the empty line (HeadBoundary guarantees CRLF)
            if bytes[i] == 0x20 || bytes[i] == 0x09 {
                return .failed(HTTPError(.badRequest, "obsolete line folding is not accepted"))
            }
            let nameStart = i
            while i < headLength && Token.isTChar(bytes[i]) { i += 1 }
            if i == nameStart || i >= headLength || bytes[i] != 0x3A {
                return .failed(HTTPError(.badRequest, "malformed header field name"))
            }
            let name = UnsafeRawBufferPointer(rebasing: bytes[nameStart..<i])
            i += 1
            while i < headLength && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 }
            let valueStart = i
            var valueEnd = i
            while i < headLength {
                let b = bytes[i]
                if b == 0x0D { break }
                if (b < 0x20 && b != 0x09) || b == 0x7F {
                    return .failed(HTTPError(.badRequest, "control character in header field value"))
                }
                i += 1
                if b != 0x20 && b != 0x09 { valueEnd = i }
            }
            guard i + 1 < headLength else { return .failed(HTTPError(.badRequest, "unterminated header field")) }
            i += 2  // CRLF
            head.headerCount += 1
            if head.headerCount > limits.maxHeaderCount {
                return .failed(HTTPError(.requestHeaderFieldsTooLarge, "too many header fields"))
            }
            let value = ByteSlice(start: valueStart, count: valueEnd - valueStart)
            let valueBytes = UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd])

            switch Field(name) {
            case .host:
                if sawHost { return .failed(HTTPError(.badRequest, "duplicate Host header")) }
                sawHost = true
                head.host = value
            case .contentLength:
                if sawContentLength { return .failed(HTTPError(.badRequest, "duplicate Content-Length")) }
                sawContentLength = true
                guard let length = decimal(valueBytes) else {
                    return .failed(HTTPError(.badRequest, "malformed Content-Length"))
                }
                head.contentLength = length
            case .transferEncoding:
                // RFC 9112 §6.1: a coding the server does not understand gets 501. The only one
                // understood is a single `chunked`; a list or a second line could hide another.
                if head.hasTransferEncoding || !valueBytes.equalsLowercase("chunked") {
                    return .failed(HTTPError(.notImplemented, "only Transfer-Encoding: chunked is supported"))
                }
                head.hasTransferEncoding = true
            case .connection:
                scanConnectionTokens(valueBytes, close: &connectionClose, keepAlive: &connectionKeepAlive)
            case .range: head.range = value
            case .ifNoneMatch: head.ifNoneMatch = value
            case .ifModifiedSince: head.ifModifiedSince = value
            case .ifRange: head.ifRange = value
            case .ifMatch: head.ifMatch = value
            case .ifUnmodifiedSince: head.ifUnmodifiedSince = value
            case .origin: head.origin = value
            case .accessControlRequestMethod: head.accessControlRequestMethod = value
            case .accessControlRequestHeaders: head.accessControlRequestHeaders = value
            // Repeated lines: the last one is kept (the nearest proxy appends its own last).
            case .forwardedFor: head.forwardedFor = value
            case .forwarded: head.forwarded = value
            case .cmcdRequest: head.cmcdRequest = value
            case .cmcdObject: head.cmcdObject = value
            case .cmcdStatus: head.cmcdStatus = value
            case .cmcdSession: head.cmcdSession = value
            case .edgeSignature: head.edgeSignature = value
            case .other: break
            }
        }

        if head.hasTransferEncoding {
            if sawContentLength { return .failed(HTTPError(.badRequest, "Content-Length with Transfer-Encoding")) }
            if !head.isHTTP11 { return .failed(HTTPError(.badRequest, "Transfer-Encoding in an HTTP/1.0 request")) }
        }
        if head.isHTTP11 && !sawHost { return .failed(HTTPError(.badRequest, "missing Host header")) }
        if connectionClose {
            head.keepAlive = false
        } else if !head.isHTTP11 && connectionKeepAlive {
            head.keepAlive = true
        }
        return .complete(head)
    }

    /// Where the path starts in an origin-form (`/p?q`) or absolute-form (`http://h/p`) target.
    private static func pathStart(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int? {
        if start < end && bytes[start] == 0x2F { return start }
        // absolute-form: scheme "://" authority path-abempty
        var i = start
        while i < end && bytes[i] != 0x3A { i += 1 }
        guard i + 2 < end, bytes[i + 1] == 0x2F, bytes[i + 2] == 0x2F else { return nil }
        let scheme = UnsafeRawBufferPointer(rebasing: bytes[start..<i])
        guard scheme.equalsLowercase("http") || scheme.equalsLowercase("https") else { return nil }
        i += 3
        while i < end && bytes[i] != 0x2F { i += 1 }
        return i < end ? i : nil
    }

    @inlinable static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// A non-negative decimal of at most 18 digits (no sign, no spaces, no list).
    public static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value: Int64 = 0
        for b in bytes {
            guard isDigit(b) else { return nil }
            value = value * 10 + Int64(b &- 0x30)
        }
        return value
    }

    private static func method(_ token: UnsafeRawBufferPointer) -> HTTPMethod {
        switch token.count {
        case 3: return token.equals("GET") ? .get : token.equals("PUT") ? .put : .other
        case 4: return token.equals("HEAD") ? .head : token.equals("POST") ? .post : .other
        case 5: return token.equals("PATCH") ? .patch : .other
        case 6: return token.equals("DELETE") ? .delete : .other
        case 7: return token.equals("OPTIONS") ? .options : .other
        default: return .other
        }
    }

    private static func scanConnectionTokens(_ value: UnsafeRawBufferPointer, close: inout Bool, keepAlive: inout Bool) {
        var start = 0
        while start < value.count {
            var end = start
            while end < value.count && value[end] != 0x2C { end += 1 }
            var s = start
            var e = end
            while s < e && (value[s] == 0x20 || value[s] == 0x09) { s += 1 }
            while e > s && (value[e - 1] == 0x20 || value[e - 1] == 0x09) { e -= 1 }
            let token = UnsafeRawBufferPointer(rebasing: value[s..<e])
            if token.equalsLowercase("close") { close = true }
            if token.equalsLowercase("keep-alive") { keepAlive = true }
            start = end + 1
        }
    }

    /// The header fields the gateway acts on.
    private enum Field {
        case host, contentLength, transferEncoding, connection, range, ifNoneMatch, ifModifiedSince, ifRange,
            ifMatch, ifUnmodifiedSince, origin, accessControlRequestMethod, accessControlRequestHeaders, forwardedFor,
            forwarded, cmcdRequest, cmcdObject, cmcdStatus, cmcdSession, edgeSignature, other

        init(_ name: UnsafeRawBufferPointer) {
            switch name.count {
            case 4: self = name.equalsLowercase("host") ? .host : .other
            case 5: self = name.equalsLowercase("range") ? .range : .other
            case 6: self = name.equalsLowercase("origin") ? .origin : .other
            case 8:
                self = name.equalsLowercase("if-match") ? .ifMatch : name.equalsLowercase("if-range") ? .ifRange : .other
            case 9: self = name.equalsLowercase("forwarded") ? .forwarded : .other
            case 10: self = name.equalsLowercase("connection") ? .connection : .other
            case 11:
                self =
                    name.equalsLowercase("cmcd-object") ? .cmcdObject : name.equalsLowercase("cmcd-status") ? .cmcdStatus : .other
            case 12:
                self =
                    name.equalsLowercase("cmcd-request")
                    ? .cmcdRequest
                    : name.equalsLowercase("cmcd-session") ? .cmcdSession : name.equalsLowercase("marquee-edge") ? .edgeSignature : .other
            case 15: self = name.equalsLowercase("x-forwarded-for") ? .forwardedFor : .other
            case 13: self = name.equalsLowercase("if-none-match") ? .ifNoneMatch : .other
            case 14: self = name.equalsLowercase("content-length") ? .contentLength : .other
            case 17:
                self =
                    name.equalsLowercase("if-modified-since")
                    ? .ifModifiedSince : name.equalsLowercase("transfer-encoding") ? .transferEncoding : .other
            case 19: self = name.equalsLowercase("if-unmodified-since") ? .ifUnmodifiedSince : .other
            case 29: self = name.equalsLowercase("access-control-request-method") ? .accessControlRequestMethod : .other
            case 30: self = name.equalsLowercase("access-control-request-headers") ? .accessControlRequestHeaders : .other
            default: self = .other
            }
        }
    }
}

/// RFC 9110 token characters.
enum Token {
    @inline(__always) static func isTChar(_ b: UInt8) -> Bool {
        switch b {
        case 0x61...0x7A, 0x41...0x5A, 0x30...0x39: true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: true
        default: false
        }
    }
}
