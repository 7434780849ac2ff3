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
/// - **Behaviours** (a `Script`, optional): a pause (the buffer holds while downloads go on up to
///   the cap), a seek (the buffer is flushed, a download in flight is thrown away, fetching
///   restarts at the new position, and playback resumes at `rebufferMs`: seek wait, not a stall),
///   and abandonment (the viewer leaves). Each happens at its time once the viewer is playing.
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

    /// What a viewer does besides watching straight through; times are from the viewer's start.
    /// An event falls due at its time, and happens then if the viewer is playing, else as soon as
    /// it plays again (a viewer does not pause a stalled or starting player).
    public struct Script: Sendable, Equatable {
        public var pauseAtMs: Int64?
        public var pauseForMs: Int64 = 0
        public var seekAtMs: Int64?
        /// Where the seek lands, as a fraction of the title's segments (0 ..< 1).
        public var seekTo = 0.0
        public var abandonAtMs: Int64?

        public init(pauseAtMs: Int64? = nil, pauseForMs: Int64 = 0, seekAtMs: Int64? = nil, seekTo: Double = 0, abandonAtMs: Int64? = nil) {
            self.pauseAtMs = pauseAtMs
            self.pauseForMs = pauseForMs
            self.seekAtMs = seekAtMs
            self.seekTo = seekTo
            self.abandonAtMs = abandonAtMs
        }
    }

    public enum Phase: Equatable, Sendable {
        case starting, playing, stalled, paused, seeking, ended
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
    public private(set) var script: Script

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
    public private(set) var paused = false
    public private(set) var seeked = false
    /// From the seek to playing again.
    public private(set) var seekWaitMs: Int64?
    public private(set) var abandoned = false
    private var resumeAtMs: Int64?
    private var seekStartMs: Int64 = 0
    /// The download in flight was asked for before a seek: its segment is thrown away.
    private var discardDownload = false
    /// Σ bandwidth × media duration of the segments fetched, for the average bitrate.
    private var bitrateWeighted = 0.0
    private var mediaFetchedMs: Int64 = 0

    public init(bandwidths: [Int], segmentDurationsMs: [Int64], settings: Settings = Settings(), script: Script = Script()) {
        precondition(!bandwidths.isEmpty && !segmentDurationsMs.isEmpty)
        self.bandwidths = bandwidths
        self.segmentDurationsMs = segmentDurationsMs
        self.settings = settings
        self.script = script
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
    /// every segment was played). The script's events happen at their times on the way.
    public mutating func advance(toMs time: Int64) {
        while phase != .ended, let due = dueEvent(), due <= time {
            drain(toMs: max(due, nowMs))
            fireEvents()
        }
        drain(toMs: time)
    }

    /// The earliest time an event of the script can happen: its own, or now if it is overdue
    /// and the viewer plays (`nil` while none can).
    private func dueEvent() -> Int64? {
        var due: Int64?
        func consider(_ t: Int64?, whenPlaying: Bool) {
            guard let t else { return }
            if whenPlaying && phase != .playing { return }
            due = min(due ?? .max, max(t, nowMs))
        }
        consider(script.abandonAtMs, whenPlaying: false)
        consider(resumeAtMs, whenPlaying: false)
        consider(script.pauseAtMs, whenPlaying: true)
        consider(script.seekAtMs, whenPlaying: true)
        return due
    }

    private mutating func fireEvents() {
        if let t = script.abandonAtMs, t <= nowMs {
            script.abandonAtMs = nil
            abandoned = true
            phase = .ended
            return
        }
        if let t = resumeAtMs, t <= nowMs {
            resumeAtMs = nil
            phase = bufferMs > 0 ? .playing : .stalled
            if phase == .stalled { stalls += 1 }
        }
        if phase == .playing, let t = script.pauseAtMs, t <= nowMs {
            script.pauseAtMs = nil
            paused = true
            phase = .paused
            resumeAtMs = nowMs + max(0, script.pauseForMs)
        }
        if phase == .playing, let t = script.seekAtMs, t <= nowMs {
            script.seekAtMs = nil
            seeked = true
            phase = .seeking
            seekStartMs = nowMs
            bufferMs = 0
            nextIndex = min(segmentDurationsMs.count - 1, max(0, Int(script.seekTo * Double(segmentDurationsMs.count))))
            if downloading { discardDownload = true }
        }
    }

    private mutating func drain(toMs time: Int64) {
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
        case .starting, .paused, .seeking, .ended:
            break
        }
        nowMs = time
    }

    /// What to do now (after `advance`).
    public mutating func next() -> Next {
        if phase == .ended { return .done }
        if downloading { return .wait(untilMs: nil) }
        let event = dueEvent() ?? .max
        func waitUntil(_ t: Int64) -> Next { .wait(untilMs: t == .max ? nil : t) }
        guard nextIndex < segmentDurationsMs.count else {
            // Everything is fetched: play out the buffer (or wait out the pause).
            switch phase {
            case .playing: return waitUntil(min(nowMs + bufferMs, event))
            case .paused: return waitUntil(event)
            default: return .done
            }
        }
        if phase == .playing || phase == .paused {
            let room = settings.maxBufferMs - bufferMs
            let duration = segmentDurationsMs[nextIndex]
            if room < duration {
                // A paused buffer does not drain: only the resume (or another event) frees room.
                let roomAt = phase == .playing ? nowMs + (duration - room) : Int64.max
                return waitUntil(min(roomAt, event))
            }
        }
        downloading = true
        return .fetch(index: nextIndex, rendition: rendition)
    }

    /// The segment asked for arrived whole: `bytes` in `elapsedMs` of download.
    public mutating func segmentArrived(bytes: Int, elapsedMs: Int64) {
        guard downloading else { return }
        downloading = false
        if discardDownload {
            // Asked for before the seek: its throughput counts, its media does not.
            discardDownload = false
            sample(bits: Double(bytes) * 8, elapsedMs: max(1, elapsedMs))
            return
        }
        guard phase != .ended else { return }
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
        case .seeking where bufferMs >= settings.rebufferMs || last:
            phase = .playing
            seekWaitMs = nowMs - seekStartMs
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
        discardDownload = false
    }

    /// The driver did not make the request `next` asked for (it needs the rendition's playlist or
    /// init segment first): `next` asks for it again.
    public mutating func requestDeferred() {
        downloading = false
        discardDownload = false
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
