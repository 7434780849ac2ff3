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
