import MarqueeHTTP
import Testing

@Suite("RequestParser")
struct RequestParserTests {
    // MARK: - Well-formed requests

    @Test func parsesATypicalPlayerGET() throws {
        let text =
            "GET /live/ch1/seg_00042.m4s?CMCD=br%3D3200%2Cot%3Dv HTTP/1.1\r\n"
            + "Host: cdn.example.com\r\n"
            + "User-Agent: AppleCoreMedia/1.0.0.21A329 (iPhone; U; CPU OS 17_0 like Mac OS X)\r\n"
            + "Accept: */*\r\n"
            + "Range: bytes=0-1048575\r\n"
            + "Connection: keep-alive\r\n"
            + "\r\n"
        let request = try #require(receive(text).request)
        #expect(request.head.method == .get)
        #expect(request.head.isHTTP11)
        #expect(request.head.keepAlive)
        #expect(request.target == "/live/ch1/seg_00042.m4s?CMCD=br%3D3200%2Cot%3Dv")
        #expect(request.path == "/live/ch1/seg_00042.m4s")
        #expect(request.host == "cdn.example.com")
        #expect(request.range == "bytes=0-1048575")
        #expect(request.head.headerCount == 5)
        #expect(request.head.headLength == text.utf8.count)
        #expect(request.head.contentLength == -1)
        #expect(!request.head.hasTransferEncoding)
        #expect(!request.head.hasBody)
        #expect(request.ifNoneMatch == nil && request.ifModifiedSince == nil && request.ifRange == nil)
    }

    @Test(arguments: [
        ("GET", HTTPMethod.get), ("HEAD", .head), ("OPTIONS", .options), ("POST", .post), ("PUT", .put),
        ("DELETE", .delete), ("PATCH", .patch), ("PURGE", .other), ("get", .other), ("GETS", .other),
        ("M-SEARCH", .other),
    ])
    func recognisesMethods(token: String, method: HTTPMethod) throws {
        let head = try #require(receive(makeRequest("Host: a", method: token)).head)
        #expect(head.method == method)
    }

    @Test func everyFieldTheGatewayActsOnIsFoundWhateverItsCase() throws {
        let text = makeRequest(
            "hOsT: media.example", "RANGE: bytes=10-", "if-none-match: \"abc\"",
            "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT", "IF-RANGE: \"abc\"", "If-Match: *",
            "if-unmodified-since: Sun, 06 Nov 1994 08:49:37 GMT", "Origin: https://player.example",
            "Access-Control-Request-Method: GET", "access-control-request-headers: range, x-token")
        let request = try #require(receive(text).request)
        #expect(request.host == "media.example")
        #expect(request.range == "bytes=10-")
        #expect(request.ifNoneMatch == "\"abc\"")
        #expect(request.ifModifiedSince == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(request.ifRange == "\"abc\"")
        #expect(request.ifMatch == "*")
        #expect(request.ifUnmodifiedSince == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(request.origin == "https://player.example")
        #expect(request.accessControlRequestMethod == "GET")
        #expect(request.accessControlRequestHeaders == "range, x-token")
        #expect(request.head.headerCount == 10)
    }

    @Test func headerValuesAreTrimmedOfOptionalWhitespace() throws {
        let text = makeRequest("Host:example.com", "Range: \t bytes=0-99 \t ", "If-None-Match:   \"a b\"   ")
        let request = try #require(receive(text).request)
        #expect(request.host == "example.com")
        #expect(request.range == "bytes=0-99")
        #expect(request.ifNoneMatch == "\"a b\"", "inner whitespace is part of the value")
    }

    @Test func anEmptyValueIsPresentButEmpty() throws {
        let request = try #require(receive(makeRequest("Host: a", "Range:", "If-Match:   ")).request)
        #expect(request.range == "")
        #expect(request.ifMatch == "")
        #expect(request.head.range.isPresent)
    }

