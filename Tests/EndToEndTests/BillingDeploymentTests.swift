import Foundation
import Glibc
import MarqueeRedis
import MarqueeTestSupport
import Testing

/// Pay per minute as deployed, every part its own process: `marquee origin` streams its delivery
/// records to Redis, `marquee billing` (on PostgreSQL) meters them through a consumer group and
/// revokes through Redis, and the gateway, fed by Redis, refuses the session with 402.
@Suite("Billing as deployed: gateway → Redis stream → marquee billing → Redis revocation → gateway", .serialized)
struct BillingDeploymentTests {
    @Test("A viewer with funds for one minute plays in ffmpeg through the gateway and is cut off with 402, billed one minute, balance 0, every record acknowledged")
    func throughRedis() throws {
        let redis = try RedisServer()
        try redis.start()
        defer { redis.stop() }

        // A 150-second title of 2-second segments, packaged into the gateway's root.
        let root = try Scratch.newDirectory("deployed-root")
        try PayPerMinuteTests.packageTestCard(seconds: 150, into: root.appendingPathComponent("titles/film1/v1"))

        // Auth (for the admin's token) and billing, on PostgreSQL, metering the stream.
        let authDatabase = try DatabaseKind.postgres.freshURL()
        try ServiceProcess.addUser(email: "admin@example.com", role: "admin", password: "an admin passphrase", database: authDatabase)
        let auth = try ServiceProcess("auth", ["--database", authDatabase], environment: ["MARQUEE_AUTH_BCRYPT_COST": "10"])
        defer { auth.stop() }
        let login = try JSONCall.send("POST", auth.url("/api/auth/login"), json: ["email": "admin@example.com", "password": "an admin passphrase"])
        let admin = try #require(login.body["access_token"] as? String, "\(login.body)")
        let playbackCredential = try ServiceCredentialFile.make("playback-credential")
        let billing = try ServiceProcess(
            "billing",
            ["--database", try DatabaseKind.postgres.freshURL(), "--auth-url", auth.baseURL, "--playback-credential-file", playbackCredential.path,
             "--package-store", root.path, "--data", try Scratch.newDirectory("billing-data").path],
            environment: ["MARQUEE_REDIS_URL": redis.url, "MARQUEE_BILLING_STREAM_CONSUMER": "billing-a", "MARQUEE_BILLING_METER_INTERVAL_MS": "100"])
        defer { billing.stop() }
        #expect(billing.output.text.contains("metering the Redis stream marquee:deliveries as billing-a"), "\(billing.output.text)")

        // The gateway: signed URLs, sessions paced, records to the stream, revocations from Redis.
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let config = try configFile(
            """
            tokens:
              key_directory: \(keys.path)
              required: true
            rate_limits:
              limits:
                - "session_pace key=session route=media rate=4/1s burst=20 delay=10s"
            redis:
              url: \(redis.url)
            """)
        let gateway = try ServerProcess(root: root, publicContent: false, configFile: config, arguments: ["--require-token"])
        defer { gateway.stop() }
        #expect(try waitUntil(timeout: .seconds(10)) { try gateway.metric("marquee_redis_up{link=\"revocations\"}") == 1 })

        // Funds for one minute at 2 cents, the session opened the way playback opens it.
        let deposit = try JSONCall.send(
            "POST", billing.url("/api/billing/deposits"), token: admin, json: ["amount": 2, "currency": "EUR", "user_id": "viewer-1"],
            headers: ["Idempotency-Key: viewer-1-first"])
        #expect(deposit.status == 201, "\(deposit.body)")
        let session = "s-" + UUID().uuidString.prefix(8).lowercased()
        let opened = try JSONCall.send(
            "POST", billing.url("/internal/billing/sessions"),
            json: ["session_id": session, "user_id": "viewer-1", "title_id": "film1", "owner": "publisher-1", "package_version": "v1",
                   "price_per_minute": 2, "currency": "EUR"],
            headers: ["Authorization: Bearer \(try String(contentsOf: playbackCredential, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))"])
        #expect(opened.status == 201, "\(opened.body)")
        let token = try SignedGateway.sign([
            "--key-id", "k1", "--secret-file", keys.appendingPathComponent("k1.key").path, "--token-only", "--scope", "/titles/film1/v1/",
            "--session", session, "/x",
        ])
        let master = gateway.url("/t/\(token)/titles/film1/v1/master.m3u8")

        // ffmpeg plays at three times real time until the gateway refuses it.
        _ = try Tool.run(
            "/usr/bin/ffmpeg", ["-v", "error", "-nostdin", "-readrate", "3", "-i", master, "-map", "0", "-c", "copy", "-f", "null", "-"],
            timeout: .seconds(300))

        var bill: [String: Any] = [:]
        #expect(waitUntil(timeout: .seconds(60), interval: .milliseconds(200)) {
            bill = (try? JSONCall.send("GET", billing.url("/api/billing/sessions/\(session)"), token: admin).body) ?? [:]
            return bill["state"] as? String == "revoked"
        }, "the session was not revoked: \(bill)")
        #expect(bill["billed_minutes"] as? Int == 1, "\(bill)")
        #expect(bill["charged"] as? Int == 2, "\(bill)")
        let covered = bill["covered_seconds"] as? Double ?? Double(bill["covered_seconds"] as? Int ?? 0)
        #expect(covered > 60 && covered <= 120, "covered \(covered) s: at most one minute past the one paid")
        print("billing-deployed: \(covered) s of media delivered when the session was cut at 60 s paid")
        let wallet = try JSONCall.send("GET", billing.url("/api/billing/wallet?currency=EUR&user_id=viewer-1"), token: admin)
        #expect(wallet.body["balance"] as? Int == 0, "\(wallet.body)")

        // The gateway learned it from Redis: the session's playlist is refused with 402.
        #expect(try Curl.fetch(master).status == 402)
        #expect(try gateway.metric(#"marquee_policy_decisions_total{check="revocation",outcome="deny",reason="funds"}"#) >= 1)

        // Every record reached the stream and was acknowledged by billing's group once committed.
        let streamed = try gateway.metric("marquee_delivery_records_streamed_total")
        #expect(streamed > 0)
        #expect(try waitUntil(timeout: .seconds(30)) {
            guard case .array(let summary) = try redis.connection().command(["XPENDING", "marquee:deliveries", "billing"]) else { return false }
            return summary.first?.integerValue == 0
        }, "billing left entries unacknowledged")
    }
}
