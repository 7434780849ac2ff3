import Foundation
import Glibc
import MarqueeBus
import MarqueeRedis
import MarqueeTestSupport
import Testing

/// Billing's meter as a real `marquee billing` process under faults: SIGKILLed in the middle of
/// consuming a delivery log and restarted on the same database and log, and a `redis-server`
/// restarted while records flow from the gateway's carrier through the stream to billing's
/// consumer group. Every session's minutes, charges and write-offs are checked against an
/// oracle computed from the records the test wrote, and the money against what was deposited.
@Suite("Billing under faults (real processes)", .serialized)
struct BillingFaultTests {
    static let price = 10
    static let title = "fault-title"
    static let version = "v1"
    static let segmentSeconds = 2
    static let titleSegments = 400

    // MARK: - The package, the sessions and their records

    /// A package of 2-second segments, a video rendition and an audio rendition, as billing
    /// reads it from the store.
    static func writePackage(store: URL) throws {
        let folder = store.appendingPathComponent("titles/\(title)/\(version)")
        for rendition in ["video/720p", "audio"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(rendition), withIntermediateDirectories: true)
            var media = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n"
            for n in 0..<titleSegments { media += "#EXTINF:2.000,\nseg_\(n).m4s\n" }
            media += "#EXT-X-ENDLIST\n"
            try media.write(to: folder.appendingPathComponent("\(rendition)/index.m3u8"), atomically: true, encoding: .utf8)
        }
        try """
        #EXTM3U
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=YES,URI="audio/index.m3u8"
        #EXT-X-STREAM-INF:BANDWIDTH=3000000,AUDIO="aud"
        video/720p/index.m3u8

        """.write(to: folder.appendingPathComponent("master.m3u8"), atomically: true, encoding: .utf8)
    }

    /// One viewer's session: how many segments it watches and what its wallet holds.
    struct Viewing {
        let session: String
        let user: String
        let segments: Int
        let deposit: Int
        /// The oracle: minutes of media delivered, as billing counts them.
        var minutes: Int { (segments * BillingFaultTests.segmentSeconds + 59) / 60 }
        var paid: Int { min(minutes * BillingFaultTests.price, deposit) }
    }

    static func viewings(_ count: Int, tag: String) -> [Viewing] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { i in
            // Every fifth viewer can pay 2 minutes and a bit: the rest of what they watch is written off.
            let deposit = i % 5 == 0 ? 2 * price + 3 : 1_000
            return Viewing(
                session: "fault-\(tag)-\(i)-\(UUID().uuidString.prefix(6))", user: "fault-viewer-\(tag)-\(i)",
                segments: Int.random(in: 40...titleSegments, using: &generator), deposit: deposit)
        }
    }

    /// Every session's segments in order, video and audio, interleaved across sessions as a
    /// gateway serves them; one in twenty records is delivered twice (a re-fetch, a replay).
    static func records(_ viewings: [Viewing]) -> [DeliveryRecord] {
        var generator = SystemRandomNumberGenerator()
        var next = [Int](repeating: 0, count: viewings.count)
        var out: [DeliveryRecord] = []
        var live = Array(viewings.indices)
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        while !live.isEmpty {
            let pick = Int.random(in: 0..<live.count, using: &generator)
            let v = live[pick]
            let n = next[v]
            for path in ["video/720p/seg_\(n).m4s", "audio/seg_\(n).m4s"] {
                let size = UInt64(path.hasPrefix("video") ? 400_000 + n : 30_000 + n)
                let record = DeliveryRecord(
                    endMicroseconds: now + Int64(out.count), durationMicroseconds: 900, status: 200, bytesSent: size, objectSize: size,
                    sessionID: viewings[v].session, titleID: title, packageVersion: version, objectPath: path)
                out.append(record)
                if Int.random(in: 0..<20, using: &generator) == 0 { out.append(record) }
            }
            next[v] += 1
            if next[v] == viewings[v].segments { live.remove(at: pick) }
        }
        return out
    }

    static func encoded(_ records: ArraySlice<DeliveryRecord>) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: records.count * DeliveryRecordLayout.size)
        bytes.withUnsafeMutableBytes { buffer in
            for (i, record) in records.enumerated() {
                _ = DeliveryRecordLayout.encode(record, into: buffer.baseAddress! + i * DeliveryRecordLayout.size)
            }
        }
        return bytes
    }

    // MARK: - Auth and billing as processes

    /// `marquee auth` with an admin, and what `marquee billing` needs to start and restart.
    final class Rig: @unchecked Sendable {
        let auth: ServiceProcess
        let adminToken: String
        let credential: URL
        let database: String
        let store: URL
        let port: UInt16
        var billing: ServiceProcess?
        var output: OutputLog? { billing?.output }

        init(database: String) throws {
            let authDatabase = try DatabaseKind.sqlite.freshURL()
            try ServiceProcess.addUser(email: "admin@example.com", role: "admin", password: "admin passphrase for faults", database: authDatabase)
            auth = try ServiceProcess("auth", ["--database", authDatabase], environment: ["MARQUEE_AUTH_BCRYPT_COST": "10"])
            let login = try JSONCall.send(
                "POST", auth.url("/api/auth/login"), json: ["email": "admin@example.com", "password": "admin passphrase for faults"])
            adminToken = try #require(login.body["access_token"] as? String, "\(login.body)")
            credential = try ServiceCredentialFile.make("playback-credential")
            self.database = database
            store = try Scratch.newDirectory("fault-store")
            try BillingFaultTests.writePackage(store: store)
            port = try RedisServer.freePort()
        }

        deinit {
            stopBilling()
            auth.stop()
        }

        var baseURL: String { "http://127.0.0.1:\(port)" }

        /// Starts `marquee billing` (again, on the same port and database) and waits until it is ready.
        func startBilling(deliveries: String?, environment: [String: String]) throws {
            var arguments = [
                "--auth-url", auth.baseURL, "--playback-credential-file", credential.path,
                "--package-store", store.path, "--database", database, "--data", try Scratch.newDirectory("billing-data").path,
            ]
            if let deliveries { arguments += ["--deliveries", deliveries] }
            let defaults = ["MARQUEE_BILLING_MAX_SESSIONS_PER_VIEWER": "0", "MARQUEE_BILLING_METER_INTERVAL_MS": "50"]
            billing = try ServiceProcess(
                "billing", arguments, environment: defaults.merging(environment) { $1 }, port: port, readyTimeout: .seconds(60))
        }

        func killBilling() { billing?.kill() }

        func stopBilling() { billing?.stop() }

        /// Deposits each viewer's money and opens their session through playback's route.
        func open(_ viewings: [Viewing]) throws {
            let secret = try String(contentsOf: credential, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            for v in viewings {
                let deposit = try JSONCall.send(
                    "POST", baseURL + "/api/billing/deposits", token: adminToken,
                    json: ["amount": v.deposit, "currency": "EUR", "user_id": v.user], headers: ["Idempotency-Key: \(v.session)"])
                #expect(deposit.status == 201, "\(deposit.body)")
                let opened = try JSONCall.send(
                    "POST", baseURL + "/internal/billing/sessions", token: secret,
                    json: [
                        "session_id": v.session, "user_id": v.user, "title_id": BillingFaultTests.title, "owner": "fault-publisher",
                        "package_version": BillingFaultTests.version, "price_per_minute": BillingFaultTests.price, "currency": "EUR",
                    ])
                #expect(opened.status == 201, "\(opened.body)")
            }
        }

        func session(_ id: String) throws -> [String: Any] {
            try JSONCall.send("GET", baseURL + "/api/billing/sessions/\(id)", token: adminToken).body
        }

        /// Whether billing has metered every session to its oracle's minutes.
        func metered(_ viewings: [Viewing]) -> Bool {
            viewings.allSatisfy { v in (try? session(v.session))?["metered_minutes"] as? Int == v.minutes }
        }

        /// The ledger against the oracle: each session's minutes, what its viewer paid and what
        /// was written off; each viewer's money (deposit = wallet + held + paid); the title's
        /// revenue (every minute charged once, gross = minutes × price, split publisher + fee).
        func expectExact(_ viewings: [Viewing]) throws {
            var minutes = 0
            for v in viewings {
                let view = try session(v.session)
                #expect(view["metered_minutes"] as? Int == v.minutes, "\(v.session): \(view)")
                #expect(view["charged"] as? Int == v.paid, "\(v.session) deposit \(v.deposit): \(view)")
                #expect(view["written_off"] as? Int == v.minutes * BillingFaultTests.price - v.paid, "\(v.session): \(view)")
                let wallet = try JSONCall.send("GET", baseURL + "/api/billing/wallet?currency=EUR&user_id=\(v.user)", token: adminToken).body
                let balance = wallet["balance"] as? Int ?? -1
                let held = wallet["held"] as? Int ?? -1
                #expect(balance + held + v.paid == v.deposit, "\(v.user): \(wallet), paid \(v.paid) of \(v.deposit)")
                minutes += v.minutes
            }
            let revenue = try JSONCall.send(
                "GET", baseURL + "/api/billing/revenue?title_id=\(BillingFaultTests.title)&owner=fault-publisher&currency=EUR", token: adminToken)
            // One line per day: a run across midnight has two.
            let lines = try #require(revenue.body["items"] as? [[String: Any]], "\(revenue.body)")
            func sum(_ field: String) -> Int { lines.reduce(0) { $0 + ($1[field] as? Int ?? 0) } }
            #expect(sum("minutes") == minutes, "\(lines)")
            #expect(sum("gross") == minutes * BillingFaultTests.price, "\(lines)")
            #expect(sum("publisher") + sum("platform_fee") == minutes * BillingFaultTests.price, "\(lines)")
        }
    }

    static func offset(_ log: URL) -> UInt64 {
        let text = (try? String(contentsOf: log.appendingPathComponent("consumers/billing.offset"), encoding: .utf8)) ?? ""
        return UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    // MARK: - The tests

    @Test("marquee billing SIGKILLed twice mid-consumption and restarted on the same database and log: every minute charged exactly once", arguments: DatabaseKind.allCases)
    func killedMidBatch(kind: DatabaseKind) throws {
        let rig = try Rig(database: try kind.freshURL())
        defer { rig.stopBilling() }
        let log = try Scratch.newDirectory("fault-log")
        // Small batches: thousands of transactions, so each kill lands inside one.
        let environment = ["MARQUEE_BILLING_METER_BATCH": "20"]
        try rig.startBilling(deliveries: log.path, environment: environment)
        let viewings = Self.viewings(24, tag: "kill")
        try rig.open(viewings)
        let records = Self.records(viewings)
        let total = UInt64(records.count)
        let writer = try DeliveryLogWriter(
            directory: log.path, identity: DeliveryLogIdentity(gatewayID: "edge-fault", role: "edge", region: "test", boot: 7),
            segmentBytes: 2 << 20)
        var start = 0
        while start < records.count {
            let bytes = Self.encoded(records[start..<min(records.count, start + 1_000)])
            _ = try bytes.withUnsafeBytes { try writer.append($0) }
            start += 1_000
        }
        try writer.sync()

        for fraction in [5, 2] {  // at a fifth of the log, then at half of it
            let mark = total / UInt64(fraction)
            #expect(waitUntil(timeout: .seconds(300), interval: .milliseconds(1)) { Self.offset(log) >= mark }, "billing stalled at \(Self.offset(log)) of \(total)")
            rig.killBilling()
            let at = Self.offset(log)
            #expect(at < total, "the kill came after the whole log was metered (\(at) of \(total)): make the log longer")
            try rig.startBilling(deliveries: log.path, environment: environment)
        }
        #expect(waitUntil(timeout: .seconds(600), interval: .milliseconds(50)) { Self.offset(log) == total }, "billing stalled at \(Self.offset(log)) of \(total): \(rig.output?.text ?? "")")
        #expect(waitUntil(timeout: .seconds(60), interval: .milliseconds(100)) { rig.metered(viewings) })
        try rig.expectExact(viewings)
        try writer.close()
    }

    @Test("redis-server restarted (append-only file) while the gateway's carrier streams records to billing's consumer group: no record lost, every minute charged once")
    func redisRestartMidStream() throws {
        let redis = try RedisServer(appendOnly: true)
        defer { redis.stop() }
        let rig = try Rig(database: try DatabaseKind.sqlite.freshURL())
        defer { rig.stopBilling() }
        let stream = "fault-deliveries-\(UUID().uuidString.prefix(8))"
        try rig.startBilling(
            deliveries: nil,
            environment: [
                "MARQUEE_REDIS_URL": redis.url, "MARQUEE_BUS_STREAM": stream, "MARQUEE_BILLING_STREAM_CONSUMER": "fault-worker",
                "MARQUEE_BILLING_METER_BATCH": "50",
            ])
        let viewings = Self.viewings(16, tag: "redis")
        try rig.open(viewings)
        let records = Self.records(viewings)

        // The gateway's carrier, in this process: the log is its write-ahead spill.
        let spill = try Scratch.newDirectory("fault-spill")
        var settings = RedisStreamCarrier.Settings(endpoint: try RedisEndpoint(parsing: redis.url))
        settings.stream = stream
        settings.retryMilliseconds = 100
        let carrier = try RedisStreamCarrier(
            settings: settings, directory: spill.path, identity: DeliveryLogIdentity(gatewayID: "edge-fault", role: "edge", region: "test", boot: 9))
        let restartAt = records.count * 2 / 5
        var start = 0
        var restarted = false
        while start < records.count {
            let end = min(records.count, start + 100)
            let bytes = Self.encoded(records[start..<end])
            try bytes.withUnsafeBytes { try carrier.ship($0) }
            try carrier.flush()  // as the gateway's writer thread does every batch: replays a spill once Redis answers
            start = end
            if !restarted && start >= restartAt {
                // Mid-stream: billing has been handed entries it has not all acknowledged, and
                // more than half the records are still to come.
                redis.stop()
                for _ in 0..<5 {  // batches shipped while Redis is down spill to the log
                    let more = min(records.count, start + 100)
                    let bytes = Self.encoded(records[start..<more])
                    try bytes.withUnsafeBytes { try carrier.ship($0) }
                    start = more
                }
                try redis.start()
                restarted = true
            }
        }
        #expect(restarted)
        #expect(carrier.counters.first { $0.name == "spilled" }?.value ?? 0 > 0, "no batch went to the spill while Redis was down")
        let total = UInt64(records.count)
        #expect(waitUntil(timeout: .seconds(120), interval: .milliseconds(100)) {
            try? carrier.flush()
            return RedisStreamCarrierPosition.read(spill) == total
        }, "the carrier never caught up: \(String(describing: RedisStreamCarrierPosition.read(spill))) of \(total)")

        // No record lost: every sequence the carrier wrote is in the stream (a few maybe twice).
        let sequences = Set(try redis.entries(stream).compactMap(\.sequence))
        #expect(sequences == Set(0..<total), "missing from the stream: \(Set(0..<total).subtracting(sequences).sorted().prefix(20))")
        #expect(waitUntil(timeout: .seconds(300), interval: .milliseconds(100)) { rig.metered(viewings) }, "billing did not meter everything: \(rig.output?.text ?? "")")
        #expect(waitUntil(timeout: .seconds(60), interval: .milliseconds(100)) {
            guard case .array(let summary)? = try? redis.connection().command(["XPENDING", stream, "billing"]) else { return false }
            return summary.first?.integerValue == 0
        }, "entries left unacknowledged")
        try rig.expectExact(viewings)
        try carrier.close()
    }
}

/// The carrier's stream position as it keeps it beside its log (`consumers/redis-stream.offset`).
enum RedisStreamCarrierPosition {
    static func read(_ log: URL) -> UInt64? {
        let file = log.appendingPathComponent("consumers/\(RedisStreamCarrier.consumerName).offset")
        return (try? String(contentsOf: file, encoding: .utf8)).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}
