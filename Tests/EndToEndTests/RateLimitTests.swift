import Foundation
import Glibc
import MarqueeTestSupport
import Testing

/// Writes a YAML configuration file for a test gateway.
func configFile(_ yaml: String) throws -> URL {
    let file = Scratch.newFile("config.yaml")
    try yaml.write(to: file, atomically: true, encoding: .utf8)
    return file
}

/// Sends `count` GETs for `path` over one keep-alive connection and returns the statuses and the
/// last 429's headers.
func statuses(_ server: ServerProcess, _ path: String, count: Int, headers: [String] = []) throws -> (codes: [Int], limited: HTTPResponse?) {
    let connection = try RawConnection(port: server.mediaPort)
    var codes: [Int] = []
    var limited: HTTPResponse?
    let extra = headers.map { $0 + "\r\n" }.joined()
    for _ in 0..<count {
        try connection.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(extra)\r\n")
        let response = try connection.readResponse()
        codes.append(response.status)
        if response.status == 429 { limited = response }
    }
    return (codes, limited)
}

@Suite("Rate limits")
struct RateLimitTests {
    @Test("GCRA per client: the burst passes, the next request gets 429 with Retry-After and RateLimit headers")
    func perClientLimit() throws {
        let fixtures = try MediaFixtures.shared()
        let config = try configFile(
            """
            rate_limits:
              limits:
                - "per_client key=client route=media rate=5/10s burst=5"
            """)
        let server = try ServerProcess(root: fixtures.root, configFile: config)
        defer { server.stop() }
        let (codes, limited) = try statuses(server, MediaFixtures.hlsSegment, count: 8)
        #expect(codes == [200, 200, 200, 200, 200, 429, 429, 429])
        let response = try #require(limited)
        #expect(response.bodyText == "rate limit exceeded; retry later\n")
        let retry = Int(response.header("retry-after") ?? "") ?? 0
        #expect(retry >= 1 && retry <= 2, "Retry-After \(retry): one emission interval (2 s) at most")
        #expect(response.header("ratelimit-policy") == "\"per_client\";q=5;w=10")
        #expect(response.header("ratelimit")?.hasPrefix("\"per_client\";r=0;t=") == true)
        #expect(try server.metric(#"marquee_policy_decisions_total{check="rate_limit",outcome="deny",reason="limited"}"#) == 3)
        #expect(try server.metric(#"marquee_policy_decisions_total{check="rate_limit",outcome="allow",reason="within_limit"}"#) == 5)
    }

    @Test("Per-session limits count each signed session apart; headers on every response when asked")
    func perSessionLimit() throws {
        let fixtures = try MediaFixtures.shared()
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let config = try configFile(
            """
            tokens:
              key_directory: \(keys.path)
              required: true
            rate_limits:
              headers: always
              limits:
                - "per_session key=session route=media rate=3/60s"
            """)
        let server = try ServerProcess(root: fixtures.root, configFile: config, arguments: ["--require-token"])
        defer { server.stop() }
        func token(_ session: String) throws -> String {
            try SignedGateway.sign([
                "--key-id", "k1", "--secret-file", keys.appendingPathComponent("k1.key").path, "--token-only", "--scope", "/titles/",
                "--session", session, "/x",
            ])
        }
        let a = try token("viewer-a")
        let b = try token("viewer-b")
        let first = try statuses(server, "/t/\(a)" + MediaFixtures.hlsSegment, count: 4)
        #expect(first.codes == [200, 200, 200, 429])
        let second = try statuses(server, "/t/\(b)" + MediaFixtures.hlsSegment, count: 3)
        #expect(second.codes == [200, 200, 200])
        let headers = try Curl.fetch(server.url("/t/\(try token("viewer-c"))" + MediaFixtures.hlsSegment))
        #expect(headers.header("ratelimit") == "\"per_session\";r=2;t=20")
        #expect(headers.header("ratelimit-policy") == "\"per_session\";q=3;w=60")
    }

