import Foundation
import HTTPTypes
import MarqueeBilling
import MarqueeMetering
import MarqueeBus
import MarqueeRedis
import MarqueeServiceKit
import MarqueeTestSupport
import Testing

/// The meter on the gateways' Redis stream, with a real redis-server: several billing workers
/// share the stream through a consumer group, entries are acknowledged only after their charges
/// commit, and a worker's unacknowledged entries are read again (by itself after a restart, or
/// by another once they sit idle).
@Suite("Billing on the Redis stream (consumer group, real redis-server)", .serialized)
struct BillingStreamTests {
    /// XADDs each record as the gateway's carrier does; `origins` gives each one's gateway and
    /// sequence (default: none and its index).
    static func xadd(_ redis: RedisServer, stream: String, _ records: [DeliveryRecord], origins: [(gateway: String, sequence: UInt64)]? = nil) throws {
        let connection = try RedisConnection(endpoint: try RedisEndpoint(parsing: redis.url), connectTimeoutMicros: 2_000_000, ioTimeoutMicros: 2_000_000)
        for (n, record) in records.enumerated() {
            var bytes = [UInt8](repeating: 0, count: DeliveryRecordLayout.size)
            bytes.withUnsafeMutableBytes { _ = DeliveryRecordLayout.encode(record, into: $0.baseAddress!) }
            // Raw bytes as an argument: through the pointer form, as the gateway's carrier sends them.
            let origin = origins?[n]
            let fields: [[UInt8]] = [Array("XADD".utf8), Array(stream.utf8), Array("*".utf8), Array("v".utf8), Array("1".utf8),
                                     Array("gw".utf8), Array((origin?.gateway ?? "").utf8), Array("role".utf8), Array("edge".utf8),
                                     Array("region".utf8), Array("eu".utf8),
                                     Array("seq".utf8), Array(String(origin?.sequence ?? UInt64(n)).utf8), Array("r".utf8), bytes]
            var pointers: [UnsafePointer<CChar>?] = []
            var lengths: [Int] = []
            var storage: [UnsafeMutableRawPointer] = []
            defer { storage.forEach { $0.deallocate() } }
            for field in fields {
                let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, field.count), alignment: 1)
                field.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: field.count) }
                storage.append(p)
                pointers.append(UnsafePointer(p.assumingMemoryBound(to: CChar.self)))
                lengths.append(field.count)
            }
            try pointers.withUnsafeMutableBufferPointer { argv in
                try lengths.withUnsafeBufferPointer { try connection.append(argc: Int32(fields.count), argv: argv.baseAddress!, lengths: $0.baseAddress!) }
            }
            guard case .string = try connection.reply() else { throw TestEnvironmentError("XADD failed") }
        }
    }

    static func pending(_ redis: RedisServer, stream: String) throws -> Int64 {
        let connection = try RedisConnection(endpoint: try RedisEndpoint(parsing: redis.url), connectTimeoutMicros: 2_000_000, ioTimeoutMicros: 2_000_000)
        guard case .array(let summary) = try connection.command(["XPENDING", stream, "billing"]) else { return -1 }
        return summary.first?.integerValue ?? -1
    }

    static func stream(_ redis: RedisServer, _ name: String, consumer: String, group: String = "billing", claimIdle: Duration = .seconds(30)) throws
        -> RedisDeliveryStream
    {
        var settings = RedisDeliveryStream.Settings(endpoint: try RedisEndpoint(parsing: redis.url), consumer: consumer)
        settings.stream = name
        settings.group = group
        settings.claimIdle = claimIdle
        settings.block = .milliseconds(100)
        return RedisDeliveryStream(settings: settings)
    }

    @Test("Two workers share one stream: every minute charged once, every entry acknowledged, duplicates harmless", arguments: DatabaseKind.allCases)
    func twoWorkers(kind: DatabaseKind) async throws {
        let redis = try RedisServer()
        try redis.start()
        defer { redis.stop() }
        try await BillingServiceTests.withBilling(kind) { world in
            let viewer = try await BillingServiceTests.user(world, .viewer, "viewer@example.com")
            #expect(try await BillingServiceTests.deposit(world.billing, viewer.token, amount: 1_000, key: "seed").status == .created)
            for session in ["s1", "s2", "s3"] {
                #expect(try await BillingServiceTests.open(world.billing, session: session, user: viewer.id, price: 10).status == .created)
            }
            let (store, _) = try BillingServiceTests.package(segments: 60)
            let name = "deliveries-\(UUID().uuidString)"
            // s1: 4 minutes, s2: 2 minutes, s3: 1 minute; every record twice (a replayed spill).
            var records = BillingServiceTests.delivered("s1", segments: 0..<40) + BillingServiceTests.delivered("s2", segments: 0..<20)
                + BillingServiceTests.delivered("s3", segments: 0..<10)
            records += records
            records.shuffle()
            try Self.xadd(redis, stream: name, records)

            let timelines = PackageTimelines(store: store)
            let first = Meter(service: world.service, source: try Self.stream(redis, name, consumer: "w1"), timelines: timelines, batchSize: 7)
            let second = Meter(service: world.service, source: try Self.stream(redis, name, consumer: "w2"), timelines: timelines, batchSize: 7)
            async let a: Void = { while try await first.runOnce() > 0 {} }()
            async let b: Void = { while try await second.runOnce() > 0 {} }()
            _ = try await (a, b)

            for (session, minutes) in [("s1", 4), ("s2", 2), ("s3", 1)] {
                let view = try await world.billing.send(.get, "/api/billing/sessions/\(session)", token: viewer.token)
                #expect(view.json["billed_minutes"] as? Int == minutes, "\(session): \(view.json)")
                #expect(view.json["charged"] as? Int == minutes * 10, "\(session): \(view.json)")
            }
            #expect(try Self.pending(redis, stream: name) == 0)
            try await BillingServiceTests.expectBalanced(world.service)
        }
    }

    @Test("A worker that dies before its commit: its entries come back, to itself on restart or to another once idle, and charge once")
    func deadWorkersEntriesAreClaimed() async throws {
        let redis = try RedisServer()
        try redis.start()
        defer { redis.stop() }
        try await BillingServiceTests.withBilling(.sqlite) { world in
            let viewer = try await BillingServiceTests.user(world, .viewer, "viewer@example.com")
            #expect(try await BillingServiceTests.deposit(world.billing, viewer.token, amount: 1_000, key: "seed").status == .created)
            #expect(try await BillingServiceTests.open(world.billing, session: "s", user: viewer.id, price: 10).status == .created)
            let (store, _) = try BillingServiceTests.package(segments: 60)
            let timelines = PackageTimelines(store: store)
            let name = "deliveries-\(UUID().uuidString)"
            try Self.xadd(redis, stream: name, BillingServiceTests.delivered("s", segments: 0..<30))  // 3 minutes

            // w1 is handed 10 entries, then dies before committing anything.
            let dying = try Self.stream(redis, name, consumer: "w1")
            let taken = try await dying.read(from: 0, limit: 10)
            #expect(taken.acknowledgement.count == 10)
            #expect(try Self.pending(redis, stream: name) == 10)

            // w2 reads the other 20 at once, and claims w1's 10 once they have been idle a second.
            let survivor = Meter(
                service: world.service, source: try Self.stream(redis, name, consumer: "w2", claimIdle: .seconds(1)), timelines: timelines, batchSize: 50)
            while try await survivor.runOnce() > 0 {}
            var view = try await world.billing.send(.get, "/api/billing/sessions/s", token: viewer.token)
            #expect(view.json["billed_minutes"] as? Int == 2, "w1's minute is still pending: \(view.json)")
            let claimed = waitUntil(timeout: .seconds(20), interval: .milliseconds(200)) { (try? Self.pending(redis, stream: name)) == 10 }
            #expect(claimed)
            try await Task.sleep(for: .milliseconds(1_100))  // past claimIdle: a condition on Redis's clock
            while try await survivor.runOnce() > 0 {}
            view = try await world.billing.send(.get, "/api/billing/sessions/s", token: viewer.token)
            #expect(view.json["billed_minutes"] as? Int == 3, "\(view.json)")
            #expect(view.json["charged"] as? Int == 30)
            #expect(try Self.pending(redis, stream: name) == 0)

            // w1 restarts under its name: nothing of its own is pending any more, nothing changes.
            let restarted = Meter(service: world.service, source: try Self.stream(redis, name, consumer: "w1"), timelines: timelines)
            while try await restarted.runOnce() > 0 {}
            view = try await world.billing.send(.get, "/api/billing/sessions/s", token: viewer.token)
            #expect(view.json["charged"] as? Int == 30)
            try await BillingServiceTests.expectBalanced(world.service)
        }
    }
}
