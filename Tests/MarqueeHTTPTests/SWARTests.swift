import MarqueeTestSupport
import Testing

@testable import MarqueeHTTP

/// The eight-bytes-at-once tests agree with their byte-by-byte definitions.
@Suite("SWAR byte tests")
struct SWARTests {
    static func bytes(_ word: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: word >> (8 * UInt64($0))) } }

    @Test func matchesTheBytewiseDefinitions() {
        var random = SeededGenerator(seed: 0x5A4A)
        let interesting: [UInt8] = [0x00, 0x01, 0x0A, 0x0D, 0x1F, 0x20, 0x21, 0x3E, 0x3F, 0x40, 0x7E, 0x7F, 0x80, 0x81, 0xFE, 0xFF]
        for round in 0..<200_000 {
            var word = UInt64.random(in: 0...UInt64.max, using: &random)
            if round % 2 == 0 {
                // Plant boundary values in random positions, the rest printable.
                var b = (0..<8).map { _ in UInt8.random(in: 0x41...0x7A, using: &random) }
                for _ in 0..<Int.random(in: 0...2, using: &random) {
                    b[Int.random(in: 0..<8, using: &random)] = interesting.randomElement(using: &random)!
                }
                word = b.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            }
            let b = Self.bytes(word)
            #expect(SWAR.hasZeroByte(word) == b.contains(0))
            #expect(SWAR.hasCROrLF(word) == b.contains { $0 == 0x0D || $0 == 0x0A })
            #expect(SWAR.hasTargetStop(word) == b.contains { $0 <= 0x20 || $0 >= 0x7F || $0 == 0x3F }, "\(b)")
        }
    }
}