    @Test("A limit with a delay paces instead of refusing: past the burst each request waits its turn, and only those beyond the delay get 429")
    func pacing() throws {
        let fixtures = try MediaFixtures.shared()
        // T = 250 ms, burst 1, a request may wait up to 1 s.
        let config = try configFile(
            """
            rate_limits:
              limits:
                - "pace key=client route=media rate=4/1s burst=1 delay=1s"
            """)
        let server = try ServerProcess(root: fixtures.root, configFile: config)
        defer { server.stop() }

        // One after another on one connection: none refused, each served a T after the one before.
        let started = Date()
        let (codes, _) = try statuses(server, MediaFixtures.hlsSegment, count: 5)
        let elapsed = Date().timeIntervalSince(started)
        #expect(codes == [200, 200, 200, 200, 200])
        #expect(elapsed >= 0.95, "five requests at 4 per second were served in \(elapsed) s, not paced")
        #expect(try server.metric(#"marquee_policy_decisions_total{check="rate_limit",outcome="delay",reason="queued"}"#) >= 4)

        // Twelve at once (after the key is idle again): the burst and the four a second can hold
        // are served, the rest refused with 429 at once (one more may pass if the loaded machine
        // spreads their arrival over a T).
        Thread.sleep(forTimeInterval: 1.5)
        let connections = try (0..<12).map { _ in try RawConnection(port: server.mediaPort) }
        for c in connections { try c.send("GET \(MediaFixtures.hlsSegment) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") }
        let burst = try connections.map { try $0.readResponse().status }
        #expect(burst.filter { $0 == 200 }.count >= 5 && burst.filter { $0 == 200 }.count <= 7, "\(burst)")
        #expect(burst.filter { $0 == 429 }.count == 12 - burst.filter { $0 == 200 }.count, "\(burst)")

        // A client that hangs up while it waits leaves nothing behind: the gateway goes on serving.
        let leaving = try RawConnection(port: server.mediaPort)
        try leaving.send("GET \(MediaFixtures.hlsSegment) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        leaving.close()
        #expect(try waitUntil(timeout: .seconds(10)) { (try? Curl.fetch(server.url(MediaFixtures.hlsSegment)).status) == 200 })
    }

    @Test("A cap on concurrent connections per address refuses the extra connection with 429")
    func connectionCap() throws {
        let fixtures = try MediaFixtures.shared()
        let config = try configFile(
            """
            rate_limits:
              max_connections_per_address: 3
            """)
        let server = try ServerProcess(root: fixtures.root, configFile: config)
        defer { server.stop() }
        var open: [RawConnection] = []
        for _ in 0..<3 {
            let c = try RawConnection(port: server.mediaPort)
            try c.send("GET \(MediaFixtures.hlsSegment) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try c.readResponse().status == 200)
            open.append(c)
        }
        let extra = try RawConnection(port: server.mediaPort)
        let refused = extra.readToEnd(timeout: .seconds(5))
        #expect(String(decoding: refused.bytes, as: UTF8.self).hasPrefix("HTTP/1.1 429 Too Many Requests\r\n"))
        // A connection that closes frees its place.
        open.removeLast().close()
        #expect(
            try waitUntil(timeout: .seconds(5)) {
                let c = try RawConnection(port: server.mediaPort)
                try c.send("GET \(MediaFixtures.hlsSegment) HTTP/1.1\r\nHost: x\r\n\r\n")
                return (try? c.readResponse().status) == 200
            })
        #expect(try server.metric(#"marquee_policy_decisions_total{check="connections",outcome="deny",reason="per_address_cap"}"#) >= 1)
    }
}

@Suite("Shared limits and revocation through Redis", .serialized)
struct RedisPolicyTests {
    static func gatewayConfig(
        _ redis: RedisServer, keys: URL, failMode: String = "local", limit: String = "rate=10/60s burst=10", adminTokenFile: URL? = nil
    ) throws -> URL {
        try configFile(
            """
            admin:
              token_file: "\(adminTokenFile?.path ?? "")"
            tokens:
              key_directory: \(keys.path)
            rate_limits:
              limits:
                - "shared key=client route=media \(limit)"
            redis:
              url: \(redis.url)
              timeout_ms: 100
              fail_mode: \(failMode)
            """)
    }

