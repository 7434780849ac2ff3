/// What probing found in a source: the facts the ladder, the transcoder and a publisher's error
/// message need.
public struct MediaInfo: Sendable, Codable, Equatable {
    /// The demuxer's name (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, ...).
    public var container: String
    public var durationSeconds: Double
    public var bitRate: Int
    public var video: VideoInfo
    /// Every audio stream; the first is the one transcoded.
    public var audio: [AudioInfo]
}

public struct VideoInfo: Sendable, Codable, Equatable {
    public var codec: String
    /// Coded size, before rotation and aspect correction.
    public var width: Int
    public var height: Int
    /// Sample (pixel) aspect ratio; 1:1 for square pixels.
    public var sampleAspectRatio: Rational
    /// Clockwise rotation to apply for display: 0, 90, 180 or 270.
    public var rotation: Int
    /// Average frame rate.
    public var frameRate: Rational
    /// The container's nominal rate differs from the average: timestamps are not evenly spaced.
    public var variableFrameRate: Bool
    public var pixelFormat: String
    public var bitDepth: Int
    /// The stream says its frames are fields (top or bottom first).
    public var interlaced: Bool

    /// The size a player shows: square pixels, rotated.
    public var displaySize: (width: Int, height: Int) {
        Self.displaySize(width: width, height: height, sampleAspectRatio: sampleAspectRatio, rotation: rotation)
    }

    /// The size a player shows of a picture this size: square pixels, rotated.
    static func displaySize(width: Int, height: Int, sampleAspectRatio: Rational, rotation: Int) -> (width: Int, height: Int) {
        var w = width
        if sampleAspectRatio.numerator > 0 && sampleAspectRatio.denominator > 0 && sampleAspectRatio.numerator != sampleAspectRatio.denominator {
            w = Int((Double(width) * Double(sampleAspectRatio.numerator) / Double(sampleAspectRatio.denominator)).rounded())
        }
        return rotation % 180 == 0 ? (w, height) : (height, w)
    }

    public static func == (a: VideoInfo, b: VideoInfo) -> Bool {
        a.codec == b.codec && a.width == b.width && a.height == b.height && a.sampleAspectRatio == b.sampleAspectRatio
            && a.rotation == b.rotation && a.frameRate == b.frameRate && a.variableFrameRate == b.variableFrameRate
            && a.pixelFormat == b.pixelFormat && a.bitDepth == b.bitDepth && a.interlaced == b.interlaced
    }
}

public struct AudioInfo: Sendable, Codable, Equatable {
    public var codec: String
    public var sampleRate: Int
    public var channels: Int
    /// FFmpeg's description of the layout: `stereo`, `5.1(side)`, `mono`.
    public var layout: String
}

public struct Rational: Sendable, Codable, Equatable, CustomStringConvertible {
    public var numerator: Int
    public var denominator: Int
    public init(_ numerator: Int, _ denominator: Int) {
        self.numerator = numerator
        self.denominator = denominator
    }
    public var value: Double { denominator == 0 ? 0 : Double(numerator) / Double(denominator) }
    public var description: String { "\(numerator)/\(denominator)" }
}
