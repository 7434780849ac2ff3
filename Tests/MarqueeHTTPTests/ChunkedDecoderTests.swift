import MarqueeHTTP
import MarqueeTestSupport
import Testing

@Suite("ChunkedDecoder")
struct ChunkedDecoderTests {
    /// Decodes `input` fed in pieces of `split` bytes; returns the data and the outcome.
    static func decode(_ input: [UInt8], split: Int = .max) -> (data: [UInt8], outcome: ChunkedDecoder.Outcome, consumed: Int) {
        var decoder = ChunkedDecoder()
        var data: [UInt8] = []
        var offset = 0
        while offset < input.count {
            let end = min(input.count, offset + max(1, split))
            let outcome = input[offset..<end].withUnsafeBytes { decoder.decode($0) { data += $0 } }
            switch outcome {
            case .needMore: offset = end
            case .complete(let consumed): return (data, outcome, offset + consumed)
            case .failed: return (data, outcome, offset)
            }
        }
        return (data, .needMore, offset)
    }

    static func encode(_ data: [UInt8], chunkSizes: [Int], extensions: Bool = false, trailers: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        var k = 0
        while offset < data.count {
            let size = min(max(1, chunkSizes[k % chunkSizes.count]), data.count - offset)
            out += Array(String(size, radix: k % 2 == 0 ? 16 : 16, uppercase: k % 3 == 0).utf8)
            if extensions { out += Array(";name=\"v\"".utf8) }
            out += [13, 10] + data[offset..<(offset + size)] + [13, 10]
            offset += size
            k += 1
        }
        out += Array("0\r\n".utf8)
        if trailers { out += Array("X-Checksum: abc\r\n".utf8) }
        out += [13, 10]
        return out
    }

    @Test func decodesChunksExtensionsAndTrailersAndStopsAtTheEnd() {
        let wire = Array("5;x=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nGET /next".utf8)
        let (data, outcome, consumed) = Self.decode(wire)
        #expect(data == Array("hello 0123456789".utf8))
        #expect(outcome == .complete(consumed: wire.count - 9))
        #expect(consumed == wire.count - 9, "the next request's bytes are not consumed")
    }

    @Test("Hostile framing is refused", arguments: [
        "x\r\n", "\r\n", "5\nhello\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n", "5\r\nhelloXY0\r\n\r\n", "-1\r\n",
        "1000000000000000\r\n", "5\r\nhello\r\n0\r\nX: y\n\r\n", "0\r\n\n", "5 \u{01}\r\n", "0\r\nbare\rline\r\n\r\n",
    ])
    func refusesHostileFraming(_ text: String) {
        let (_, outcome, _) = Self.decode(Array(text.utf8))
        guard case .failed = outcome else {
            Issue.record("\(text.debugDescription) gave \(outcome)")
            return
        }
    }

    @Test func boundsExtensionsAndTrailers() {
        let longExtension = Array("1;\(String(repeating: "e", count: ChunkedDecoder.maxExtensionBytes + 1))\r\na\r\n0\r\n\r\n".utf8)
        guard case .failed = Self.decode(longExtension).outcome else {
            Issue.record("an endless chunk extension was accepted")
            return
        }
        let longTrailer = Array("0\r\nX: \(String(repeating: "t", count: ChunkedDecoder.maxTrailerBytes + 1))\r\n\r\n".utf8)
        guard case .failed = Self.decode(longTrailer).outcome else {
            Issue.record("an endless trailer section was accepted")
            return
        }
    }

    @Test("Any chunking, any split: the data comes back intact (seeded)")
    func roundTripsUnderRandomSplits() {
        let seed: UInt64 = 0x4348_554E_4B45_44
        var random = SeededGenerator(seed: seed)
        for round in 0..<300 {
            let data = random.bytes(Int.random(in: 0...3000, using: &random))
            let sizes = (0..<4).map { _ in Int.random(in: 1...700, using: &random) }
            let wire = Self.encode(data, chunkSizes: sizes, extensions: round % 3 == 0, trailers: round % 4 == 0)
            let split = Int.random(in: 1...64, using: &random)
            let (decoded, outcome, consumed) = Self.decode(wire + Array("NEXT".utf8), split: split)
            #expect(decoded == data, "seed \(seed) round \(round)")
            guard case .complete = outcome else {
                Issue.record("seed \(seed) round \(round): \(outcome)")
                continue
            }
            #expect(consumed == wire.count, "seed \(seed) round \(round)")
        }
    }

    @Test("Mutated and random input never crashes and never decodes more than was sent (seeded)")
    func survivesMutations() {
        let seed: UInt64 = 0x4D55_5441_5445
        var random = SeededGenerator(seed: seed)
        for _ in 0..<2000 {
            var wire = Self.encode(random.bytes(200), chunkSizes: [Int.random(in: 1...90, using: &random)])
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let at = Int.random(in: 0..<wire.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: wire[at] = UInt8.random(in: 0...255, using: &random)
                case 1: wire.remove(at: at)
                default: wire.insert(UInt8.random(in: 0...255, using: &random), at: at)
                }
            }
            if Bool.random(using: &random) { wire = random.bytes(Int.random(in: 0...300, using: &random)) }
            let (data, _, consumed) = Self.decode(wire, split: Int.random(in: 1...32, using: &random))
            #expect(data.count <= wire.count && consumed <= wire.count, "seed \(seed)")
        }
    }
}
