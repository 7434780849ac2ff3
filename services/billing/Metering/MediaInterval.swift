/// A stretch of media time, `start..<end` in microseconds from the start of the presentation.
public struct MediaInterval: Sendable, Hashable, Codable {
    public var start: Int64
    public var end: Int64

    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }

    public var duration: Int64 { end - start }
}

/// One media segment as a playlist names it: the object that holds it, the bytes of that object
/// it occupies (nil for the whole object), and the media time it plays.
public struct TimelineSegment: Sendable, Hashable, Codable {
    /// `offset..<offset+length` within the object, for playlists that address byte ranges of one
    /// file (`#EXT-X-BYTERANGE`, DASH `mediaRange`); nil when the segment is the whole object.
    public var bytes: Range<UInt64>?
    public var interval: MediaInterval

    public init(bytes: Range<UInt64>? = nil, interval: MediaInterval) {
        self.bytes = bytes
        self.interval = interval
    }
}

/// Decimal text (`2.000000`, `4`, `6.006`) as microseconds, rounding past the sixth decimal;
/// nil for anything else, negatives, or more than a day.
func microseconds(decimal text: Substring) -> Int64? {
    var whole: Int64 = 0
    var fraction: Int64 = 0
    var fractionDigits = 0
    var seenDot = false
    var roundUp = false
    var digits = 0
    for c in text.utf8 {
        if c == UInt8(ascii: ".") {
            guard !seenDot else { return nil }
            seenDot = true
            continue
        }
        guard c >= 48 && c <= 57 else { return nil }
        let d = Int64(c - 48)
        digits += 1
        if !seenDot {
            whole = whole * 10 + d
            guard whole <= 86_400 else { return nil }
        } else if fractionDigits < 6 {
            fraction = fraction * 10 + d
            fractionDigits += 1
        } else if fractionDigits == 6 {
            roundUp = d >= 5
            fractionDigits += 1
        }
    }
    guard digits > 0 else { return nil }
    while fractionDigits < 6 {
        fraction *= 10
        fractionDigits += 1
    }
    return whole * 1_000_000 + fraction + (roundUp ? 1 : 0)
}