    @Test func obsTextInAValueIsAccepted() throws {
        // RFC 9110 §5.5 allows obs-text (0x80-0xFF) in field values; players put UTF-8 in User-Agent.
        let request = try #require(receive(makeRequest("Host: a", "User-Agent: Lecteur vidéo/2.0")).request)
        #expect(request.head.headerCount == 2)
    }

    @Test func aFieldTheGatewayIgnoresIsCountedButNotStored() throws {
        let request = try #require(receive(makeRequest("Host: a", "X-Hostname: b", "Hosts: c")).request)
        #expect(request.host == "a")
        #expect(request.head.headerCount == 3)
    }

    @Test func laterRangeAndConditionalFieldsReplaceEarlierOnes() throws {
        let request = try #require(receive(makeRequest("Host: a", "Range: bytes=0-1", "Range: bytes=5-9")).request)
        #expect(request.range == "bytes=5-9")
    }

    // MARK: - Request target

    @Test(arguments: [
        ("/", "/"), ("/a/b.m3u8", "/a/b.m3u8"), ("/a/b.m3u8?x=1", "/a/b.m3u8"), ("/a?", "/a"),
        ("/a?b?c", "/a"), ("/?q", "/"), ("/a%20b?c=%2F", "/a%20b"), ("//double", "//double"),
    ])
    func theQueryIsStrippedFromThePath(target: String, path: String) throws {
        let request = try #require(receive(makeRequest("Host: a", target: target)).request)
        #expect(request.target == target)
        #expect(request.path == path)
    }

    @Test(arguments: [
        ("http://cdn.example/live/a.m3u8", "/live/a.m3u8"),
        ("http://cdn.example/live/a.m3u8?token=x", "/live/a.m3u8"),
        ("HTTPS://CDN.EXAMPLE:8443/v/1.ts", "/v/1.ts"),
        ("http://user@cdn.example/x", "/x"),
        ("http://cdn.example/", "/"),
    ])
    func absoluteFormTargetsYieldTheirPath(target: String, path: String) throws {
        let request = try #require(receive(makeRequest("Host: cdn.example", target: target)).request)
        #expect(request.target == target)
        #expect(request.path == path)
    }

    @Test(arguments: ["ftp://cdn.example/a", "http:/cdn.example/a", "cdn.example:443", "a/b", "*", "%2F", "?x"])
    func targetsThatAreNotAPathAreRefused(target: String) {
        #expect(receive(makeRequest("Host: a", target: target)).status == .badRequest)
    }

    @Test func optionsAsteriskIsAccepted() throws {
        let request = try #require(receive(makeRequest("Host: a", method: "OPTIONS", target: "*")).request)
        #expect(request.head.method == .options)
        #expect(request.target == "*")
        #expect(request.path == nil, "asterisk-form has no path")
    }

    @Test func anAsteriskIsOnlyATargetForOptions() {
        #expect(receive(makeRequest("Host: a", method: "GET", target: "*")).status == .badRequest)
        #expect(receive(makeRequest("Host: a", method: "OPTIONS", target: "*x")).status == .badRequest)
    }

    // MARK: - Request line

    @Test(arguments: [
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",  // two spaces
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",  // trailing space
        " GET / HTTP/1.1\r\nHost: a\r\n\r\n",  // leading space
        "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",  // tab separator
        "GET /\tx HTTP/1.1\r\nHost: a\r\n\r\n",  // tab in target
        "GET /\r\nHost: a\r\n\r\n",  // HTTP/0.9 shape
        "GET / \r\nHost: a\r\n\r\n",  // missing version
        "GET\r\nHost: a\r\n\r\n",  // method only
        "/ HTTP/1.1\r\nHost: a\r\n\r\n",  // missing method
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",  // non-token method
        "GET / http/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.x\r\nHost: a\r\n\r\n",
        "GET / HTTPS/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.10\r\nHost: a\r\n\r\n",
        "GET / HTTP/11\r\nHost: a\r\n\r\n",
        "GET /a\u{7F}b HTTP/1.1\r\nHost: a\r\n\r\n",  // DEL in target
        "GET /caf\u{E9} HTTP/1.1\r\nHost: a\r\n\r\n",  // raw UTF-8 in target
        "GET /a\u{1}b HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a\u{0}b HTTP/1.1\r\nHost: a\r\n\r\n",
        "GE\u{0}T / HTTP/1.1\r\nHost: a\r\n\r\n",
    ])
    func malformedRequestLinesAreRefused(text: String) {
        #expect(receive(text).status == .badRequest)
    }

