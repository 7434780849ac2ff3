import Testing

@testable import MarqueeAnalytics

@Suite("Analytics: the sequences counted per gateway")
struct SequenceSetTests {
    @Test("any order of inserts gives the same set, each value new once, and the text round-trips")
    func inserts() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let values = (0..<Int.random(in: 0...60, using: &generator)).map { _ in UInt64.random(in: 0...80, using: &generator) }
            var set = SequenceSet()
            var expected: Set<UInt64> = []
            for value in values.shuffled(using: &generator) {
                let inserted = set.insert(value)
                #expect(inserted == expected.insert(value).inserted)
            }
            for value in 0...81 as ClosedRange<UInt64> { #expect(set.contains(value) == expected.contains(value)) }
            // Sorted, disjoint, non-touching ranges.
            for (a, b) in zip(set.ranges, set.ranges.dropFirst()) { #expect(a.upperBound < b.lowerBound) }
            #expect(SequenceSet(text: set.text) == set)
        }
    }

    @Test("stored text that this type did not write is refused")
    func hostileText() {
        for text in ["5-3", "1-2,2-4", "a-b", "1-", "-", "3-4,1-2", "1-2-3"] {
            #expect(SequenceSet(text: text) == nil, "\(text)")
        }
        #expect(SequenceSet(text: "") == SequenceSet())
        var set = SequenceSet()
        let inserted = set.insert(.max)
        #expect(!inserted)
    }
}