    @Test("Two gateways sharing one Redis enforce one limit together")
    func oneLimitAcrossGateways() throws {
        let fixtures = try MediaFixtures.shared()
        let redis = try RedisServer()
        defer { redis.stop() }
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let config = try Self.gatewayConfig(redis, keys: keys)
        let a = try ServerProcess(root: fixtures.root, configFile: config)
        defer { a.stop() }
        let b = try ServerProcess(root: fixtures.root, configFile: config)
        defer { b.stop() }
        #expect(try waitUntil(timeout: .seconds(10)) { try [a, b].allSatisfy { try $0.metric(Self.up("rate_limits")) == 1 } })
        var allowed = 0
        var refused = 0
        for round in 0..<8 {
            let server = round % 2 == 0 ? a : b
            for code in try statuses(server, MediaFixtures.hlsSegment, count: 2).codes {
                if code == 200 { allowed += 1 } else if code == 429 { refused += 1 }
            }
        }
        #expect(allowed == 10, "the shared limit allows 10 in all, got \(allowed)")
        #expect(refused == 6)
        #expect(try a.metric(#"marquee_policy_decisions_total{check="rate_limit",outcome="fallback",reason="redis_unavailable"}"#) == 0)
    }

    @Test("A shared limit with a delay paces one client across two gateways: queued through Redis, none refused")
    func pacingAcrossGateways() throws {
        let fixtures = try MediaFixtures.shared()
        let redis = try RedisServer()
        defer { redis.stop() }
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let config = try Self.gatewayConfig(redis, keys: keys, limit: "rate=4/1s burst=1 delay=2s")
        let a = try ServerProcess(root: fixtures.root, configFile: config)
        defer { a.stop() }
        let b = try ServerProcess(root: fixtures.root, configFile: config)
        defer { b.stop() }
        #expect(try waitUntil(timeout: .seconds(10)) { try [a, b].allSatisfy { try $0.metric(Self.up("rate_limits")) == 1 } })
        let started = Date()
        var codes: [Int] = []
        for round in 0..<6 { codes += try statuses(round % 2 == 0 ? a : b, MediaFixtures.hlsSegment, count: 1).codes }
        let elapsed = Date().timeIntervalSince(started)
        #expect(codes == [200, 200, 200, 200, 200, 200])
        #expect(elapsed >= 1.2, "six requests at 4 per second across two gateways took \(elapsed) s: not paced together")
        let queued = #"marquee_policy_decisions_total{check="rate_limit",outcome="delay",reason="queued"}"#
        #expect(try a.metric(queued) + b.metric(queued) >= 5)
    }

    /// A 48-character admin bearer secret in a file of its own.
    static func writeAdminToken() throws -> URL {
        let file = Scratch.newFile("admin.token")
        try (String((0..<48).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! }) + "\n").write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    static func up(_ link: String) -> String { "marquee_redis_up{link=\"\(link)\"}" }

