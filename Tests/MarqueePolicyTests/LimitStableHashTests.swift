import Testing
@testable import MarqueePolicy
import MarqueeHTTP
import MarqueeTestSupport

@Suite("StableHash")
struct LimitStableHashTests {
    func hash(_ s: String, seed: UInt64 = 0) -> UInt64 {
        Array(s.utf8).withUnsafeBytes { StableHash.hash64($0, seed: seed) }
    }

    @Test("values are pinned, so every gateway names the same Redis keys")
    func knownAnswers() {
        // Recorded from this implementation; a change here renames every shared bucket.
        #expect(hash("") == LimitStableHashTests.pinned[0])
        #expect(hash("a") == LimitStableHashTests.pinned[1])
        #expect(hash("192.0.2.1") == LimitStableHashTests.pinned[2])
        #expect(hash("0123456789abcdef0123456789abcdef!") == LimitStableHashTests.pinned[3])
        #expect(hash("a", seed: 7) == LimitStableHashTests.pinned[4])
    }

    static let pinned: [UInt64] = [
        3_443_352_101_624_129_665, 16_832_902_013_413_964_682, 8_168_301_949_467_635_886,
        12_216_884_880_157_579_989, 10_539_491_606_803_911_724,
    ]

    @Test("never zero, and lengths and seeds separate inputs")
    func separation() {
        var seen = Set<UInt64>()
        var zeros: [UInt8] = []
        for length in 0...64 {
            let h = zeros.withUnsafeBytes { StableHash.hash64($0) }
            #expect(h != 0)
            #expect(seen.insert(h).inserted, "all-zero inputs of different lengths collide at \(length)")
            zeros.append(0)
        }
        #expect(hash("x", seed: 1) != hash("x", seed: 2))
        #expect(StableHash.mix(0) != 0)
    }

    @Test("flipping one input bit flips about half the output bits")
    func avalanche() {
        var generator = SeededGenerator(seed: 42)
        var total = 0
        var trials = 0
        for _ in 0..<200 {
            let length = Int(generator.next() % 40) + 1
            var bytes = generator.bytes(length)
            let before = bytes.withUnsafeBytes { StableHash.hash64($0) }
            let bit = Int(generator.next() % UInt64(length * 8))
            bytes[bit / 8] ^= UInt8(1 << (bit % 8))
            let after = bytes.withUnsafeBytes { StableHash.hash64($0) }
            total += (before ^ after).nonzeroBitCount
            trials += 1
        }
        let mean = Double(total) / Double(trials)
        #expect(mean > 28 && mean < 36, "mean flipped bits \(mean)")
    }

    @Test("addresses hash their 16 network-order bytes")
    func addresses() {
        let a = IPAddress("192.0.2.1")!
        let b = IPAddress("::ffff:192.0.2.1")!
        #expect(StableHash.hash64(a) == StableHash.hash64(b))
        #expect(StableHash.hash64(a) != StableHash.hash64(IPAddress("192.0.2.2")!))
    }
}
