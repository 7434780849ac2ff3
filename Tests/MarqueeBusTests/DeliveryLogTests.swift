import Foundation
import MarqueeBus
import MarqueeTestSupport
import Testing

@Suite("Delivery log: segments, positions, crashes")
struct DeliveryLogTests {
    static let identity = DeliveryLogIdentity(gatewayID: "origin-fra-1", role: "origin", region: "eu-central", boot: 42)

    static func record(_ n: Int, session: String = "s1") -> DeliveryRecord {
        DeliveryRecord(
            endMicroseconds: 1_796_000_000_000_000 + Int64(n), durationMicroseconds: 10, status: 200, bytesSent: UInt64(n), objectSize: UInt64(n),
            sessionID: session, titleID: "t1", packageVersion: "v1", objectPath: "video/720p/seg_\(n).m4s")
    }

    static func bytes(_ records: [DeliveryRecord]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: records.count * DeliveryRecordLayout.size)
        out.withUnsafeMutableBytes { buffer in
            for (i, record) in records.enumerated() {
                DeliveryRecordLayout.encode(record, into: buffer.baseAddress! + i * DeliveryRecordLayout.size)
            }
        }
        return out
    }

    static func append(_ writer: DeliveryLogWriter, _ range: Range<Int>) throws {
        try bytes(range.map { record($0) }).withUnsafeBytes { _ = try writer.append($0) }
    }

    static func readAll(_ directory: String, from start: UInt64 = 0) throws -> DeliveryLogBatch {
        try DeliveryLogReader(directory: directory).read(from: start, limit: 1_000_000)
    }

    static func folder() -> String {
        let path = NSTemporaryDirectory() + "marquee-log-\(UUID().uuidString)"
        return path
    }

    @Test("Records come back in order with their sequences and writer, across segment rotation")
    func roundTripAcrossSegments() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Room for 10 records per segment: 100 records make 10 segments.
        let writer = try DeliveryLogWriter(directory: dir, identity: Self.identity, segmentBytes: 256 + 10 * 768)
        for start in stride(from: 0, to: 100, by: 7) { try Self.append(writer, start..<min(start + 7, 100)) }
        #expect(writer.nextSequence == 100)
        try writer.close()
        let segments = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".log") }
        #expect(segments.count == 10)
        #expect(segments.contains("deliveries-00000000000000000090.log"))

        let all = try Self.readAll(dir)
        #expect(all.entries.map(\.sequence) == Array(0..<100))
        #expect(all.entries.map(\.record) == (0..<100).map { Self.record($0) })
        #expect(all.entries.allSatisfy { $0.source == Self.identity })
        #expect(all.next == 100 && all.skipped == 0)

        // Tailing in small steps from any position gives the same records.
        let reader = DeliveryLogReader(directory: dir)
        var position: UInt64 = 37
        var seen: [UInt64] = []
        while true {
            let batch = try reader.read(from: position, limit: 3)
            if batch.entries.isEmpty { break }
            seen += batch.entries.map(\.sequence)
            position = batch.next
        }
        #expect(seen == Array(37..<100))
    }

    @Test("A reader sees only complete records while the writer appends, then the rest")
    func tailWhileWriting() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try DeliveryLogWriter(directory: dir, identity: Self.identity)
        try Self.append(writer, 0..<5)
        let reader = DeliveryLogReader(directory: dir)
        let first = try reader.read(from: 0, limit: 100)
        #expect(first.entries.count == 5 && first.next == 5)
        #expect(try reader.read(from: first.next, limit: 100).entries.isEmpty)
        try Self.append(writer, 5..<8)
        let second = try reader.read(from: first.next, limit: 100)
        #expect(second.entries.map(\.sequence) == [5, 6, 7])
    }

    @Test("After a crash mid-write the torn record is cut and numbering continues in a new segment")
    func restartAfterTornWrite() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var writer: DeliveryLogWriter? = try DeliveryLogWriter(directory: dir, identity: Self.identity)
        try Self.append(writer!, 0..<4)
        writer = nil  // a crash: no close
        // Half a record at the tail, as a kill in the middle of write(2) leaves it.
        let path = dir + "/deliveries-00000000000000000000.log"
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(Self.bytes([Self.record(99)]).prefix(300)))
        try handle.close()
        // Readers never see the torn record.
        #expect(try Self.readAll(dir).entries.count == 4)

        let next = DeliveryLogIdentity(gatewayID: "origin-fra-1", role: "origin", region: "eu-central", boot: 43)
        let restarted = try DeliveryLogWriter(directory: dir, identity: next)
        #expect(restarted.nextSequence == 4)
        try Self.append(restarted, 4..<6)
        try restarted.close()
        let all = try Self.readAll(dir)
        #expect(all.entries.map(\.sequence) == [0, 1, 2, 3, 4, 5])
        #expect(all.entries.map(\.source.boot) == [42, 42, 42, 42, 43, 43])
        #expect(all.skipped == 0)
    }

    @Test("A second writer on the same folder is refused with a clear reason")
    func oneWriterPerFolder() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try DeliveryLogWriter(directory: dir, identity: Self.identity)
        #expect {
            _ = try DeliveryLogWriter(directory: dir, identity: Self.identity)
        } throws: { "\($0)".contains("writer.lock is held") }
        try writer.close()
    }

    @Test("An identity that does not fit the header is refused")
    func identityMustFit() {
        let long = DeliveryLogIdentity(gatewayID: String(repeating: "g", count: 129), role: "origin", region: "r", boot: 1)
        #expect(throws: DeliveryLogError.self) { _ = try DeliveryLogWriter(directory: Self.folder(), identity: long) }
        let empty = DeliveryLogIdentity(gatewayID: "g", role: "", region: "r", boot: 1)
        #expect(throws: DeliveryLogError.self) { _ = try DeliveryLogWriter(directory: Self.folder(), identity: empty) }
    }

    @Test("Corrupt records and segments are skipped and counted, never returned")
    func corruptionIsSkipped() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try DeliveryLogWriter(directory: dir, identity: Self.identity, segmentBytes: 256 + 10 * 768)
        try Self.append(writer, 0..<30)
        try writer.close()
        // Record 3's version byte, and the second segment's magic.
        let first = try #require(FileHandle(forUpdatingAtPath: dir + "/deliveries-00000000000000000000.log"))
        first.seek(toFileOffset: UInt64(256 + 3 * 768))
        first.write(Data([9]))
        try first.close()
        let second = try #require(FileHandle(forUpdatingAtPath: dir + "/deliveries-00000000000000000010.log"))
        second.write(Data("XXXX".utf8))
        try second.close()

        let all = try Self.readAll(dir)
        #expect(all.entries.map(\.sequence) == Array(0..<3) + Array(4..<10) + Array(20..<30))
        #expect(all.skipped == 11)
        #expect(all.next == 30)
    }

    @Test("Hostile segment files never crash a reader")
    func hostileSegments() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var generator = SeededGenerator(seed: 7)
        for n in 0..<40 {
            let size = Int.random(in: 0..<3_000, using: &generator)
            var bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if n % 2 == 0, bytes.count >= 256 {  // a valid-looking start, to reach the record decoder
                bytes.replaceSubrange(0..<8, with: Array("MQDREC01".utf8))
                bytes[8] = 1
            }
            let name = String(format: "deliveries-%020d.log", n * 3)
            FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(bytes))
        }
        FileManager.default.createFile(atPath: dir + "/deliveries-x.log", contents: Data([1, 2, 3]))
        let batch = try Self.readAll(dir)
        #expect(batch.next >= 117)
        #expect(batch.entries.count + Int(batch.skipped) <= Int(batch.next))
    }

    @Test("Retention removes old segments only once every consumer has committed past them")
    func retentionWaitsForConsumers() throws {
        let dir = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try DeliveryLogConsumers.record("billing", next: 0, in: dir)
        try DeliveryLogConsumers.record("analytics", next: 25, in: dir)
        #expect(DeliveryLogConsumers.lowestCommitted(in: dir) == 0)
        let writer = try DeliveryLogWriter(directory: dir, identity: Self.identity, segmentBytes: 256 + 10 * 768, retention: .zero)
        try Self.append(writer, 0..<40)
        // Billing has read nothing: every segment stays.
        #expect(try Self.readAll(dir).entries.count == 40)
        try DeliveryLogConsumers.record("billing", next: 33, in: dir)
        try Self.append(writer, 40..<50)  // rotations run retention
        // Both consumers are past 0–9 and 10–19; analytics still needs 25 on.
        let remaining = try Self.readAll(dir)
        #expect(remaining.entries.first?.sequence == 20)
        #expect(remaining.skipped == 20)
        #expect(remaining.entries.count == 30)
    }
}