    @Test("A revocation published through one gateway is obeyed by the other within a second: 402 for funds")
    func revocationReachesEveryGateway() throws {
        let fixtures = try MediaFixtures.shared()
        let redis = try RedisServer()
        defer { redis.stop() }
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let adminToken = try Self.writeAdminToken()
        let config = try Self.gatewayConfig(redis, keys: keys, limit: "rate=1000/1s", adminTokenFile: adminToken)
        let a = try ServerProcess(root: fixtures.root, configFile: config)
        defer { a.stop() }
        let b = try ServerProcess(root: fixtures.root, configFile: config)
        defer { b.stop() }
        let token = try SignedGateway.sign([
            "--key-id", "k1", "--secret-file", keys.appendingPathComponent("k1.key").path, "--token-only", "--scope", "/titles/",
            "--session", "sess-77", "/x",
        ])
        let url = "/t/\(token)" + MediaFixtures.hlsSegment
        #expect(try Curl.fetch(b.url(url)).status == 200)
        #expect(try waitUntil(timeout: .seconds(10)) { try [a, b].allSatisfy { try $0.metric(Self.up("revocations")) == 1 } })
        let revoke = try Tool.run(
            try MarqueeBinary.locate().path,
            ["revoke", "--session", "sess-77", "--reason", "funds", "--admin", "127.0.0.1:\(a.adminPort)", "--admin-token-file", adminToken.path])
        #expect(revoke.termination == .exited(0), "\(revoke.stderrText)")
        let start = ContinuousClock.now
        let obeyed = try waitUntil(timeout: .seconds(1)) { try Curl.fetch(b.url(url)).status == 402 }
        #expect(obeyed, "gateway B still served the revoked session after \(ContinuousClock.now - start)")
        #expect(try Curl.fetch(a.url(url)).bodyText == "playback session ended: payment required\n")
        // Another session is unaffected; "other" revocations answer 403.
        let other = try SignedGateway.sign([
            "--key-id", "k1", "--secret-file", keys.appendingPathComponent("k1.key").path, "--token-only", "--scope", "/titles/",
            "--session", "sess-78", "/x",
        ])
        #expect(try Curl.fetch(b.url("/t/\(other)" + MediaFixtures.hlsSegment)).status == 200)
        let direct = try Tool.run(try MarqueeBinary.locate().path, ["revoke", "--session", "sess-78", "--redis", redis.url])
        #expect(direct.termination == .exited(0), "\(direct.stderrText)")
        #expect(try waitUntil(timeout: .seconds(1)) { try Curl.fetch(a.url("/t/\(other)" + MediaFixtures.hlsSegment)).status == 403 })
        // A gateway started later learns earlier revocations.
        let c = try ServerProcess(root: fixtures.root, configFile: config)
        defer { c.stop() }
        #expect(try waitUntil(timeout: .seconds(2)) { try Curl.fetch(c.url(url)).status == 402 })
    }