    @Test(arguments: ["HTTP/2.0", "HTTP/1.2", "HTTP/3.0", "HTTP/0.9", "HTTP/9.9"])
    func unsupportedVersionsGet505(version: String) {
        #expect(receive(makeRequest("Host: a", version: version)).status == .httpVersionNotSupported)
    }

    @Test func leadingEmptyLinesAreSkipped() throws {
        let text = "\r\n\r\n" + makeRequest("Host: a", target: "/after-blank-lines")
        let request = try #require(receive(text).request)
        #expect(request.path == "/after-blank-lines")
        #expect(request.head.headLength == text.utf8.count)
    }

    @Test func tooManyLeadingEmptyLinesAreRefused() {
        #expect(receive(String(repeating: "\r\n", count: 5) + makeRequest("Host: a")).status == .badRequest)
    }

    // MARK: - Header field syntax (smuggling shapes)

    @Test(arguments: [
        "Host : a",  // whitespace before colon
        "Host\t: a",
        "Ho st: a",
        "Host",  // no colon
        ": a",  // empty name
        "Hö: a",  // non-token name
        "X-\u{0}: a",
        "X-A: a\u{0}b",  // NUL in value
        "X-A: a\u{1}b",
        "X-A: a\u{1B}[31m",  // escape
        "X-A: a\u{7F}",  // DEL
        "X-A: a\u{0B}b",  // vertical tab
        "X-A: a\u{0C}b",  // form feed
    ])
    func malformedFieldsAreRefused(field: String) {
        let text = field.hasPrefix("Host") ? makeRequest(field) : makeRequest("Host: a", field)
        #expect(receive(text).status == .badRequest)
    }

    @Test func aTabInsideAValueIsAllowed() throws {
        let request = try #require(receive(makeRequest("Host: a", "Range: bytes=0-1\t")).request)
        #expect(request.range == "bytes=0-1")
        #expect(receive(makeRequest("Host: a", "X-A: b\tc")).head != nil)
    }

    @Test func obsoleteLineFoldingIsRefused() {
        #expect(receive("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n  c\r\n\r\n").status == .badRequest)
        #expect(receive("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n").status == .badRequest)
        // whitespace between the request line and the first field (RFC 9112 §2.2)
        #expect(receive("GET / HTTP/1.1\r\n Host: a\r\n\r\n").status == .badRequest)
        // a fold that would hide a Content-Length inside another field
        #expect(receive("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n Content-Length: 5\r\n\r\n").status == .badRequest)
    }

    @Test(arguments: [
        "GET / HTTP/1.1\rHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",
    ])
    func bareCRIsRefused(text: String) {
        #expect(receive(text).status == .badRequest)
    }

