/// The renditions a title is encoded to: Apple's HLS authoring ladder for H.264 (1080p, 720p,
/// 480p, 360p), shaped to the source: never upscaled, width from the display aspect ratio.
public struct Ladder: Sendable, Equatable {
    public struct Rung: Sendable, Equatable, CustomStringConvertible {
        public let height: Int
        /// Target average video bitrate, bits per second; peaks are capped at 110% (maxrate) with
        /// a two-second buffer.
        public let bitRate: Int
        public var description: String { "\(height)p" }
    }

    public let rungs: [Rung]

    /// Bitrates for 30 fps content from the HLS authoring specification's example ladder.
    public static let standard: [Int: Int] = [1080: 6_000_000, 720: 3_000_000, 480: 1_400_000, 360: 730_000]

    /// The rungs of `heights` (default 1080, 720, 480, 360) no taller than the source; a source
    /// shorter than every rung gets one rung at its own height.
    public init(heights: [Int] = [1080, 720, 480, 360], sourceHeight: Int) {
        let wanted = heights.sorted(by: >).filter { $0 <= sourceHeight }
        if wanted.isEmpty {
            let height = sourceHeight & ~1
            rungs = [Rung(height: height, bitRate: max(200_000, 730_000 * height / 360))]
        } else {
            rungs = wanted.map { Rung(height: $0, bitRate: Self.standard[$0] ?? max(200_000, 730_000 * $0 / 360)) }
        }
    }

    /// The even width for `height` at the display aspect ratio `aspect` (width / height).
    public static func width(for height: Int, aspect: Double) -> Int {
        max(2, Int((Double(height) * aspect / 2).rounded()) * 2)
    }
}