    @Test("With Redis stopped the configured fail mode holds and nothing crashes")
    func redisDown() throws {
        let fixtures = try MediaFixtures.shared()
        let redis = try RedisServer()
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let closed = try ServerProcess(root: fixtures.root, configFile: try Self.gatewayConfig(redis, keys: keys, failMode: "closed"))
        defer { closed.stop() }
        let local = try ServerProcess(
            root: fixtures.root, configFile: try Self.gatewayConfig(redis, keys: keys, failMode: "local", limit: "rate=3/60s"))
        defer { local.stop() }
        let open = try ServerProcess(root: fixtures.root, configFile: try Self.gatewayConfig(redis, keys: keys, failMode: "open", limit: "rate=1/60s"))
        defer { open.stop() }
        let gateways = [closed, local, open]
        #expect(try waitUntil(timeout: .seconds(10)) { try gateways.allSatisfy { try $0.metric(Self.up("rate_limits")) == 1 && $0.metric(Self.up("revocations")) == 1 } })
        #expect(try statuses(closed, MediaFixtures.hlsSegment, count: 1).codes == [200])
        redis.stop()
        // Each gateway has seen Redis go (its revocation feed's connection ended).
        #expect(try waitUntil(timeout: .seconds(10)) { try gateways.allSatisfy { try $0.metric(Self.up("revocations")) == 0 } })
        #expect(try statuses(closed, MediaFixtures.hlsSegment, count: 3).codes == [429, 429, 429])
        #expect(try statuses(local, MediaFixtures.hlsSegment, count: 5).codes == [200, 200, 200, 429, 429])
        #expect(try statuses(open, MediaFixtures.hlsSegment, count: 5).codes == [200, 200, 200, 200, 200])
        for server in [closed, local, open] {
            #expect(server.isRunning)
            #expect(try server.metric(#"marquee_policy_decisions_total{check="rate_limit",outcome="fallback",reason="redis_unavailable"}"#) >= 3)
        }
        // Redis back: the shared limit applies again.
        try redis.start()
        #expect(try waitUntil(timeout: .seconds(5)) { try statuses(closed, MediaFixtures.hlsSegment, count: 1).codes == [200] })
    }
}

@Suite("Policy configuration")
struct PolicyConfigurationTests {
    @Test(
        "Bad policy settings stop start-up with a message naming the key",
        arguments: [
            ("rate_limits:\n  limits:\n    - \"x key=ip rate=1/1s\"", "rate_limits.limits: \"x key=ip rate=1/1s\": key must be client, session or route"),
            ("rate_limits:\n  limits:\n    - \"x key=client rate=ten/1s\"", "rate must look like 100/1s"),
            ("rate_limits:\n  limits:\n    - \"x key=client\"", "rate= is required"),
            ("rate_limits:\n  limits:\n    - \"x key=client rate=1/1s delay=soon\"", "delay must be a duration up to 60s"),
            ("origin:\n  cache_dir: /tmp/x", "origin.cache_dir was renamed cache.dir"),
            ("origin:\n  cache_max_bytes: 1000", "origin.cache_max_bytes was renamed cache.max_bytes"),
            ("rate_limits:\n  limits:\n    - \"x key=client rate=1/1s delay=2m\"", "delay must be a duration up to 60s"),
            ("geo:\n  rules:\n    - \"/titles/x/ allow=USA\"", "geo.rules: \"/titles/x/ allow=USA\": \"USA\" is not a two-letter country code"),
            ("geo:\n  rules:\n    - \"/titles/x/ allow=US\"", "geo.rules need geo.database"),
            ("geo:\n  database: /nonexistent.mmdb", "geo.database"),
            ("geo:\n  overrides:\n    - \"300.1.1.1/8 deny\"", "geo.overrides"),
            ("client:\n  trusted_proxies: [\"10.0.0.0/33\"]", "client.trusted_proxies: \"10.0.0.0/33\""),
            ("tokens:\n  keys: [\"k1:/nonexistent/secret\"]", "cannot read /nonexistent/secret"),
            ("redis:\n  url: \"http://x\"\nrate_limits:\n  limits:\n    - \"x key=client rate=1/1s\"", "redis.url"),
            ("redis:\n  fail_mode: maybe", "redis.fail_mode must be \"local\", \"open\" or \"closed\""),
        ])
    func badSettings(yaml: String, message: String) throws {
        let fixtures = try MediaFixtures.shared()
        let config = try configFile(yaml)
        let result = try Tool.run(
            try MarqueeBinary.locate().path,
            ["origin", "--root", fixtures.root.path, "--listen", "127.0.0.1:0", "--admin", "off", "--config", config.path, "--no-require-token"],
            timeout: .seconds(20))
        #expect(result.termination != .exited(0))
        #expect(result.stderrText.contains(message), "stderr: \(result.stderrText)")
    }

    @Test("Secure by default: without a token key and without --no-require-token, origin refuses to start and says how to go on")
    func refusesToServeWithoutTokensByDefault() throws {
        let fixtures = try MediaFixtures.shared()
        for extra in [[], ["--config", try configFile("tokens:\n  required: true").path]] {
            let result = try Tool.run(
                try MarqueeBinary.locate().path,
                ["origin", "--root", fixtures.root.path, "--listen", "127.0.0.1:0", "--admin", "off"] + extra, timeout: .seconds(20))
            #expect(result.termination != .exited(0))
            #expect(result.stderrText.contains("tokens.required is on (the default) but no token key is configured"), "stderr: \(result.stderrText)")
            #expect(result.stderrText.contains("--no-require-token"), "stderr: \(result.stderrText)")
        }
    }