    @Test(arguments: [
        "GET / HTTP/1.1\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\n",
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\nc\r\n\r\n",
        "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    ])
    func bareLFIsRefused(text: String) {
        #expect(receive(text).status == .badRequest)
    }

    // MARK: - Message framing

    @Test(arguments: [("0", Int64(0)), ("42", 42), ("007", 7), (" 5 ", 5), ("999999999999999999", 999_999_999_999_999_999)])
    func validContentLength(value: String, length: Int64) throws {
        let head = try #require(receive(makeRequest("Host: a", "Content-Length:\(value)")).head)
        #expect(head.contentLength == length)
        #expect(head.hasBody == (length > 0))
    }

    @Test(arguments: [
        "+5", "-1", "5,5", "5, 5", "5 5", "5x", " 5x", "x5", "", "0x10", "1e3", "5.0", "\"5\"",
        "1000000000000000000",  // 19 digits: more than the parser promises to hold
        "99999999999999999999",
    ])
    func malformedContentLengthIsRefused(value: String) {
        #expect(receive(makeRequest("Host: a", "Content-Length: \(value)")).status == .badRequest)
    }

    @Test func duplicateContentLengthIsRefused() {
        #expect(receive(makeRequest("Host: a", "Content-Length: 5", "Content-Length: 5")).status == .badRequest)
        #expect(receive(makeRequest("Host: a", "Content-Length: 5", "content-length: 6")).status == .badRequest)
        #expect(receive(makeRequest("Host: a", "Content-Length: 0", "Content-Length: 0")).status == .badRequest)
    }

    @Test func contentLengthWithTransferEncodingIsRefused() {
        #expect(receive(makeRequest("Host: a", "Content-Length: 5", "Transfer-Encoding: chunked")).status == .badRequest)
        #expect(receive(makeRequest("Host: a", "Transfer-Encoding: chunked", "Content-Length: 5")).status == .badRequest)
        #expect(receive(makeRequest("Host: a", "Content-Length: 0", "Transfer-Encoding: chunked")).status == .badRequest)
    }

    /// RFC 9112 §6.1: a coding the server does not understand is 501, and the connection closes
    /// (the body's end cannot be known). Only one `chunked` is understood.
    @Test(arguments: ["xchunked", "identity", "gzip", "gzip, chunked", "chunked, chunked", "chunked;q=1", "chunke", ""])
    func unknownTransferCodingIsNotImplemented(value: String) {
        #expect(receive(makeRequest("Host: a", "Transfer-Encoding: \(value)")).status == .notImplemented)
        #expect(receive(makeRequest("Host: a", "Transfer-Encoding: \(value)", method: "POST")).status == .notImplemented)
    }

    @Test func secondTransferEncodingLineIsNotImplemented() {
        #expect(receive(makeRequest("Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked")).status == .notImplemented)
    }

    @Test func chunkedIsCaseInsensitive() {
        #expect(receive(makeRequest("Host: a", "Transfer-Encoding: Chunked", method: "POST")).head?.hasTransferEncoding == true)
    }

    @Test func transferEncodingInHTTP10IsRefused() {
        #expect(receive(makeRequest("Transfer-Encoding: chunked", version: "HTTP/1.0")).status == .badRequest)
    }

    @Test func transferEncodingAloneMeansABody() throws {
        let head = try #require(receive(makeRequest("Host: a", "Transfer-Encoding: chunked", method: "POST")).head)
        #expect(head.hasTransferEncoding)
        #expect(head.hasBody)
        #expect(head.contentLength == -1)
    }

    @Test func contentLengthCanBeSentBy10Clients() throws {
        let head = try #require(receive(makeRequest("Content-Length: 3", version: "HTTP/1.0", method: "POST")).head)
        #expect(head.contentLength == 3)
        #expect(head.hasBody)
    }

    // MARK: - Host

    @Test func http11WithoutHostIsRefused() {
        #expect(receive(makeRequest()).status == .badRequest)
        #expect(receive(makeRequest("X-Host: a")).status == .badRequest)
        // absolute-form carries the authority, but HTTP/1.1 still requires the field (RFC 9112 §3.2)
        #expect(receive("GET http://a/ HTTP/1.1\r\nX-Forwarded-Host: a\r\n\r\n").status == .badRequest)
    }

    @Test func duplicateHostIsRefused() {
        #expect(receive(makeRequest("Host: a", "Host: a")).status == .badRequest)
        #expect(receive(makeRequest("Host: a", "host: b")).status == .badRequest)
        #expect(receive(makeRequest("Host: a", "Host: b", version: "HTTP/1.0")).status == .badRequest)
    }

    @Test func http10DoesNotNeedHost() throws {
        let request = try #require(receive(makeRequest(version: "HTTP/1.0")).request)
        #expect(!request.head.isHTTP11)
        #expect(request.host == nil)
    }

    @Test func anEmptyHostIsAccepted() throws {
        // RFC 9112 §3.2: a client sends an empty Host when the target has no authority.
        let request = try #require(receive(makeRequest("Host:")).request)
        #expect(request.host == "")
    }

    // MARK: - Persistence

    @Test(arguments: [
        ("HTTP/1.0", nil, false),
        ("HTTP/1.0", "keep-alive", true),
        ("HTTP/1.0", "Keep-Alive", true),
        ("HTTP/1.0", "Upgrade", false),
        ("HTTP/1.0", "keep-alive, close", false),
        ("HTTP/1.0", "keep-alives", false),
        ("HTTP/1.1", nil, true),
        ("HTTP/1.1", "keep-alive", true),
        ("HTTP/1.1", "close", false),
        ("HTTP/1.1", "CLOSE", false),
        ("HTTP/1.1", "Upgrade, close", false),
        ("HTTP/1.1", "close, Upgrade", false),
        ("HTTP/1.1", " \tkeep-alive ,\tclose\t ", false),
        ("HTTP/1.1", "Upgrade", true),
        ("HTTP/1.1", "closed", true),
        ("HTTP/1.1", "x-close", true),
        ("HTTP/1.1", ",,", true),
    ] as [(String, String?, Bool)])
    func keepAlive(version: String, connection: String?, expected: Bool) throws {
        var fields = ["Host: a"]
        if let connection { fields.append("Connection: \(connection)") }
        var text = "GET / \(version)\r\n"
        for field in fields { text += field + "\r\n" }
        text += "\r\n"
        let head = try #require(receive(text).head)
        #expect(head.keepAlive == expected)
        #expect(head.isHTTP11 == (version == "HTTP/1.1"))
    }

    @Test func closeInAnyConnectionFieldWins() throws {
        let head = try #require(receive(makeRequest("Host: a", "Connection: keep-alive", "Connection: close")).head)
        #expect(!head.keepAlive)
        let old = try #require(receive(makeRequest("Connection: close", "Connection: keep-alive", version: "HTTP/1.0")).head)
        #expect(!old.keepAlive)
    }

    // MARK: - Pipelining

    @Test func pipelinedRequestsAreParsedOneAfterAnother() {
        let first = makeRequest("Host: a", target: "/first.m3u8")
        let second = makeRequest("Host: a", "Range: bytes=0-9", target: "/second.m4s")
        let third = makeRequest("Host: a", "Connection: close", method: "HEAD", target: "/third.ts")
        let bytes = Array((first + second + third).utf8)

        var seen: [(String?, String?, Bool)] = []
        bytes.withUnsafeBytes { all in
            var offset = 0
            while offset < all.count {
                let rest = UnsafeRawBufferPointer(rebasing: all[offset...])
                var boundary = HeadBoundary()
                guard case .complete(let headLength) = boundary.scan(rest, limits: RequestLimits()) else {
                    Issue.record("no complete head at offset \(offset)")
                    return
                }
                guard case .complete(let head) = RequestParser.parse(rest, headLength: headLength) else {
                    Issue.record("head at offset \(offset) did not parse")
                    return
                }
                #expect(head.headLength == headLength)
                seen.append((head.path.string(in: rest), head.range.string(in: rest), head.keepAlive))
                offset += headLength
            }
        }
        #expect(seen.map(\.0) == ["/first.m3u8", "/second.m4s", "/third.ts"])
        #expect(seen.map(\.1) == [nil, "bytes=0-9", nil])
        #expect(seen.map(\.2) == [true, true, false])
    }

    @Test func headLengthPointsAtTheNextRequest() throws {
        let first = makeRequest("Host: a", target: "/one")
        let text = first + "GET /two HTTP/1.1\r\nHo"  // the next request is still arriving
        let head = try #require(receive(text).head)
        #expect(head.headLength == first.utf8.count)
        let rest = String(decoding: text.utf8.dropFirst(head.headLength), as: UTF8.self)
        #expect(rest == "GET /two HTTP/1.1\r\nHo")
        #expect(receive(rest).isIncomplete)
    }

    @Test func aBodyAfterTheHeadIsNotPartOfIt() throws {
        let head = try #require(receive(makeRequest("Host: a", "Content-Length: 5", method: "POST") + "ab\ncd").head)
        #expect(head.headLength == makeRequest("Host: a", "Content-Length: 5", method: "POST").utf8.count)
        #expect(head.hasBody)
    }

    // MARK: - Limits

    private static let tight = RequestLimits(maxRequestLineBytes: 64, maxHeadBytes: 256, maxHeaderCount: 4)

    /// A request line of exactly `length` bytes (CRLF excluded).
    private static func requestLine(length: Int) -> String {
        let fixed = "GET / HTTP/1.1".utf8.count
        return "GET /" + String(repeating: "a", count: length - fixed) + " HTTP/1.1"
    }

    @Test func aRequestLineAtTheLimitIsAccepted() throws {
        let line = Self.requestLine(length: 64)
        let head = try #require(receive(line + "\r\nHost: a\r\n\r\n", limits: Self.tight).head)
        #expect(head.target.count == 64 - "GET  HTTP/1.1".utf8.count)
    }

    @Test(arguments: [65, 66, 67, 100])
    func aRequestLineOverTheLimitGets414(length: Int) {
        let line = Self.requestLine(length: length)
        #expect(receive(line + "\r\nHost: a\r\n\r\n", limits: Self.tight).status == .uriTooLong)
    }

    @Test func aLongTargetGets414WithDefaultLimits() {
        let target = "/" + String(repeating: "x", count: 9000)
        #expect(receive(makeRequest("Host: a", target: target)).status == .uriTooLong)
        // the parser's own check, for a head that did not come through HeadBoundary's line limit
        let text = makeRequest("Host: a", target: "/" + String(repeating: "x", count: 70))
        let lenient = RequestLimits(maxRequestLineBytes: 64, maxHeadBytes: 4096, maxHeaderCount: 10)
        let result = withBytes(text) { RequestParser.parse($0, headLength: $0.count, limits: lenient) }
        #expect(result.failureStatus == .uriTooLong)
    }

    @Test func tooManyFieldsGet431() {
        #expect(receive(makeRequest("Host: a", "A: 1", "B: 2", "C: 3"), limits: Self.tight).head != nil)
        #expect(receive(makeRequest("Host: a", "A: 1", "B: 2", "C: 3", "D: 4"), limits: Self.tight).status
            == .requestHeaderFieldsTooLarge)
        let hundred = (1..<100).map { "X-\($0): v" }
        #expect(receive(makeRequest(fields: ["Host: a"] + hundred)).head?.headerCount == 100)
        #expect(receive(makeRequest(fields: ["Host: a", "X-0: v"] + hundred)).status == .requestHeaderFieldsTooLarge)
    }

    @Test func aHeadAtTheSizeLimitIsAccepted() throws {
        let text = Self.head(totalLength: 256)
        #expect(text.utf8.count == 256)
        let head = try #require(receive(text, limits: Self.tight).head)
        #expect(head.headLength == 256)
    }

    @Test(arguments: [257, 258, 300])
    func aHeadOverTheSizeLimitGets431(length: Int) {
        let text = Self.head(totalLength: length)
        #expect(text.utf8.count == length)
        #expect(receive(text, limits: Self.tight).status == .requestHeaderFieldsTooLarge)
    }

    @Test func largeFieldsGet431WithDefaultLimits() {
        let cookie = "Cookie: " + String(repeating: "c", count: 17000)
        #expect(receive(makeRequest("Host: a", cookie)).status == .requestHeaderFieldsTooLarge)
    }

    /// A valid head of exactly `totalLength` bytes: one filler field sized to fit.
    private static func head(totalLength: Int) -> String {
        let bare = makeRequest("Host: a", "X-Fill: ")
        return makeRequest("Host: a", "X-Fill: " + String(repeating: "f", count: totalLength - bare.utf8.count))
    }
}

extension RequestParser.Result {
    var failureStatus: HTTPStatus? {
        if case .failed(let error) = self { return error.status }
        return nil
    }
}

extension RequestOutcome {
    var isIncomplete: Bool {
        if case .incomplete = self { return true }
        return false
    }
}
