import Foundation
import MarqueeBus
import MarqueeTestSupport
import Testing

@Suite("Delivery records: layout and ring")
struct DeliveryRecordTests {
    static func roundTrip(_ record: DeliveryRecord) throws -> DeliveryRecord {
        let slot = UnsafeMutableRawPointer.allocate(byteCount: DeliveryRecordLayout.size, alignment: 64)
        defer { slot.deallocate() }
        DeliveryRecordLayout.encode(record, into: slot)
        return try DeliveryRecordLayout.decode(UnsafeRawBufferPointer(start: slot, count: DeliveryRecordLayout.size))
    }

    static let segment = DeliveryRecord(
        endMicroseconds: 1_796_481_909_123_456, durationMicroseconds: 1_250, status: 206, bytesSent: 65_536, objectSize: 1_048_576,
        range: 0...65_535, aborted: false, cache: .hit, country: "DE", clientClass: .publicIPv6, sessionID: "01m92wvr03sffgd63fssfkc81q",
        titleID: "01m92wv6pb1s1jwq8914x0p1yf", packageVersion: "01m92wvcnx2w90ehaxc22jzm8g", objectPath: "video/720p/seg_00042.m4s",
        cmcd: "br=3200,bl=21300,d=4004,ot=v,sid=\"6e2fb550\"")

    @Test("Every field survives the layout")
    func roundTripsEveryField() throws {
        #expect(try Self.roundTrip(Self.segment) == Self.segment)
        let bare = DeliveryRecord(endMicroseconds: 1, durationMicroseconds: 0, status: 404, bytesSent: 0, objectSize: 0, objectPath: "x")
        #expect(try Self.roundTrip(bare) == bare)
        var aborted = Self.segment
        aborted.aborted = true
        aborted.range = nil
        aborted.cache = .miss
        aborted.country = nil
        #expect(try Self.roundTrip(aborted) == aborted)
    }

    @Test("A field longer than its room is cut at a character boundary and the record says so")
    func longFieldsAreCutAndFlagged() throws {
        var long = Self.segment
        long.objectPath = String(repeating: "é", count: 150)  // 300 bytes in 192
        let decoded = try Self.roundTrip(long)
        #expect(decoded.truncated)
        #expect(decoded.objectPath == String(repeating: "é", count: 96))
        #expect(!(try Self.roundTrip(Self.segment)).truncated)
    }

    @Test("Random records round-trip; random bytes decode to a record or a clear error, never a crash (seeded)")
    func randomRecordsAndBytes() throws {
        var rng = SeededGenerator(seed: 0x6275_7321)
        func text(_ max: Int) -> String {
            String((0..<Int.random(in: 0...max, using: &rng)).map { _ in Character(Unicode.Scalar(UInt8.random(in: 0x21...0x7E, using: &rng))) })
        }
        for _ in 0..<2_000 {
            let first = UInt64.random(in: 0...1_000_000, using: &rng)
            let record = DeliveryRecord(
                endMicroseconds: Int64.random(in: 0...Int64.max, using: &rng), durationMicroseconds: UInt32.random(in: 0...UInt32.max, using: &rng),
                status: UInt16.random(in: 100...599, using: &rng), bytesSent: UInt64.random(in: 0...UInt64.max, using: &rng),
                objectSize: UInt64.random(in: 0...UInt64.max, using: &rng),
                range: Bool.random(using: &rng) ? first...(first + UInt64.random(in: 0...1_000_000, using: &rng)) : nil,
                aborted: Bool.random(using: &rng), cache: DeliveryRecord.CacheStatus.allCases.randomElement(using: &rng)!,
                country: Bool.random(using: &rng) ? "US" : nil, clientClass: DeliveryRecord.ClientClass.allCases.randomElement(using: &rng)!,
                sessionID: Bool.random(using: &rng) ? text(128) : nil, titleID: nil, packageVersion: nil, objectPath: text(192), cmcd: text(256))
            #expect(try Self.roundTrip(record) == record)
        }
        var bytes = [UInt8](repeating: 0, count: DeliveryRecordLayout.size)
        var decoded = 0
        for _ in 0..<5_000 {
            for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &rng) }
            bytes[0] = Bool.random(using: &rng) ? 1 : bytes[0]
            if (try? bytes.withUnsafeBytes { try DeliveryRecordLayout.decode($0) }) != nil { decoded += 1 }
        }
        #expect(decoded < 5_000, "random bytes should mostly be refused")
        #expect(throws: DeliveryRecordLayout.DecodingError.wrongSize(10)) { try [UInt8](repeating: 1, count: 10).withUnsafeBytes { try DeliveryRecordLayout.decode($0) } }
        bytes[0] = 2
        #expect(throws: DeliveryRecordLayout.DecodingError.unknownVersion(2)) { try bytes.withUnsafeBytes { try DeliveryRecordLayout.decode($0) } }
    }

    @Test("A full ring refuses and counts the record instead of waiting; draining frees room in order")
    func fullRingCountsDrops() throws {
        let ring = RecordRing(capacity: 4)
        for i in 0..<6 {
            guard let slot = ring.reserve() else { continue }
            var record = Self.segment
            record.status = UInt16(200 + i)
            DeliveryRecordLayout.encode(record, into: slot)
            ring.commit()
        }
        #expect(ring.count == 4)
        #expect(ring.dropped == 2)
        var statuses: [UInt16] = []
        ring.drain(limit: 3) { run in
            for offset in stride(from: 0, to: run.count, by: DeliveryRecordLayout.size) {
                let one = UnsafeRawBufferPointer(rebasing: run[offset..<(offset + DeliveryRecordLayout.size)])
                statuses.append((try? DeliveryRecordLayout.decode(one))?.status ?? 0)
            }
        }
        #expect(statuses == [200, 201, 202])
        #expect(ring.reserve() != nil)
    }

    @Test("One producer thread and one consumer thread: every record arrives once, in order, across wraps")
    func producerAndConsumerThreads() throws {
        let ring = RecordRing(capacity: 64)
        let total = 50_000
        let done = DispatchSemaphore(value: 0)
        let producer = Thread {
            var next: UInt64 = 0
            while next < total {
                guard let slot = ring.reserve() else {
                    sched_yield()
                    continue
                }
                DeliveryRecordLayout.write(
                    into: slot, endMicroseconds: 0, durationMicroseconds: 0, status: 200, bytesSent: next, objectSize: 0, rangeFirst: -1,
                    rangeLast: -1, aborted: false, cache: .none, country: (0, 0), clientClass: .unknown, session: nil, title: nil,
                    version: nil, path: UnsafeRawBufferPointer(start: nil, count: 0), cmcd: nil)
                ring.commit()
                next += 1
            }
        }
        // The consumer is a thread too, so a busy test pool cannot starve it.
        final class Seen: @unchecked Sendable { var values: [UInt64] = [] }
        let seen = Seen()
        let consumer = Thread {
            let deadline = ContinuousClock.now + .seconds(120)
            while seen.values.count < total && ContinuousClock.now < deadline {
                let taken = ring.drain { run in
                    for offset in stride(from: 0, to: run.count, by: DeliveryRecordLayout.size) {
                        let one = UnsafeRawBufferPointer(rebasing: run[offset..<(offset + DeliveryRecordLayout.size)])
                        seen.values.append((try? DeliveryRecordLayout.decode(one))?.bytesSent ?? .max)
                    }
                }
                if taken == 0 { sched_yield() }
            }
            done.signal()
        }
        producer.start()
        consumer.start()
        #expect(done.wait(timeout: .now() + 130) == .success)
        #expect(seen.values == (0..<UInt64(total)).map { $0 })
    }
}
