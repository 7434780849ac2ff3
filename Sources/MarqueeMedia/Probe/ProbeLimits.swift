/// What a source must be to be accepted for ingest.
public struct ProbeLimits: Sendable {
    /// Display size bounds (after rotation), in pixels.
    public var minimumWidth = 128
    public var minimumHeight = 96
    public var maximumWidth = 7680
    public var maximumHeight = 4320
    /// Duration bounds, in seconds.
    public var minimumDuration = 1.0
    public var maximumDuration = 6 * 3600.0
    /// Video codecs accepted (FFmpeg names). Everything here decodes with Debian's libavcodec.
    public var videoCodecs: Set<String> = ["h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg2video", "prores", "dnxhd", "mjpeg"]
    /// Audio codecs accepted.
    public var audioCodecs: Set<String> = ["aac", "mp3", "ac3", "eac3", "opus", "vorbis", "flac", "pcm_s16le", "pcm_s24le", "alac", "mp2"]

    public init() {}
}

extension ProbeLimits {
    /// Refuses a picture whose display size (square pixels, rotated) is outside the bounds: the
    /// stream's header, and every decoded frame, since a stream may change size mid-way.
    /// - Parameter seconds: where the picture is, for the message; nil for the stream as a whole.
    func checkDisplaySize(_ display: (width: Int, height: Int), at seconds: Double? = nil) throws(ProbeRefusal) {
        if (minimumWidth...maximumWidth).contains(display.width) && (minimumHeight...maximumHeight).contains(display.height) { return }
        let size = "\(display.width)x\(display.height) is outside \(minimumWidth)x\(minimumHeight) to \(maximumWidth)x\(maximumHeight)"
        throw .resolutionOutOfRange(seconds.map { "the picture at \(MediaProbe.format1($0)) s: \(size)" } ?? size)
    }
}
