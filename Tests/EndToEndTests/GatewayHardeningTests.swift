import Foundation
import Glibc
import MarqueeTestSupport
import Testing

/// The admin listener's guard (bearer secret, Host check, revocation bounds) and the limits on
/// slow and greedy clients of the service proxy (a body deadline, a bounded body budget, a
/// per-address connection cap), each against the real binary.
@Suite("Gateway hardening")
struct GatewayHardeningTests {
    /// A raw request to the admin listener with exactly these header lines.
    static func admin(_ server: ServerProcess, _ requestLine: String, headers: [String]) throws -> HTTPResponse {
        let connection = try RawConnection(port: server.adminPort)
        try connection.send(requestLine + "\r\n" + headers.map { $0 + "\r\n" }.joined() + "Connection: close\r\n\r\n")
        return try connection.readResponse()
    }

    static func host(_ server: ServerProcess) -> String { "Host: 127.0.0.1:\(server.adminPort)" }

    // MARK: - Admin listener

    @Test("Without admin.token_file, POST /revocations answers 403 and revokes nothing; /metrics, /healthz and /readyz stay open")
    func revocationsOffWithoutSecret() throws {
        let fixtures = try MediaFixtures.shared()
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let server = try ServerProcess(root: fixtures.root, arguments: ["--token-key-dir", keys.path])
        defer { server.stop() }
        let refused = try Self.admin(server, "POST /revocations?session=s1&reason=funds HTTP/1.1", headers: [Self.host(server), "Content-Length: 0"])
        #expect(refused.status == 403)
        #expect(refused.bodyText.contains("admin.token_file"), "\(refused.bodyText)")
        for path in ["/metrics", "/healthz", "/readyz"] {
            #expect(try Self.admin(server, "GET \(path) HTTP/1.1", headers: [Self.host(server)]).status == 200, "\(path)")
        }
        let token = try SignedGateway.sign([
            "--key-id", "k1", "--secret-file", keys.appendingPathComponent("k1.key").path, "--token-only", "--scope", "/files/", "--session", "s1", "/x",
        ])
        #expect(try Curl.fetch(server.url("/t/\(token)\(MediaFixtures.small)")).status == 200, "the session was revoked anyway")
    }

