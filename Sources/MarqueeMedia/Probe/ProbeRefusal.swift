/// Why a source was refused, in words a publisher understands. Nothing is published for a
/// refused source.
public enum ProbeRefusal: Error, Equatable, CustomStringConvertible, Sendable {
    case notMedia(String)
    /// A format that is not a single-file movie container (a playlist, a manifest, a list, an
    /// image sequence...): its name, as libavformat calls it.
    case unsupportedContainer(String)
    case truncated(String)
    case corrupt(String)
    case noVideo
    case unsupportedCodec(String)
    case resolutionOutOfRange(String)
    case durationOutOfRange(String)

    public var description: String {
        switch self {
        case .notMedia(let detail): "the file is not a video FFmpeg can read (\(detail))"
        case .unsupportedContainer(let format): "not a single-file movie container: \(format)"
        case .truncated(let detail): "the file is truncated: \(detail)"
        case .corrupt(let detail): "the file is corrupt: \(detail)"
        case .noVideo: "the file has no video stream"
        case .unsupportedCodec(let detail): "unsupported codec: \(detail)"
        case .resolutionOutOfRange(let detail): "resolution out of range: \(detail)"
        case .durationOutOfRange(let detail): "duration out of range: \(detail)"
        }
    }
}
