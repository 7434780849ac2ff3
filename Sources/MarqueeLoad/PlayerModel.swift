import Glibc

/// One viewer's player, without I/O: which segment it asks for next and when, which rendition,
/// and what its viewer would have seen (startup time, stalls, switches, bitrate). The load driver
/// reports each download's end and the passing of time; the model answers with its next request.
/// Times are in milliseconds from the viewer's start. Tested alone against scripted bandwidth
/// (`PlayerModelTests`), so the stalls a load test reports are the buffer's arithmetic.
///
/// - **Startup**: segments are fetched back to back until `startupBufferMs` of media is buffered;
///   then playback starts (startup time = that moment).
/// - **Steady state**: the buffer drains in real time; the next segment is asked for as soon as it
///   fits under `maxBufferMs`, one request at a time, as players do.
/// - **Stalls**: the buffer running dry before the next segment arrives is a stall. Playback
///   resumes once `rebufferMs` is buffered again (or the last segment is in).
/// - **ABR**: throughput samples (bits ÷ download time) feed two EWMAs, a fast and a slow one
///   (half-lives of 3 and 9 s of download time, as hls.js has). The estimate is the lower of the
///   two. The next segment takes the highest rendition whose bandwidth fits the estimate times
///   `upFactor` when that is a switch up, or times `downFactor` otherwise (hls.js's
///   abrBandWidthUpFactor 0.7 and abrBandWidthFactor 0.95).
public struct PlayerModel: Sendable {
    public struct Settings: Sendable, Equatable {
        public var startupBufferMs: Int64 = 4_000
        public var rebufferMs: Int64 = 2_000
        public var maxBufferMs: Int64 = 30_000
        public var upFactor = 0.7
        public var downFactor = 0.95
        public var fastHalfLifeMs = 3_000.0
        public var slowHalfLifeMs = 9_000.0
        /// The estimate before any sample (bits/s): hls.js's default 500 kbit/s.
        public var initialEstimate = 500_000.0

        public init() {}
    }

    public enum Phase: Equatable, Sendable {
        case starting, playing, stalled, ended
    }

    /// What the driver does next for this viewer.
    public enum Next: Equatable, Sendable {
        /// Ask for segment `index` of rendition `rendition`.
        case fetch(index: Int, rendition: Int)
        /// Nothing until `atMs` (the buffer has no room yet), or until the download in flight ends.
        case wait(untilMs: Int64?)
        /// The viewer watched to the end.
        case done
    }

    /// Renditions' bandwidths (bits/s), ascending; segments are aligned across renditions.
    public let bandwidths: [Int]
    public let segmentDurationsMs: [Int64]
    public let settings: Settings

    public private(set) var phase = Phase.starting
    public private(set) var nowMs: Int64 = 0
    /// Media buffered ahead of the playhead.
    public private(set) var bufferMs: Int64 = 0
    public private(set) var nextIndex = 0
    public private(set) var rendition: Int
    public private(set) var downloading = false
    private var fastEstimate: Double
    private var slowEstimate: Double
    private var weightSeen = 0.0

    // What the viewer saw.
    public private(set) var startupMs: Int64?
    public private(set) var stalls = 0
    public private(set) var stalledMs: Int64 = 0
    public private(set) var switches = 0
    public private(set) var playedMs: Int64 = 0
    /// Σ bandwidth × media duration of the segments fetched, for the average bitrate.
    private var bitrateWeighted = 0.0
    private var mediaFetchedMs: Int64 = 0

    public init(bandwidths: [Int], segmentDurationsMs: [Int64], settings: Settings = Settings()) {
        precondition(!bandwidths.isEmpty && !segmentDurationsMs.isEmpty)
        self.bandwidths = bandwidths
        self.segmentDurationsMs = segmentDurationsMs
        self.settings = settings
        fastEstimate = settings.initialEstimate
        slowEstimate = settings.initialEstimate
        rendition = 0
        rendition = choose(current: nil)
    }

    /// The rendition a viewer starts on, before any download: what the initial estimate affords.
    public static func initialRendition(bandwidths: [Int], settings: Settings = Settings()) -> Int {
        PlayerModel(bandwidths: bandwidths, segmentDurationsMs: [1], settings: settings).rendition
    }

