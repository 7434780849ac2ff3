import Testing

@testable import MarqueeGateway

@Suite("Service upstreams and routes")
struct ServiceUpstreamTests {
    @Test func parsesUpstreamURLs() throws {
        let v4 = try ServiceUpstream(name: "auth", url: "http://127.0.0.1:8081")
        #expect(v4.authority == "127.0.0.1:8081" && v4.address.port == 8081)
        let v6 = try ServiceUpstream(name: "catalog", url: "http://[::1]:9000/")
        #expect(v6.authority == "[::1]:9000" && v6.address.port == 9000)
        let local = try ServiceUpstream(assignment: "billing=http://localhost:7000")
        #expect(local.name == "billing" && local.authority == "localhost:7000")
        #expect(try ServiceUpstream(name: "a", url: "http://10.0.0.1").address.port == 80)
    }

    @Test("Refused upstream URLs", arguments: [
        "https://127.0.0.1:1", "http://no-such-host.invalid:80", "http://bad_name:80", "http://127.0.0.1:80/api", "http://u:p@127.0.0.1:1",
        "http://127.0.0.1:0", "http://127.0.0.1:70000", "127.0.0.1:80", "http://::1:80", "http://[::1:80", "http://",
    ])
    func refusesURLs(_ url: String) {
        #expect(throws: GatewayError.self) { try ServiceUpstream(name: "x", url: url) }
    }

    @Test func refusesNames() {
        #expect(throws: GatewayError.self) { try ServiceUpstream(assignment: "Auth=http://127.0.0.1:1") }
        #expect(throws: GatewayError.self) { try ServiceUpstream(assignment: "http://127.0.0.1:1") }
        #expect(throws: GatewayError.self) { try ServiceUpstream(assignment: "a/b=http://127.0.0.1:1") }
    }

    @Test func routes() throws {
        let routes = ServiceRoutes([
            try ServiceUpstream(name: "catalog", url: "http://127.0.0.1:1"), try ServiceUpstream(name: "auth", url: "http://127.0.0.1:2"),
        ])
        func match(_ path: String) -> ServiceRoutes.Match { Array(path.utf8).withUnsafeBytes { routes.match($0) } }
        #expect(match("/api/catalog") == .upstream(0))
        #expect(match("/api/catalog/") == .upstream(0))
        #expect(match("/api/catalog/titles/1") == .upstream(0))
        #expect(match("/api/auth/login") == .upstream(1))
        #expect(match("/.well-known/jwks.json") == .upstream(1))
        #expect(match("/api/catalogue/x") == .unknownService)
        #expect(match("/api/cat") == .unknownService)
        #expect(match("/api/") == .unknownService)
        #expect(match("/api") == .unknownService)
        #expect(match("/apis/catalog") == .none)
        #expect(match("/titles/x/a.ts") == .none)
        #expect(match("/.well-known/jwks.json.bak") == .none)
    }
}

@Suite("Catalog feed answers")
struct CatalogFeedAnswerTests {
    func parse(_ text: String) throws -> (CatalogRulesFeed.Answer, String) {
        let (answer, body) = try CatalogRulesFeed.parse(Array(text.utf8))
        return (answer, String(decoding: body, as: UTF8.self))
    }

    @Test func readsChangedAndUnchanged() throws {
        let changed = try parse("HTTP/1.1 200 OK\r\nETag: \"v7\"\r\nContent-Length: 4\r\n\r\n{}xxEXTRA")
        #expect(changed.0 == .changed(etag: "\"v7\"") && changed.1 == "{}xx")
        let unchanged = try parse("HTTP/1.1 304 Not Modified\r\nETag: \"v7\"\r\n\r\n")
        #expect(unchanged.0 == .unchanged)
        let chunked = try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
        #expect(chunked.0 == .changed(etag: nil) && chunked.1 == "{}")
        let closeDelimited = try parse("HTTP/1.0 200 OK\r\n\r\n{\"version\":1}")
        #expect(closeDelimited.1 == "{\"version\":1}")
    }

    @Test("Errors and broken answers keep the last rules", arguments: [
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}", "garbage", "",
    ])
    func refusesBroken(_ text: String) {
        #expect(throws: GatewayError.self) { try CatalogRulesFeed.parse(Array(text.utf8)) }
    }
}
