import Foundation
import Glibc
import MarqueeBus
import MarqueeRedis
import MarqueeTestSupport
import Testing

/// One stream entry as the gateway wrote it.
struct StreamEntry {
    var fields: [String: [UInt8]]
    var text: (String) -> String? { { name in self.fields[name].map { String(decoding: $0, as: UTF8.self) } } }
    var sequence: UInt64? { text("seq").flatMap { UInt64($0) } }
    func record() throws -> DeliveryRecord {
        try (fields["r"] ?? []).withUnsafeBytes { try DeliveryRecordLayout.decode($0) }
    }
}

extension RedisServer {
    func connection() throws -> RedisConnection {
        try RedisConnection(endpoint: try RedisEndpoint(parsing: url), connectTimeoutMicros: 500_000, ioTimeoutMicros: 2_000_000)
    }

    /// Every entry of `stream`, oldest first.
    func entries(_ stream: String = "marquee:deliveries") throws -> [StreamEntry] {
        guard case .array(let items) = try connection().command(["XRANGE", stream, "-", "+"]) else { return [] }
        return items.compactMap { item in
            guard case .array(let pair) = item, pair.count == 2, case .array(let flat) = pair[1] else { return nil }
            var fields: [String: [UInt8]] = [:]
            var i = 0
            while i + 1 < flat.count {
                if case .string(let name) = flat[i], case .string(let value) = flat[i + 1] { fields[String(decoding: name, as: UTF8.self)] = value }
                i += 2
            }
            return StreamEntry(fields: fields)
        }
    }
}

@Suite("Delivery records: Redis stream carrier", .serialized)
struct DeliveryStreamTests {
    @Test("With redis.url every record is XADDed with its fields; while Redis is down they spill to the log and are replayed in order")
    func streamsSpillsAndReplays() throws {
        let redis = try RedisServer()
        let gateway = try RecordingGateway(environment: ["MARQUEE_REDIS_URL": redis.url, "MARQUEE_GATEWAY_ID": "edge-7", "MARQUEE_GATEWAY_REGION": "eu-west"])
        defer { gateway.server.stop() }
        let token = try gateway.token(session: "stream-1")
        let url = gateway.signed(token, MediaFixtures.hlsSegment)
        let n = 6
        for _ in 0..<n { #expect(try Curl.fetch(url).status == 200) }
        var entries: [StreamEntry] = []
        #expect(try waitUntil(timeout: .seconds(10)) {
            entries = try redis.entries()
            return entries.count == n
        })
        for entry in entries {
            #expect(entry.text("v") == "1")
            #expect(entry.text("gw") == "edge-7")
            #expect(entry.text("role") == "origin")
            #expect(entry.text("region") == "eu-west")
            #expect(entry.text("boot").flatMap { UInt64($0) } != nil)
            #expect(entry.fields["r"]?.count == DeliveryRecordLayout.size)
            let record = try entry.record()
            #expect(record.status == 200 && record.sessionID == "stream-1" && record.objectPath == "hls/seg_000.m4s")
        }
        #expect(Set(entries.compactMap(\.sequence)).count == n, "(gw, seq) is unique")

        // Redis goes away: records go to the log only.
        redis.stop()
        let m = 5
        for _ in 0..<m { #expect(try Curl.fetch(url, ["-r", "0-9"]).status == 206) }
        #expect(try waitUntil(timeout: .seconds(10)) { try gateway.server.metric("marquee_delivery_records_spilled_total") == Double(m) })
        #expect(try DeliveryLog.records(in: gateway.log).count == n + m, "the log holds every record")

        // It returns (empty: no persistence): the spilled records arrive, in order.
        try redis.start()
        #expect(try waitUntil(timeout: .seconds(15)) {
            entries = try redis.entries()
            return entries.count == m
        })
        let sequences = entries.compactMap(\.sequence)
        #expect(sequences == sequences.sorted())
        #expect(try entries.allSatisfy { try $0.record().status == 206 })
        #expect(try gateway.server.metric("marquee_delivery_carrier_errors_total") == 0)

        // A clean stop leaves nothing behind: a last request reaches the stream.
        #expect(try Curl.fetch(url).status == 200)
        gateway.server.signal(SIGTERM)
        #expect(gateway.server.termination(within: .seconds(15)) == .exited(0))
        #expect(try redis.entries().count == m + 1)
    }
}