    /// The throughput estimate the next choice uses (bits/s).
    public var estimate: Double { min(fastEstimate, slowEstimate) }

    /// Average bitrate of what was fetched (bits/s).
    public var averageBitrate: Double { mediaFetchedMs > 0 ? bitrateWeighted / Double(mediaFetchedMs) : 0 }

    /// Stalled time over stalled plus played time.
    public var rebufferRatio: Double { playedMs + stalledMs > 0 ? Double(stalledMs) / Double(playedMs + stalledMs) : 0 }

    // MARK: - Events

    /// Time passes: the buffer drains while playing; running dry is a stall (or the end, once
    /// every segment was played).
    public mutating func advance(toMs time: Int64) {
        guard time > nowMs else { return }
        switch phase {
        case .playing:
            let drained = min(bufferMs, time - nowMs)
            bufferMs -= drained
            playedMs += drained
            let dryAt = nowMs + drained
            if bufferMs == 0 {
                if nextIndex >= segmentDurationsMs.count && !downloading {
                    phase = .ended
                } else if dryAt < time {
                    phase = .stalled
                    stalls += 1
                    stalledMs += time - dryAt
                }
            }
        case .stalled:
            stalledMs += time - nowMs
        case .starting, .ended:
            break
        }
        nowMs = time
    }

    /// What to do now (after `advance`).
    public mutating func next() -> Next {
        if phase == .ended { return .done }
        if downloading { return .wait(untilMs: nil) }
        guard nextIndex < segmentDurationsMs.count else {
            // Everything is fetched: play out the buffer.
            return phase == .playing ? .wait(untilMs: nowMs + bufferMs) : .done
        }
        if phase == .playing {
            let room = settings.maxBufferMs - bufferMs
            let duration = segmentDurationsMs[nextIndex]
            if room < duration { return .wait(untilMs: nowMs + (duration - room)) }
        }
        downloading = true
        return .fetch(index: nextIndex, rendition: rendition)
    }

    /// The segment asked for arrived whole: `bytes` in `elapsedMs` of download.
    public mutating func segmentArrived(bytes: Int, elapsedMs: Int64) {
        guard downloading else { return }
        downloading = false
        let duration = segmentDurationsMs[nextIndex]
        bufferMs += duration
        mediaFetchedMs += duration
        bitrateWeighted += Double(bandwidths[rendition]) * Double(duration)
        nextIndex += 1
        sample(bits: Double(bytes) * 8, elapsedMs: max(1, elapsedMs))
        let last = nextIndex >= segmentDurationsMs.count
        switch phase {
        case .starting where bufferMs >= settings.startupBufferMs || last:
            phase = .playing
            startupMs = nowMs
        case .stalled where bufferMs >= settings.rebufferMs || last:
            phase = .playing
        default:
            break
        }
        let chosen = choose(current: rendition)
        if chosen != rendition { switches += 1 }
        rendition = chosen
    }

    /// The download failed: the same segment is asked for again (a real player retries).
    public mutating func segmentFailed() {
        downloading = false
    }

    /// The driver did not make the request `next` asked for (it needs the rendition's playlist or
    /// init segment first): `next` asks for it again.
    public mutating func requestDeferred() {
        downloading = false
    }

    // MARK: - ABR

    private mutating func sample(bits: Double, elapsedMs: Int64) {
        let rate = bits * 1000 / Double(elapsedMs)
        let weight = Double(elapsedMs)
        let fastAlpha = exp2(-weight / settings.fastHalfLifeMs)
        let slowAlpha = exp2(-weight / settings.slowHalfLifeMs)
        if weightSeen == 0 {
            fastEstimate = rate
            slowEstimate = rate
        } else {
            fastEstimate = fastAlpha * fastEstimate + (1 - fastAlpha) * rate
            slowEstimate = slowAlpha * slowEstimate + (1 - slowAlpha) * rate
        }
        weightSeen += weight
    }

    private func choose(current: Int?) -> Int {
        var best = 0
        for (i, bandwidth) in bandwidths.enumerated() {
            let factor = current.map { i > $0 } ?? false ? settings.upFactor : settings.downFactor
            if Double(bandwidth) <= estimate * factor { best = i }
        }
        return best
    }
}
