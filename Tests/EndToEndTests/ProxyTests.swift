import Foundation
import Glibc
import MarqueeTestSupport
import Testing

/// `/api/<service>/...` through the real gateway to a real (Python) HTTP/1.1 service.
@Suite("Service proxy")
struct ProxyTests {
    /// A gateway with `echo` (the Python upstream) and whatever else `arguments` add.
    static func gateway(
        _ upstream: ServiceUpstream, config: String? = nil, environment: [String: String] = [:], arguments: [String] = []
    ) throws -> ServerProcess {
        let fixtures = try MediaFixtures.shared()
        return try ServerProcess(
            root: fixtures.root, environment: environment, configFile: try config.map(configFile),
            arguments: ["--service", "echo=\(upstream.url)"] + arguments)
    }

    @Test("GET, POST, PATCH and DELETE round trip with query, body and forwarding headers; hop-by-hop fields are dropped both ways")
    func roundTrips() throws {
        let upstream = try ServiceUpstream()
        let server = try Self.gateway(upstream)
        defer { server.stop() }

        let get = try Curl.fetch(server.url("/api/echo/items?b=2&a=%20x"), [
            "-H", "Connection: keep-alive, X-Drop", "-H", "X-Drop: 1", "-H", "Keep-Alive: timeout=5", "-H", "TE: trailers",
            "-H", "Upgrade: websocket", "-H", "X-Kept: yes",
        ])
        #expect(get.status == 200)
        let echo = try Echo(get.body)
        #expect(echo.method == "GET" && echo.path == "/api/echo/items" && echo.query == "b=2&a=%20x")
        #expect(echo.header("Host") == "127.0.0.1:\(server.mediaPort)", "Host is kept")
        #expect(echo.header("X-Forwarded-For") == "127.0.0.1")
        #expect(echo.header("X-Forwarded-Proto") == "http")
        #expect((echo.header("X-Request-ID") ?? "").count >= 8, "a request id is generated")
        #expect(echo.header("X-Kept") == "yes")
        for dropped in ["X-Drop", "Keep-Alive", "TE", "Upgrade"] { #expect(echo.header(dropped) == nil, "\(dropped) was forwarded") }
        #expect(echo.header("Connection") == nil || echo.header("Connection") == "keep-alive" || echo.header("Connection") == "close")
        // The upstream's own hop-by-hop fields stay behind too.
        #expect(get.header("X-Upstream") == "python")
        #expect(get.header("X-Private") == nil && get.header("Trailer") == nil && get.header("Keep-Alive") == nil)

        let post = try Curl.fetch(server.url("/api/echo/items"), [
            "-X", "POST", "--data-binary", "{\"title\":\"Metropolis\"}", "-H", "Content-Type: application/json",
            "-H", "X-Forwarded-For: 203.0.113.9", "-H", "X-Request-ID: trace-123",
        ])
        let posted = try Echo(post.body)
        #expect(post.status == 200 && posted.method == "POST" && posted.body == "{\"title\":\"Metropolis\"}")
        #expect(posted.header("Content-Length") == "22")
        #expect(posted.header("X-Forwarded-For") == "203.0.113.9, 127.0.0.1", "the client address is appended")
        #expect(posted.header("X-Request-ID") == "trace-123", "a request id is passed through")

        // A chunked request body is de-chunked and forwarded with Content-Length.
        let patch = try Curl.fetch(server.url("/api/echo/items/7"), [
            "-X", "PATCH", "-H", "Transfer-Encoding: chunked", "--data-binary", "partial update",
        ])
        let patched = try Echo(patch.body)
        #expect(patch.status == 200 && patched.method == "PATCH" && patched.body == "partial update")
        #expect(patched.header("Content-Length") == "14" && patched.header("Transfer-Encoding") == nil)

        let delete = try Curl.fetch(server.url("/api/echo/items/7?hard=1"), ["-X", "DELETE"])
        let deleted = try Echo(delete.body)
        #expect(delete.status == 200 && deleted.method == "DELETE" && deleted.query == "hard=1")

        let status = try Curl.fetch(server.url("/api/echo/x?status=418"))
        #expect(status.status == 418, "the upstream's status is relayed")

        let head = try Curl.fetch(server.url("/api/echo/items"), ["-I"])
        // (curl -I writes the head where the body would go: no JSON may follow it.)
        #expect(head.status == 200 && !head.bodyText.contains("{"), "\(head.bodyText)")

        #expect(try server.metric(#"marquee_proxy_responses_total{upstream="echo",class="2xx"}"#) == 5)
        #expect(try server.metric(#"marquee_proxy_responses_total{upstream="echo",class="4xx"}"#) == 1)
    }

    @Test("Chunked, close-delimited and 10 MB responses are relayed intact; a cut body is never passed off as whole")
    func responseFraming() throws {
        let upstream = try ServiceUpstream()
        let server = try Self.gateway(upstream)
        defer { server.stop() }

        let chunked = try Curl.fetch(server.url("/api/echo/chunked"))
        #expect(chunked.status == 200 && chunked.bodyText == "alpha beta gamma")
        #expect(chunked.header("Transfer-Encoding") == "chunked")

        let closing = try Curl.fetch(server.url("/api/echo/close"))
        #expect(closing.status == 200 && closing.bodyText == "until the connection closes")
        #expect(closing.header("Connection") == "close")

        let size = 10_000_000
        let output = Scratch.newFile("large")
        let expected = Scratch.newFile("expected")
        let block = Data((0..<256).map { UInt8($0) })
        var data = Data(capacity: size + block.count)
        while data.count < size { data.append(block) }
        try data.prefix(size).write(to: expected)
        let download = try Curl.run(["-o", output.path, "-w", "%{http_code}", server.url("/api/echo/large?size=\(size)")], timeout: .seconds(60))
        #expect(download.stdoutText == "200")
        let sums = try Tool.run("/usr/bin/sha256sum", [output.path, expected.path])
        let digests = sums.stdoutText.split(separator: "\n").map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(digests.count == 2 && digests[0] == digests[1], "SHA-256 of the relayed body: \(sums.stdoutText)")

        let cut = try Curl.fetch(server.url("/api/echo/cut"))
        #expect(cut.termination != .exited(0), "curl must see the short body: \(cut.stderr)")
        #expect(cut.body.count < 1000)
    }

    @Test("Kept-alive upstream connections are reused: the service sees fewer connections than requests")
    func keepAliveReuse() throws {
        let upstream = try ServiceUpstream()
        let server = try Self.gateway(upstream)
        defer { server.stop() }
        let requests = 12
        for i in 0..<requests {
            let response = try Curl.fetch(server.url("/api/echo/n/\(i)"))
            #expect(response.status == 200)
        }
        let stats = try upstream.stats()
        #expect(stats.requests == requests)
        #expect(stats.connections <= 4 && stats.connections < requests, "upstream connections: \(stats.connections)")
    }

    @Test("Pipelined requests get their answers in order; an HTTP/1.0 client gets a chunked answer de-chunked and closed")
    func pipeliningAndHTTP10() throws {
        let upstream = try ServiceUpstream()
        let server = try Self.gateway(upstream)
        defer { server.stop() }
        let connection = try RawConnection(port: server.mediaPort)
        try connection.send(
            "POST /api/echo/one HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcGET /api/echo/chunked HTTP/1.1\r\nHost: t\r\n\r\n"
                + "GET /api/echo/three HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let first = try connection.readResponse()
        #expect(try Echo(Data(first.body)).path == "/api/echo/one")
        #expect(try Echo(Data(first.body)).body == "abc")
        let rest = String(decoding: connection.readToEnd(timeout: .seconds(5)).bytes, as: UTF8.self)
        let chunked = try #require(rest.range(of: "Transfer-Encoding: chunked"))
        let third = try #require(rest.range(of: "/api/echo/three"))
        #expect(chunked.lowerBound < third.lowerBound, "answers in request order: \(rest)")
        #expect(rest.contains("5\r\nbeta \r\n"))

        let old = try RawConnection(port: server.mediaPort)
        try old.send("GET /api/echo/chunked HTTP/1.0\r\n\r\n")
        let (bytes, ending) = old.readToEnd(timeout: .seconds(5))
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(ending == .closed)
        #expect(text.hasSuffix("\r\n\r\nalpha beta gamma"), "\(text.debugDescription)")
        #expect(!text.lowercased().contains("transfer-encoding"))
        #expect(text.contains("Connection: close"))
    }

    @Test("An upstream that closes pooled connections behind the gateway's back: the next requests still succeed")
    func stalePooledConnections() throws {
        let upstream = try ServiceUpstream()
        let server = try Self.gateway(upstream)
        defer { server.stop() }
        for round in 0..<6 {
            #expect(try Curl.fetch(server.url("/api/echo/sneaky-close")).status == 200, "round \(round)")
            for method in ["GET", "PUT", "DELETE"] {
                let response = try Curl.fetch(server.url("/api/echo/after/\(round)"), ["-X", method])
                #expect(response.status == 200, "round \(round) \(method): \(response.status) \(response.bodyText)")
            }
        }
    }

    @Test("A 600 kB upload sent with Expect: 100-continue arrives intact")
    func largeUpload() throws {
        let upstream = try ServiceUpstream()
        let server = try Self.gateway(upstream)
        defer { server.stop() }
        var random = SeededGenerator(seed: 600)
        let body = Data(random.bytes(600_000).map { 0x41 + $0 % 26 })
        let file = Scratch.newFile("upload")
        try body.write(to: file)
        let response = try Curl.fetch(server.url("/api/echo/upload"), ["-X", "POST", "--data-binary", "@\(file.path)", "-H", "Expect: 100-continue"])
        #expect(response.status == 200)
        let echo = try Echo(response.body)
        let expected = try Tool.run("/usr/bin/sha256sum", [file.path]).stdoutText.split(separator: " ").first.map(String.init)
        #expect(echo.bodySHA256 == expected)
        #expect(echo.header("Expect") == nil && echo.header("Content-Length") == "600000")

        // The interim answer comes before any body byte is sent.
        let connection = try RawConnection(port: server.mediaPort)
        try connection.send("POST /api/echo/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        let interim = try connection.readResponse(bodyless: true)
        #expect(interim.status == 100)
        try connection.send("hello")
        let final = try connection.readResponse()
        #expect(final.status == 200)
        #expect(try Echo(Data(final.body)).body == "hello")
    }

    @Test("No upstream listening gives 502, a slow head 504, an unknown service 404: problem+json that says why")
    func failures() throws {
        let upstream = try ServiceUpstream()
        let deadPort = try RedisServer.freePort()
        let server = try Self.gateway(
            upstream, environment: ["MARQUEE_SERVICES_TIMEOUT_MS": "400"], arguments: ["--service", "dead=http://127.0.0.1:\(deadPort)"])
        defer { server.stop() }

        let refused = try Curl.fetch(server.url("/api/dead/anything"))
        #expect(refused.status == 502)
        #expect(refused.header("Content-Type") == "application/problem+json")
        #expect(refused.bodyText.contains("\"title\":\"Bad Gateway\"") && refused.bodyText.contains("\"status\":502"))
        #expect(refused.bodyText.contains("refused"), "\(refused.bodyText)")
        #expect(try server.metric(#"marquee_proxy_connect_failures_total{upstream="dead"}"#) == 1)

        let started = ContinuousClock.now
        let slow = try Curl.fetch(server.url("/api/echo/slow?ms=4000"))
        #expect(slow.status == 504)
        #expect(slow.bodyText.contains("\"status\":504") && slow.bodyText.contains("timeout_ms"))
        #expect(ContinuousClock.now - started < .seconds(3), "504 comes from the timeout, not from the upstream")
        #expect(try server.metric(#"marquee_proxy_timeouts_total{upstream="echo"}"#) == 1)

        let unknown = try Curl.fetch(server.url("/api/nobody/here"))
        #expect(unknown.status == 404 && unknown.bodyText.contains("no such service"))

        // The gateway still serves afterwards.
        #expect(try Curl.fetch(server.url("/api/echo/ok")).status == 200)
    }

    @Test("Bodies over services.max_request_body_bytes get 413, with Content-Length or chunked, and never reach the service")
    func bodyLimit() throws {
        let upstream = try ServiceUpstream()
        let server = try Self.gateway(upstream, config: "services:\n  max_request_body_bytes: 1000\n")
        defer { server.stop() }
        let big = String(repeating: "b", count: 2000)
        let withLength = try Curl.fetch(server.url("/api/echo/upload"), ["-X", "POST", "--data-binary", big])
        #expect(withLength.status == 413)
        #expect(withLength.bodyText.contains("max_request_body_bytes"))
        let chunked = try Curl.fetch(server.url("/api/echo/upload"), ["-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary", big])
        #expect(chunked.status == 413)
        let fits = try Curl.fetch(server.url("/api/echo/upload"), ["-X", "PUT", "--data-binary", String(repeating: "s", count: 1000)])
        #expect(fits.status == 200)
        #expect(try upstream.stats().requests == 1)
    }

    static let smugglingShapes: [String] = [
        "POST /api/echo/s HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /api/echo/s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
        "POST /api/echo/s HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        "POST /api/echo/s HTTP/1.1\r\nHost: t\r\nContent-Length: 4, 4\r\n\r\nabcd",
        "POST /api/echo/s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "POST /api/echo/s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        "POST /api/echo/s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /api/echo/s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        "POST /api/echo/s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
        "POST /api/echo/s HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /api/echo/../admin HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /api/echo/%2e%2e/admin HTTP/1.1\r\nHost: t\r\n\r\n",
    ]

    @Test("Smuggling shapes to /api paths get 400 (501 for a transfer coding other than one chunked) and never reach the service")
    func smuggling() throws {
        let upstream = try ServiceUpstream()
        let server = try Self.gateway(upstream)
        defer { server.stop() }
        let follower = "GET /api/echo/follower HTTP/1.1\r\nHost: t\r\n\r\n"
        for shape in Self.smugglingShapes {
            let connection = try RawConnection(port: server.mediaPort)
            try connection.send(shape + follower)
            let response = try connection.readResponse()
            // RFC 9112 §6.1: a coding the gateway does not understand is 501, as nginx answers.
            let unknownCoding = shape.contains("xchunked") || shape.contains("chunked, identity") || shape.contains("chunked\r\nTransfer-Encoding")
            #expect(response.status == (unknownCoding ? 501 : 400), "\(shape.debugDescription) got \(response.status)")
            #expect(connection.waitForClose(timeout: .seconds(5)).isClosed, "\(shape.debugDescription): the connection must close")
        }
        let stats = try upstream.stats()
        #expect(stats.requests == 0, "the service saw: \(stats.paths)")
    }

    @Test("300 mutated requests with bodies to /api paths, sent whole or in pieces: never a crash, and service keeps being served (seeded)")
    func mutatedRequests() throws {
        let upstream = try ServiceUpstream()
        let server = try Self.gateway(upstream, environment: ["MARQUEE_SERVICES_TIMEOUT_MS": "2000"])
        defer { server.stop() }
        let seed: UInt64 = 0x5052_4F58_59
        var random = SeededGenerator(seed: seed)
        let templates = [
            "POST /api/echo/m HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
            "PUT /api/echo/m?q=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "GET /api/echo/chunked HTTP/1.1\r\nHost: t\r\nConnection: X-A\r\nX-A: 1\r\n\r\n",
            "PATCH /api/echo/m HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        ]
        for round in 0..<300 {
            var bytes = Array(templates[round % templates.count].utf8)
            for _ in 0..<Int.random(in: 0...3, using: &random) {
                let at = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes.remove(at: at)
                default: bytes.insert(UInt8.random(in: 0...255, using: &random), at: at)
                }
            }
            let connection = try RawConnection(port: server.mediaPort)
            var offset = 0
            while offset < bytes.count {
                let piece = Int.random(in: 1...bytes.count, using: &random)
                try? connection.send(Array(bytes[offset..<min(bytes.count, offset + piece)]))
                offset += piece
            }
            // Whatever comes back (an answer, a close, or nothing for a request still incomplete).
            _ = connection.readToEnd(timeout: .milliseconds(Int.random(in: 0...1, using: &random) == 0 ? 1 : 50))
            connection.close()
            if round % 50 == 49 {
                #expect(server.isRunning, "seed \(seed) round \(round): \(server.stderr.text)")
                #expect(try Curl.fetch(server.url("/api/echo/alive")).status == 200, "seed \(seed) round \(round)")
            }
        }
        #expect(try Curl.fetch(server.url("/api/echo/chunked")).bodyText == "alpha beta gamma")
    }

    @Test("With a shared (Redis) limit the request is parked; a 300 kB body waits in the kernel and arrives intact")
    func parkedBodies() throws {
        let redis = try RedisServer()
        let upstream = try ServiceUpstream()
        let server = try Self.gateway(
            upstream,
            config: """
                redis:
                  url: \(redis.url)
                  timeout_ms: 1000
                rate_limits:
                  limits:
                    - "api_per_client key=client route=api rate=100/1s"
                """)
        defer { server.stop() }
        var random = SeededGenerator(seed: 300)
        let file = Scratch.newFile("parked-upload")
        try Data(random.bytes(300_000)).write(to: file)
        let expected = try Tool.run("/usr/bin/sha256sum", [file.path]).stdoutText.split(separator: " ").first.map(String.init)
        for method in ["POST", "PUT"] {
            // Without Expect, so the body follows the head at once.
            let response = try Curl.fetch(server.url("/api/echo/parked"), ["-X", method, "--data-binary", "@\(file.path)", "-H", "Expect:"])
            #expect(response.status == 200, "\(method): \(response.status) \(response.stderr) \(server.stderr.text)")
            #expect(try Echo(response.body).bodySHA256 == expected, "\(method)")
        }
        let get = try Curl.fetch(server.url("/api/echo/parked?x=1"))
        #expect(get.status == 200)
        #expect(try Echo(get.body).query == "x=1")
        #expect(try server.metric(#"marquee_policy_decisions_total{check="rate_limit",outcome="allow",reason="within_limit"}"#) == 3)
    }

    @Test("route=api limits count /api requests only; media stays served; /api needs no URL token even when tokens are required")
    func apiRateLimitAndTokens() throws {
        let upstream = try ServiceUpstream()
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let server = try Self.gateway(
            upstream,
            config: """
                tokens:
                  key_directory: \(keys.path)
                  required: true
                rate_limits:
                  limits:
                    - "api_per_client key=client route=api rate=3/60s"
                """, arguments: ["--require-token"])
        defer { server.stop() }
        let api = try statuses(server, "/api/echo/limited", count: 5)
        #expect(api.codes == [200, 200, 200, 429, 429])
        // Media is not counted by the api limit, and still needs its token.
        let token = try SignedGateway.sign([
            "--key-id", "k1", "--secret-file", keys.appendingPathComponent("k1.key").path, "--token-only", "--scope", "/titles/", "/x",
        ])
        let media = try statuses(server, "/t/\(token)" + MediaFixtures.hlsSegment, count: 4)
        #expect(media.codes == [200, 200, 200, 200])
        #expect(try statuses(server, MediaFixtures.hlsSegment, count: 1).codes == [403])
        #expect(try upstream.stats().requests == 3)
    }
}
