import MarqueeBus

/// The media time a session has been delivered: the union of the intervals of every segment
/// whose bytes all went out to it, across renditions, audio and video, gateways and retries.
/// Billed minutes are `ceil(covered / 60 s)`, so a re-fetch, a rendition switch, a seek back or
/// a duplicate record never pays twice, and a client cannot pay less by splitting a segment into
/// ranges or cutting responses short: bytes that really went out count wherever they came from.
///
/// Persisted per session (`text`) in the same transaction as the charges it causes.
public struct SessionCoverage: Sendable, Codable, Equatable {
    /// Covered media time: sorted, disjoint, non-touching intervals.
    public private(set) var intervals: [MediaInterval] = []
    /// Bytes received so far of segments not yet whole, by `path@offset`, oldest first.
    private(set) var partial: [PartialSegment] = []

    /// Segments received in pieces that a session may have open at once; past this the oldest
    /// pieces are forgotten (a player has a handful in flight; only a client splitting thousands
    /// of segments into ranges at once loses anything, and what it loses is billed time).
    public static let maxPartialSegments = 512

    struct PartialSegment: Sendable, Codable, Equatable {
        var key: String
        var received: [Range<UInt64>]
    }

    public init() {}

    init(intervals: [MediaInterval], partial: [PartialSegment]) {
        self.intervals = intervals
        self.partial = partial
    }

    /// Media time covered, in microseconds.
    public var coveredMicroseconds: Int64 { intervals.reduce(0) { $0 + $1.duration } }

    /// A minute entered by no more than this is not a new minute: audio encoders end a track a
    /// few milliseconds past its video (AAC codes whole 1024-sample frames, so a 60 s title's
    /// audio playlist says 60.011 s), which would otherwise bill a 60-second title two minutes.
    public static let minuteBoundaryGrace: Int64 = 250_000

    /// Whole minutes to bill: `ceil(covered / 60 s)`, except that a last minute entered by no more
    /// than `minuteBoundaryGrace` does not count.
    public var billedMinutes: Int64 { Self.billedMinutes(covering: coveredMicroseconds) }

    /// `billedMinutes` for a covered time in microseconds.
    public static func billedMinutes(covering covered: Int64) -> Int64 {
        guard covered > 0 else { return 0 }
        let minutes = (covered + 59_999_999) / 60_000_000
        return minutes > 1 && covered - (minutes - 1) * 60_000_000 <= minuteBoundaryGrace ? minutes - 1 : minutes
    }

    /// Applies a record using the package's timeline; returns whether coverage grew.
    public mutating func apply(_ record: DeliveryRecord, timeline: PackageTimeline) -> Bool {
        apply(record, segments: timeline.segments(of: record.objectPath))
    }

    /// Applies a record of a whole-object segment playing `interval`; returns whether coverage grew.
    public mutating func apply(_ record: DeliveryRecord, interval: MediaInterval) -> Bool {
        apply(record, segments: [TimelineSegment(interval: interval)])
    }

    /// Applies a record of an object holding `segments`; returns whether coverage grew. Only
    /// successful responses (200, 206) count, and only for the bytes that went out.
    public mutating func apply(_ record: DeliveryRecord, segments: [TimelineSegment]) -> Bool {
        guard record.status == 200 || record.status == 206, !segments.isEmpty else { return false }
        let sent = Self.bytesSent(record)
        let zeroLengthObject = record.objectSize == 0 && record.status == 200 && !record.aborted
        guard !sent.isEmpty || zeroLengthObject else { return false }
        var grew = false
        for segment in segments where segment.interval.duration > 0 && !isCovered(segment.interval) {
            let needed = segment.bytes ?? 0..<record.objectSize
            if needed.isEmpty || (sent.lowerBound <= needed.lowerBound && sent.upperBound >= needed.upperBound) {
                grew = insert(segment.interval) || grew
                continue
            }
            let piece = max(sent.lowerBound, needed.lowerBound)..<min(sent.upperBound, needed.upperBound)
            guard !piece.isEmpty else { continue }
            let key = record.objectPath + "@" + String(needed.lowerBound)
            if receive(piece, of: key, needing: needed) { grew = insert(segment.interval) || grew }
        }
        return grew
    }

    /// The bytes of the object that went out: from the range's first byte (or 0) for as many
    /// bytes as were sent, never past the object's end.
    static func bytesSent(_ record: DeliveryRecord) -> Range<UInt64> {
        let start = record.range?.lowerBound ?? 0
        var end = start &+ record.bytesSent
        if end < start { end = .max }  // overflow: hostile numbers
        if let range = record.range, range.upperBound < .max { end = min(end, range.upperBound + 1) }
        if record.objectSize > 0 { end = min(end, record.objectSize) }
        return start < end ? start..<end : start..<start
    }

    /// Whether `interval` lies inside covered time already.
    public func isCovered(_ interval: MediaInterval) -> Bool {
        var low = 0
        var high = intervals.count
        while low < high {
            let mid = (low + high) / 2
            if intervals[mid].end < interval.end { low = mid + 1 } else { high = mid }
        }
        return low < intervals.count && intervals[low].start <= interval.start
    }

    /// Adds `interval` to covered time, merging neighbours; returns whether anything was new.
    mutating func insert(_ interval: MediaInterval) -> Bool {
        guard !isCovered(interval) else { return false }
        var merged = interval
        var kept: [MediaInterval] = []
        kept.reserveCapacity(intervals.count + 1)
        var placed = false
        for existing in intervals {
            if existing.end < merged.start {
                kept.append(existing)
            } else if existing.start > merged.end {
                if !placed {
                    kept.append(merged)
                    placed = true
                }
                kept.append(existing)
            } else {
                merged = MediaInterval(start: min(merged.start, existing.start), end: max(merged.end, existing.end))
            }
        }
        if !placed { kept.append(merged) }
        intervals = kept
        return true
    }

    /// Adds bytes of a segment received in pieces; returns true once the pieces cover `needed`
    /// (and forgets them).
    private mutating func receive(_ piece: Range<UInt64>, of key: String, needing needed: Range<UInt64>) -> Bool {
        var index = partial.firstIndex { $0.key == key }
        if index == nil {
            if partial.count >= Self.maxPartialSegments { partial.removeFirst() }
            partial.append(PartialSegment(key: key, received: []))
            index = partial.count - 1
        }
        var ranges = partial[index!].received + [piece]
        ranges.sort { $0.lowerBound < $1.lowerBound }
        var union: [Range<UInt64>] = []
        for r in ranges {
            if let last = union.last, r.lowerBound <= last.upperBound {
                union[union.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                union.append(r)
            }
        }
        if union.contains(where: { $0.lowerBound <= needed.lowerBound && $0.upperBound >= needed.upperBound }) {
            partial.remove(at: index!)
            return true
        }
        partial[index!].received = union
        return false
    }
}
