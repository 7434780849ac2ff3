import Foundation
import MarqueeBus
import MarqueeTestSupport
import Synchronization
import Testing

/// A carrier that keeps what it is given, and can be told to fail.
final class CollectingCarrier: DeliveryRecordCarrier, @unchecked Sendable {
    private let lock = NSLock()
    private var statuses: [UInt16] = []
    private var failing = false
    private(set) var flushes = 0
    private(set) var closed = false

    func ship(_ records: UnsafeRawBufferPointer) throws {
        try lock.withLock {
            if failing { throw Refused() }
            for i in 0..<(records.count / DeliveryRecordLayout.size) {
                let record = try DeliveryRecordLayout.decode(
                    UnsafeRawBufferPointer(rebasing: records[(i * DeliveryRecordLayout.size)..<((i + 1) * DeliveryRecordLayout.size)]))
                statuses.append(record.status)
            }
        }
    }

    func flush() throws { lock.withLock { flushes += 1 } }
    func close() throws { lock.withLock { closed = true } }

    var received: [UInt16] { lock.withLock { statuses } }
    var isClosed: Bool { lock.withLock { closed } }
    func fail(_ value: Bool) { lock.withLock { failing = value } }

    struct Refused: Error {}
}

@Suite("Delivery records: writer thread and local log")
struct DeliveryRecordWriterTests {
    static func append(_ ring: RecordRing, status: UInt16) {
        let slot = ring.reserve()!
        DeliveryRecordLayout.encode(
            DeliveryRecord(endMicroseconds: 1, durationMicroseconds: 2, status: status, bytesSent: 3, objectSize: 4, objectPath: "p"), into: slot)
        ring.commit()
    }

    @Test("Records of every ring reach the carrier in each ring's order; stop drains the rest and closes the carrier")
    func shipsAndDrainsOnStop() throws {
        let rings = [RecordRing(capacity: 64), RecordRing(capacity: 64)]
        let carrier = CollectingCarrier()
        let writer = DeliveryRecordWriter(rings: rings, carrier: carrier, batchInterval: .milliseconds(5))
        writer.start()
        for i in 0..<20 { Self.append(rings[i % 2], status: UInt16(100 + i)) }
        #expect(waitUntil(timeout: .seconds(5)) { carrier.received.count == 20 })
        // A long interval: only stop() can ship these.
        let slow = [RecordRing(capacity: 64)]
        let lastCarrier = CollectingCarrier()
        let lastWriter = DeliveryRecordWriter(rings: slow, carrier: lastCarrier, batchInterval: .seconds(60))
        lastWriter.start()
        for i in 0..<30 { Self.append(slow[0], status: UInt16(200 + i)) }
        lastWriter.stop()
        #expect(lastCarrier.received == (0..<30).map { UInt16(200 + $0) })
        #expect(lastCarrier.isClosed)
        #expect(lastWriter.shipped == 30)
        writer.stop()
        let evens = carrier.received.filter { $0 % 2 == 0 }
        #expect(evens == evens.sorted(), "one ring's records keep their order")
        #expect(writer.shipped == 20 && writer.dropped == 0)
    }

    @Test("A failing carrier keeps the records in the ring and gets them again; a full ring counts its drops")
    func failingCarrierRetries() throws {
        let ring = RecordRing(capacity: 8)
        let carrier = CollectingCarrier()
        carrier.fail(true)
        let writer = DeliveryRecordWriter(rings: [ring], carrier: carrier, batchInterval: .milliseconds(5))
        writer.start()
        for i in 0..<8 { Self.append(ring, status: UInt16(300 + i)) }
        #expect(waitUntil(timeout: .seconds(5)) { writer.carrierErrors >= 2 })
        #expect(ring.reserve() == nil, "the ring is still full")
        #expect(writer.dropped == 1)
        carrier.fail(false)
        #expect(waitUntil(timeout: .seconds(5)) { carrier.received.count == 8 })
        #expect(carrier.received == (0..<8).map { UInt16(300 + $0) })
        writer.stop()
    }

    @Test("A half-full ring wakes the writer before its interval")
    func halfFullWakes() throws {
        let ring = RecordRing(capacity: 16)
        let carrier = CollectingCarrier()
        let writer = DeliveryRecordWriter(rings: [ring], carrier: carrier, batchInterval: .seconds(60))
        writer.start()
        defer { writer.stop() }
        for i in 0..<8 { Self.append(ring, status: UInt16(i + 100)) }
        writer.wake()
        #expect(waitUntil(timeout: .seconds(5)) { carrier.received.count == 8 })
    }

    @Test("The log carrier appends batches to the log, and a restart continues its sequences")
    func logCarrierWritesSegments() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-log-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let records = UnsafeMutableRawPointer.allocate(byteCount: 10 * DeliveryRecordLayout.size, alignment: 64)
        defer { records.deallocate() }
        for i in 0..<10 {
            DeliveryRecordLayout.encode(
                DeliveryRecord(endMicroseconds: 1, durationMicroseconds: 2, status: UInt16(200 + i), bytesSent: 3, objectSize: 4, objectPath: "p"),
                into: records + i * DeliveryRecordLayout.size)
        }
        for _ in 0..<2 {
            let carrier = try DeliveryLogCarrier(directory: directory.path, gatewayID: "gw-1", role: "origin", region: "eu", boot: 7, segmentBytes: 1 << 16)
            try carrier.ship(UnsafeRawBufferPointer(start: records, count: 10 * DeliveryRecordLayout.size))
            try carrier.close()
        }
        let batch = try DeliveryLogReader(directory: directory.path).read(from: 0, limit: 100)
        #expect(batch.skipped == 0)
        #expect(batch.entries.map(\.sequence) == Array(0..<20))
        #expect(batch.entries.allSatisfy { $0.source.gatewayID == "gw-1" && $0.source.region == "eu" && $0.source.role == "origin" })
        let statuses = batch.entries.map(\.record.status)
        let once: [UInt16] = (0..<10).map { UInt16(200 + $0) }
        #expect(statuses == once + once)
    }
}
