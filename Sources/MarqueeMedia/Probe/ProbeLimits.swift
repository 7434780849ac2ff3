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
