/// The sequence numbers of one gateway's records already counted: sorted, disjoint, non-touching
/// half-open ranges. Records of a gateway arrive nearly in order, so the set stays a range or
/// two however many records it holds; a record whose number is in it is a replay and is dropped.
///
/// Stored as text, `first-end,first-end` (`end` exclusive).
struct SequenceSet: Equatable, Sendable {
    private(set) var ranges: [Range<UInt64>] = []

    init() {}

    /// Parses the stored text; nil when it is not one this type wrote.
    init?(text: String) {
        guard !text.isEmpty else { return }
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: "-")
            guard bounds.count == 2, let low = UInt64(bounds[0]), let high = UInt64(bounds[1]), low < high else { return nil }
            if let last = ranges.last, low <= last.upperBound { return nil }
            ranges.append(low..<high)
        }
    }

    var text: String { ranges.map { "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",") }

    func contains(_ value: UInt64) -> Bool {
        var low = 0
        var high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound <= value { low = mid + 1 } else { high = mid }
        }
        return low < ranges.count && ranges[low].contains(value)
    }

    /// Adds `value`; returns false when it was there already.
    mutating func insert(_ value: UInt64) -> Bool {
        guard value < .max else { return false }  // no room for its range's end: never counted
        // Where the first range ending at or after `value` is.
        var low = 0
        var high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound < value { low = mid + 1 } else { high = mid }
        }
        if low < ranges.count, ranges[low].contains(value) { return false }
        let joinsBefore = low < ranges.count && ranges[low].upperBound == value
        let joinsAfter = low < ranges.count ? (joinsBefore ? (low + 1 < ranges.count && ranges[low + 1].lowerBound == value + 1) : ranges[low].lowerBound == value + 1) : false
        if joinsBefore {
            if joinsAfter {
                ranges[low] = ranges[low].lowerBound..<ranges[low + 1].upperBound
                ranges.remove(at: low + 1)
            } else {
                ranges[low] = ranges[low].lowerBound..<value + 1
            }
        } else if joinsAfter {
            ranges[low] = value..<ranges[low].upperBound
        } else {
            ranges.insert(value..<value + 1, at: low)
        }
        return true
    }
}
