/// How a source becomes a package.
public struct TranscodeSettings: Sendable {
    /// Rung heights to offer (those taller than the source are left out).
    public var ladderHeights = [1080, 720, 480, 360]
    /// Segment length: every rendition has a keyframe (IDR, closed GOP) at each multiple of it.
    public var segmentSeconds = 4
    /// libx264 preset (`veryfast` ... `slow`): speed against quality at the same bitrate.
    public var preset = "veryfast"
    public var audioBitRate = 128_000
    /// Sources faster than this are encoded at half their rate.
    public var maximumFrameRate = 60.0
    /// One scrubbing thumbnail every this many seconds.
    public var thumbnailSeconds = 5.0

    public init() {}
}

/// How far a transcode is.
public struct TranscodeProgress: Sendable {
    public var percent: Double
    public var framesPerSecond: Double
    public var etaSeconds: Double
}

/// A finished package's renditions with what was measured in them.
public struct PackageSummary: Sendable, Codable {
    public struct Rendition: Sendable, Codable {
        public var name: String
        public var width: Int
        public var height: Int
        /// Peak bits per second over any one segment (video plus audio), as BANDWIDTH declares.
        public var bandwidth: Int
        public var averageBandwidth: Int
        public var codecs: String
        public var frameRate: Double
        public var playlist: String
    }
    public var renditions: [Rendition]
    public var durationSeconds: Double
    public var segmentSeconds: Int
}

public struct TranscodeError: Error, CustomStringConvertible, Sendable {
    public let description: String
    /// Set when the source turned out to be unacceptable while it was read (truncated, no frame
    /// decodable): the publisher's reason, not a failure to retry.
    public let refusal: ProbeRefusal?
    init(_ description: String) {
        self.description = description
        refusal = nil
    }
    init(_ refusal: ProbeRefusal) {
        description = refusal.description
        self.refusal = refusal
    }
}
