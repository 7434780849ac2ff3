import MarqueeHTTP
import Testing

@Suite("Upstream responses: head parser, framing, hop-by-hop fields")
struct ResponseParserTests {
    static func parse(_ text: String) -> ResponseParser.Result {
        withBytes(text) { ResponseParser.parse($0) }
    }

    static func head(_ text: String) throws -> ResponseHead {
        guard case .complete(let head) = parse(text) else { throw ParseFailure(text: text) }
        return head
    }

    struct ParseFailure: Error { var text: String }

    @Test func readsStatusLengthAndConnection() throws {
        let h = try Self.head("HTTP/1.1 201 Created\r\nContent-Length: 12\r\nX-A: b\r\n\r\nbody")
        #expect(h.status == 201 && h.contentLength == 12 && !h.isChunked && !h.closes && h.isHTTP11)
        #expect(h.headLength == "HTTP/1.1 201 Created\r\nContent-Length: 12\r\nX-A: b\r\n\r\n".utf8.count)
        let close = try Self.head("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\n\r\n")
        #expect(close.closes)
        let old = try Self.head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        #expect(old.closes && !old.isHTTP11)
        let oldKept = try Self.head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
        #expect(!oldKept.closes)
        let noReason = try Self.head("HTTP/1.1 204\r\n\r\n")
        #expect(noReason.status == 204 && noReason.reasonCount == 0)
    }

    @Test func transferCodings() throws {
        #expect(try Self.head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n").isChunked)
        let other = try Self.head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n")
        #expect(!other.isChunked && other.hasOtherTransferEncoding)
        #expect(try Self.head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n").contentLength == 3)
    }

    @Test("Responses the gateway cannot delimit are refused (502)", arguments: [
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
        "HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
    ])
    func refusesUndelimitable(_ text: String) {
        guard case .failed = Self.parse(text) else {
            Issue.record("accepted \(text.debugDescription)")
            return
        }
    }

    @Test func incompleteAndOversizeHeads() {
        #expect(Self.parse("HTTP/1.1 200 OK\r\nX: y\r\n") == .incomplete)
        let huge = "HTTP/1.1 200 OK\r\nX: \(String(repeating: "y", count: 40000))"
        guard case .failed = withBytes(huge, { ResponseParser.parse($0, maxHeadBytes: 32768) }) else {
            Issue.record("an endless head was not refused")
            return
        }
    }

    @Test func framingFollowsTheRequestAndTheHead() throws {
        func framing(_ text: String, _ method: HTTPMethod = .get) throws -> ResponseFraming {
            ResponseFraming(head: try Self.head(text), requestMethod: method)
        }
        #expect(try framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", .head).kind == .none)
        #expect(try framing("HTTP/1.1 204 No Content\r\n\r\n").kind == .none)
        #expect(try framing("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n").kind == .none)
        #expect(try framing("HTTP/1.1 200 OK\r\n\r\n").kind == .untilClose)
        #expect(try framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").kind == .untilClose)

        var length = try framing("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        #expect(withBytes("hello") { length.consume($0) } == .more)
        #expect(withBytes("worldHTTP/1.1") { length.consume($0) } == .complete(consumed: 5))

        var chunked = try framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(withBytes("3\r\nabc\r\n") { chunked.consume($0) } == .more)
        #expect(withBytes("0\r\n\r\nextra") { chunked.consume($0) } == .complete(consumed: 5))
        var decoded: [UInt8] = []
        var dechunk = try framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(withBytes("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n") { dechunk.consume($0) { decoded += $0 } } == .complete(consumed: 20))
        #expect(decoded == Array("abcde".utf8))

        var closing = try framing("HTTP/1.1 200 OK\r\n\r\n")
        #expect(withBytes("anything") { closing.consume($0) } == .more && closing.closeCompletes)
    }

    @Test func hopByHopFieldsIncludeThoseConnectionNames() {
        let text = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\nX-Secret: s\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Connection: x\r\nTrailer: X\r\nX-Kept: k\r\n\r\n"
        let kept = withBytes(text) { raw -> [String] in
            let fields = HeaderFields(head: raw)
            var names: [String] = []
            fields.forEach { field in
                if !HopByHop.isHopByHop(field.name, in: fields) { names.append(String(decoding: field.name, as: UTF8.self)) }
                return true
            }
            return names
        }
        #expect(kept == ["Host", "X-Kept"])
    }
}

@Suite("Header fields")
struct HeaderFieldsTests {
    @Test func walksFieldsAndKnowsWhenConnectionNamesOthers() {
        withBytes("\r\nGET / HTTP/1.1\r\nHost: a\r\nX-Long:   spaced value  \r\nConnection: Keep-Alive, close\r\n\r\n") { raw in
            let fields = HeaderFields(head: raw)
            var seen: [String] = []
            fields.forEach { field in
                seen.append("\(String(decoding: field.name, as: UTF8.self))=\(String(decoding: field.value, as: UTF8.self))")
                #expect(field.line.last == 0x0A)
                return true
            }
            #expect(seen == ["Host=a", "X-Long=spaced value", "Connection=Keep-Alive, close"])
            #expect(!fields.connectionNamesFields)
            #expect(!fields.connectionNames(UnsafeRawBufferPointer(rebasing: raw[19..<23])))
        }
        withBytes("HTTP/1.1 200 OK\r\nConnection: x-a , X-B\r\nX-B: 1\r\n\r\n") { raw in
            let fields = HeaderFields(head: raw)
            #expect(fields.connectionNamesFields)
            var hop: [String] = []
            fields.forEach { field in
                if HopByHop.isHopByHop(field.name, in: fields) { hop.append(String(decoding: field.name, as: UTF8.self)) }
                return true
            }
            #expect(hop == ["Connection", "X-B"])
        }
    }
}
