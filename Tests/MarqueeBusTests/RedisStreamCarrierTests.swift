import Foundation
import MarqueeBus
import MarqueeRedis
import MarqueeTestSupport
import Testing

@Suite("Delivery records: Redis stream carrier with a real redis-server", .serialized)
struct RedisStreamCarrierTests {
    static func records(_ statuses: [UInt16]) -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: statuses.count * DeliveryRecordLayout.size, alignment: 64)
        for (i, status) in statuses.enumerated() {
            DeliveryRecordLayout.encode(
                DeliveryRecord(endMicroseconds: 1, durationMicroseconds: 2, status: status, bytesSent: 3, objectSize: 4, objectPath: "p"),
                into: buffer.baseAddress! + i * DeliveryRecordLayout.size)
        }
        return buffer
    }

    /// `(seq, status)` of every entry of the stream.
    static func stream(_ redis: RedisServer, key: String = "s") throws -> [(UInt64, UInt16)] {
        let connection = try RedisConnection(endpoint: try RedisEndpoint(parsing: redis.url), connectTimeoutMicros: 500_000, ioTimeoutMicros: 2_000_000)
        guard case .array(let items) = try connection.command(["XRANGE", key, "-", "+"]) else { return [] }
        return try items.map { item in
            guard case .array(let pair) = item, case .array(let flat) = pair[1] else { throw TestEnvironmentError("odd XRANGE reply") }
            var seq: UInt64 = 0
            var status: UInt16 = 0
            for i in stride(from: 0, to: flat.count - 1, by: 2) {
                guard case .string(let name) = flat[i], case .string(let value) = flat[i + 1] else { continue }
                switch String(decoding: name, as: UTF8.self) {
                case "seq": seq = UInt64(String(decoding: value, as: UTF8.self)) ?? 0
                case "r": status = try value.withUnsafeBytes { try DeliveryRecordLayout.decode($0).status }
                default: break
                }
            }
            return (seq, status)
        }
    }

    @Test("Batches are XADDed with their log sequences; during an outage they wait in the log and are replayed in order, once, even across a restart")
    func spillsAndReplays() throws {
        let redis = try RedisServer()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-stream-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var settings = RedisStreamCarrier.Settings(endpoint: try RedisEndpoint(parsing: redis.url))
        settings.stream = "s"
        settings.retryMilliseconds = 10
        let identity = DeliveryLogIdentity(gatewayID: "gw", role: "origin", region: "r", boot: 42)
        let first = Self.records([200, 201, 202])
        let second = Self.records([300, 301])
        let third = Self.records([400])
        defer { [first, second, third].forEach { $0.deallocate() } }

        var carrier: RedisStreamCarrier? = try RedisStreamCarrier(settings: settings, directory: directory, identity: identity)
        try carrier!.ship(UnsafeRawBufferPointer(first))
        #expect(try Self.stream(redis).map(\.0) == [0, 1, 2])
        redis.stop()
        try carrier!.ship(UnsafeRawBufferPointer(second))
        #expect(carrier!.counters.first { $0.name == "spilled" }?.value == 2)
        try carrier!.close()
        carrier = nil

        // Redis comes back empty; a new start of the gateway replays what it had not taken.
        try redis.start()
        carrier = try RedisStreamCarrier(settings: settings, directory: directory, identity: identity)
        try carrier!.ship(UnsafeRawBufferPointer(third))  // waits behind the backlog
        try carrier!.flush()
        let stream = try Self.stream(redis)
        #expect(stream.map(\.0) == [3, 4, 5])
        #expect(stream.map(\.1) == [300, 301, 400])
        try carrier!.close()
        carrier = nil
        // Nothing is replayed twice.
        carrier = try RedisStreamCarrier(settings: settings, directory: directory, identity: identity)
        try carrier!.flush()
        #expect(try Self.stream(redis).count == 3)
        try carrier!.close()
    }
}