    @Test("With a token key and no flag, an unsigned request gets 403; --no-require-token serves public content")
    func tokensRequiredUnlessToldOtherwise() throws {
        let fixtures = try MediaFixtures.shared()
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let strict = try ServerProcess(root: fixtures.root, publicContent: false, arguments: ["--token-key-dir", keys.path])
        defer { strict.stop() }
        let refused = try Curl.fetch(strict.url(MediaFixtures.small))
        #expect(refused.status == 403)
        #expect(refused.bodyText.contains("signed URL"), "body: \(refused.bodyText)")

        let open = try ServerProcess(root: fixtures.root, publicContent: false, arguments: ["--token-key-dir", keys.path, "--no-require-token"])
        defer { open.stop() }
        #expect(try Curl.fetch(open.url(MediaFixtures.small)).status == 200)
        let byConfig = try ServerProcess(root: fixtures.root, publicContent: false, configFile: try configFile("tokens:\n  required: false"))
        defer { byConfig.stop() }
        #expect(try Curl.fetch(byConfig.url(MediaFixtures.small)).status == 200)
    }

    @Test("A short secret in a key file is refused with the reason")
    func shortSecret() throws {
        let fixtures = try MediaFixtures.shared()
        let keys = try Scratch.newDirectory("keys")
        try "short\n".write(to: keys.appendingPathComponent("k1.key"), atomically: true, encoding: .utf8)
        let result = try Tool.run(
            try MarqueeBinary.locate().path,
            ["origin", "--root", fixtures.root.path, "--listen", "127.0.0.1:0", "--admin", "off", "--token-key-dir", keys.path],
            timeout: .seconds(20))
        #expect(result.termination != .exited(0))
        #expect(result.stderrText.contains("at least 32 are required"), "stderr: \(result.stderrText)")
    }
}

/// A TCP listener that accepts and reads but never answers: a Redis that hangs.
final class SilentServer: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    private var clients: [Int32] = []
    private let lock = NSLock()

    init() throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = fd
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { throw ToolError(description: "cannot listen") }
        port = UInt16(bigEndian: address.sin_port)
        Thread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                lock.lock()
                clients.append(client)
                lock.unlock()
            }
        }.start()
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        lock.lock()
        for client in clients { close(client) }
        lock.unlock()
    }
}

extension RedisPolicyTests {
    @Test("A Redis that accepts but never answers: requests are decided by the fail mode within the timeout, the loops keep serving")
    func silentRedis() throws {
        let fixtures = try MediaFixtures.shared()
        let silent = try SilentServer()
        defer { silent.stop() }
        let config = try configFile(
            """
            rate_limits:
              limits:
                - "shared key=client route=media rate=3/60s"
            redis:
              url: redis://127.0.0.1:\(silent.port)/0
              timeout_ms: 100
              fail_mode: local
            """)
        let server = try ServerProcess(root: fixtures.root, configFile: config)
        defer { server.stop() }
        let start = ContinuousClock.now
        let codes = try statuses(server, MediaFixtures.hlsSegment, count: 5).codes
        let elapsed = ContinuousClock.now - start
        #expect(codes == [200, 200, 200, 429, 429])
        #expect(elapsed < .seconds(3), "5 requests took \(elapsed) against a silent Redis")
        // Other connections are served meanwhile: the admin and a second client.
        #expect(try server.admin("/healthz").status == 200)
        #expect(try Curl.fetch(server.url(MediaFixtures.hlsMaster)).status == 429)
        #expect(server.isRunning)
        #expect(try server.metric(#"marquee_policy_decisions_total{check="rate_limit",outcome="fallback",reason="redis_unavailable"}"#) >= 5)
    }
}
