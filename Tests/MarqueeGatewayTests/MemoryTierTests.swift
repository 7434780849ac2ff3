import Foundation
import Glibc
import MarqueeTestSupport
import Testing

@testable import MarqueeGateway

@Suite("Read-through cache: RAM tier")
struct MemoryTierTests {
    /// `count` files of `size` bytes named `<prefix><n>` in a new folder.
    static func files(_ prefix: String, count: Int, size: Int, in folder: URL) throws -> [String] {
        try (0..<count).map { n in
            let key = "\(prefix)\(n)"
            try Data(repeating: UInt8(truncatingIfNeeded: n), count: size).write(to: folder.appendingPathComponent(key))
            return key
        }
    }

    static func lockedBytes() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmLck:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    @Test("A scan of objects used once passes through the small FIFO: the hot set stays locked in memory, within the budget")
    func scanResistant() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("memory-tier-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let size = 100_000
        let hot = try Self.files("hot-", count: 8, size: size, in: folder)
        let scan = try Self.files("scan-", count: 100, size: size, in: folder)
        let tier = MemoryTier(budget: 2_000_000)
        let open = { (key: String) in Glibc.open(folder.appendingPathComponent(key).path, O_RDONLY | O_CLOEXEC) }
        func uses(_ keys: [String]) -> [(key: String, hash: UInt64, size: Int64)] {
            keys.map { ($0, ReadThroughCache.hash($0), Int64(size)) }
        }
        let before = Self.lockedBytes()
        for _ in 0..<3 { tier.noteUses(uses(hot), open: open) }
        #expect(hot.allSatisfy(tier.holds))
        for batch in stride(from: 0, to: scan.count, by: 10) { tier.noteUses(uses(Array(scan[batch..<batch + 10])), open: open) }
        #expect(hot.allSatisfy(tier.holds), "the scan flushed the hot set: \(hot.filter { !tier.holds($0) })")
        #expect(tier.read(.bytes) <= 2_000_000 && tier.read(.evictions) > 0)
        #expect(tier.read(.admissions) == 108)
        #expect(tier.read(.locked) == 1, "running as root, the pages are locked")
        #expect(Self.lockedBytes() - before >= Int(tier.read(.bytes)) - 4096 * Int(tier.read(.objects)))

        // Replaced, evicted or purged files are forgotten, and their pages unlocked.
        tier.forget(hot)
        #expect(!hot.contains(where: tier.holds))
        #expect(tier.read(.bytes) <= 2_000_000 - 8 * UInt64(size))
    }

    @Test("Objects larger than the small FIFO's share are not admitted, and missing files are skipped")
    func bounds() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("memory-tier-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = try Self.files("big-", count: 1, size: 300_000, in: folder)
        let tier = MemoryTier(budget: 1_000_000)
        let open = { (key: String) in Glibc.open(folder.appendingPathComponent(key).path, O_RDONLY | O_CLOEXEC) }
        tier.noteUses([("big-0", 1, 300_000), ("gone", 2, 1_000)], open: open)
        #expect(!tier.holds("big-0") && !tier.holds("gone") && tier.read(.objects) == 0)
    }
}