    @Test("POST /revocations needs the bearer secret: none or a wrong one is 401, the right one revokes")
    func revocationsNeedTheSecret() throws {
        let fixtures = try MediaFixtures.shared()
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let secretFile = try RedisPolicyTests.writeAdminToken()
        let secret = try String(contentsOf: secretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let server = try ServerProcess(root: fixtures.root, arguments: ["--token-key-dir", keys.path, "--admin-token-file", secretFile.path])
        defer { server.stop() }
        let token = try SignedGateway.sign([
            "--key-id", "k1", "--secret-file", keys.appendingPathComponent("k1.key").path, "--token-only", "--scope", "/files/", "--session", "s2", "/x",
        ])
        let media = server.url("/t/\(token)\(MediaFixtures.small)")
        let line = "POST /revocations?session=s2&reason=funds&ttl=600 HTTP/1.1"
        for authorization in [nil, "Authorization: Bearer wrong", "Authorization: Bearer \(secret)x", "Authorization: Basic \(secret)", "Authorization: Bearer"] {
            let response = try Self.admin(server, line, headers: [Self.host(server), "Content-Length: 0"] + (authorization.map { [$0] } ?? []))
            #expect(response.status == 401, "\(authorization ?? "no Authorization") got \(response.status)")
            #expect(response.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
        }
        #expect(try Curl.fetch(media).status == 200, "a refused revocation took effect")

        let accepted = try Self.admin(server, line, headers: [Self.host(server), "Content-Length: 0", "Authorization: Bearer \(secret)"])
        #expect(accepted.status == 200, "\(accepted.bodyText)")
        #expect(try Curl.fetch(media).status == 402)

        // marquee revoke sends it from the same file.
        let cli = try Tool.run(
            try MarqueeBinary.locate().path,
            ["revoke", "--session", "s3", "--admin", "127.0.0.1:\(server.adminPort)", "--admin-token-file", secretFile.path])
        #expect(cli.termination == .exited(0), "\(cli.stderrText)")
        let withoutSecret = try Tool.run(try MarqueeBinary.locate().path, ["revoke", "--session", "s4", "--admin", "127.0.0.1:\(server.adminPort)"])
        #expect(withoutSecret.termination != .exited(0))
        #expect(withoutSecret.stderrText.contains("401"), "\(withoutSecret.stderrText)")
    }

    @Test("The admin listener answers only to its own names in Host (DNS rebinding), and to admin.allowed_hosts")
    func adminChecksHost() throws {
        let fixtures = try MediaFixtures.shared()
        let config = try configFile("admin:\n  allowed_hosts: [\"Metrics.Internal\"]")
        let server = try ServerProcess(root: fixtures.root, configFile: config)
        defer { server.stop() }
        let port = server.adminPort
        for host in ["evil.example", "evil.example:\(port)", "127.0.0.1.evil.example", "localhost.evil.example", "[::1", "127.0.0.1:x"] {
            let response = try Self.admin(server, "GET /metrics HTTP/1.1", headers: ["Host: \(host)"])
            #expect(response.status == 403, "Host \(host) got \(response.status)")
            #expect(!response.bodyText.contains("marquee_"), "metrics leaked to Host \(host)")
        }
        for host in ["127.0.0.1:\(port)", "127.0.0.1", "localhost:\(port)", "LOCALHOST", "[::1]:\(port)", "metrics.internal:9090", "metrics.internal"] {
            #expect(try Self.admin(server, "GET /healthz HTTP/1.1", headers: ["Host: \(host)"]).status == 200, "Host \(host)")
        }
    }

    @Test("Revocations through the admin route are bounded: a TTL over admin.max_revocation_ttl_s is 400, a burst past admin.revocations_per_second is 429")
    func revocationBounds() throws {
        let fixtures = try MediaFixtures.shared()
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let secretFile = try RedisPolicyTests.writeAdminToken()
        let secret = try String(contentsOf: secretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let config = try configFile("admin:\n  max_revocation_ttl_s: 3600\n  revocations_per_second: 2")
        let server = try ServerProcess(
            root: fixtures.root, configFile: config, arguments: ["--token-key-dir", keys.path, "--admin-token-file", secretFile.path])
        defer { server.stop() }
        let headers = [Self.host(server), "Content-Length: 0", "Authorization: Bearer \(secret)"]
        let long = try Self.admin(server, "POST /revocations?session=long&ttl=3601 HTTP/1.1", headers: headers)
        #expect(long.status == 400)
        #expect(long.bodyText.contains("admin.max_revocation_ttl_s"), "\(long.bodyText)")

        let start = ContinuousClock.now
        var accepted = 0
        var limited: HTTPResponse?
        for i in 0..<20 {
            let response = try Self.admin(server, "POST /revocations?session=burst-\(i)&ttl=60 HTTP/1.1", headers: headers)
            if response.status == 200 { accepted += 1 } else if response.status == 429 { limited = response }
        }
        let elapsed = (ContinuousClock.now - start) / .seconds(1)
        // A bucket of 2 refilled at 2 per second: at most 2 + 2 per elapsed second got through.
        #expect(Double(accepted) <= 2 + 2 * elapsed + 1, "\(accepted) accepted in \(elapsed) s")
        let refusal = try #require(limited, "20 revocations at once were all accepted")
        #expect(refusal.header("Retry-After") == "1")
        #expect(refusal.bodyText.contains("admin.revocations_per_second"))
    }

    // MARK: - Slow and greedy clients

    @Test("A request body trickled a byte at a time gets 408 at http.body_timeout_ms and is never forwarded")
    func trickledBodyTimesOut() throws {
        let upstream = try ServiceUpstream()
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(
            root: fixtures.root, environment: ["MARQUEE_HTTP_BODY_TIMEOUT_MS": "1500"], arguments: ["--service", "echo=\(upstream.url)"])
        defer { server.stop() }
        let connection = try RawConnection(port: server.mediaPort)
        try connection.send("POST /api/echo/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        // One byte every 100 ms would take 100 s; the old per-segment header timer restarted on
        // each byte and never fired.
        var answer: [UInt8] = []
        for _ in 0..<300 {
            try? connection.send("x")
            answer += (try? connection.readAvailable(timeout: .milliseconds(100))) ?? []
            if answer.count > 12 { break }
        }
        let (rest, ending) = connection.readToEnd(timeout: .seconds(10))
        let (responses, _) = try HTTPResponse.parseAll(answer + rest)
        let response = try #require(responses.first, "no answer while trickling a body (\(ending))")
        #expect(response.status == 408)
        #expect(ending.isClosed)
        #expect(try upstream.stats().requests == 0, "the partial body was forwarded")
        #expect(try server.metric("marquee_connection_timeouts_total{kind=\"body\"}") == 1)
    }

    @Test("Request bodies held by a loop are bounded: past services.body_buffer_bytes_per_loop a request gets 503 with Retry-After")
    func bodyBudgetIsBounded() throws {
        let upstream = try ServiceUpstream()
        let fixtures = try MediaFixtures.shared()
        let config = try configFile("services:\n  max_request_body_bytes: 100000\n  body_buffer_bytes_per_loop: 300000")
        let server = try ServerProcess(root: fixtures.root, threads: 1, configFile: config, arguments: ["--service", "echo=\(upstream.url)"])
        defer { server.stop() }
        // Each body reserves its buffer before the gateway says 100 Continue; two fit the budget.
        var held: [RawConnection] = []
        for _ in 0..<2 {
            let connection = try RawConnection(port: server.mediaPort)
            try connection.send("POST /api/echo/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
            let interim = try connection.readAvailable(timeout: .seconds(10))
            #expect(String(decoding: interim, as: UTF8.self).hasPrefix("HTTP/1.1 100 Continue"))
            held.append(connection)
        }
        let third = try RawConnection(port: server.mediaPort)
        try third.send("POST /api/echo/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "y", count: 100_000))
        let refused = try third.readResponse()
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") == "1")
        #expect(try server.metric("marquee_proxy_body_budget_refusals_total{upstream=\"echo\"}") == 1)
        // The held bodies complete and are forwarded; then there is room again.
        for connection in held {
            try connection.send(String(repeating: "z", count: 100_000))
            #expect(try connection.readResponse().status == 200)
        }
        let after = try RawConnection(port: server.mediaPort)
        try after.send("POST /api/echo/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        #expect(try after.readResponse().status == 200)
    }

    @Test("One address may hold rate_limits.max_connections_per_address connections by default (256); the next gets 429")
    func perAddressCapByDefault() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root, threads: 1)
        defer { server.stop() }
        var held: [RawConnection] = []
        for _ in 0..<256 { held.append(try RawConnection(port: server.mediaPort)) }
        #expect(try waitUntil(timeout: .seconds(10)) { try server.metric("marquee_connections_open") == 256 })
        let over = try RawConnection(port: server.mediaPort)
        let (received, ending) = over.readToEnd(timeout: .seconds(10))
        let (responses, _) = try HTTPResponse.parseAll(received)
        let refusal = try #require(responses.first, "connection 257 from one address got no answer (\(ending))")
        #expect(refusal.status == 429)
        #expect(ending.isClosed)
        // Once they close, the address is served again.
        held.removeAll()
        #expect(try waitUntil(timeout: .seconds(10)) { try server.metric("marquee_connections_open") == 0 })
        #expect(try Curl.fetch(server.url(MediaFixtures.small)).status == 200)
    }
}
