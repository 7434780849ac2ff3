import CLinux
import CURing
import Glibc
import Histogram
import MarqueeRing
import Synchronization

/// Viewers that play an HLS title in real time (`marquee loadtest URL --viewers N`): each loads
/// the master playlist, the playlist of the rendition its `PlayerModel` picks, the init segment,
/// then each segment when its buffer has room, switching renditions as its throughput estimate
/// says, on one keep-alive connection of its own. Requests carry CMCD (CTA-5004) headers. The
/// viewers start over `rampSeconds` and play until the title ends or the run does.
public final class PlayerLoad: Sendable {
    public let target: LoadTarget
    public let viewers: Int
    public let threads: Int
    public let durationSeconds: Double
    public let rampSeconds: Double
    public let settings: PlayerModel.Settings
    /// Each viewer's own URL path (signed playback URLs, `--api`), by viewer number modulo their
    /// count; empty: every viewer plays `target.path`.
    public let masterPaths: [String]
    /// Each viewer's CMCD session id (its playback session, `--api`); empty: made up per viewer.
    public let sessionIDs: [String]
    /// CMCD's content id: the title's id with `--api`, else the URL's path.
    public let contentID: String
    public let behaviours: Behaviours
    let progress: [LiveProgress]

    public init(
        target: LoadTarget, viewers: Int, threads: Int, durationSeconds: Double, rampSeconds: Double, settings: PlayerModel.Settings = .init(),
        masterPaths: [String] = [], sessionIDs: [String] = [], contentID: String? = nil, behaviours: Behaviours = Behaviours()
    ) {
        self.behaviours = behaviours
        self.target = target
        self.masterPaths = masterPaths
        self.sessionIDs = sessionIDs
        // A CMCD string value: no quote or backslash inside.
        self.contentID = (contentID ?? String(target.path.prefix { $0 != "?" })).filter { $0 != "\"" && $0 != "\\" }
        self.viewers = viewers
        self.threads = max(1, min(threads, viewers))
        self.durationSeconds = durationSeconds
        self.rampSeconds = rampSeconds
        self.settings = settings
        progress = (0..<max(1, min(threads, viewers))).map { _ in LiveProgress() }
    }

    /// What the progress line shows about one load, about once a second.
    public struct LiveCounts: Sendable {
        public var seconds = 0.0
        public var requests: UInt64 = 0
        public var errors: UInt64 = 0
        public var stalls: UInt64 = 0
        /// The worst thread's p99 segment latency over the last second, µs.
        public var segmentP99Micros: UInt64 = 0
        public var activeViewers = 0

        public var line: String {
            "[\(Int(seconds.rounded())) s] \(activeViewers) viewers playing, \(requests) requests, \(errors) errors, segment p99 \(segmentP99Micros) µs, \(stalls) stalls"
        }
    }

    /// Runs the viewers; `report` gets the live counts about once a second.
    public func run(report: (LiveCounts) -> Void = { _ in }) throws(LoadTarget.Problem) -> PlayerResults {
        try Self.run([self]) { report($0[0]) }[0]
    }

    /// Runs several loads at once, side by side (`--compare`): each on threads of its own, all
    /// starting together, so their viewers ramp up interleaved and meet the same machine.
    public static func run(_ loads: [PlayerLoad], report: ([LiveCounts]) -> Void) throws(LoadTarget.Problem) -> [PlayerResults] {
        let start = monotonicNanoseconds()
        let deadline = start + UInt64((loads.map(\.durationSeconds).max() ?? 0) * 1e9)
        let jobs = loads.indices.flatMap { l in (0..<loads[l].threads).map { (load: l, thread: $0) } }
        let parts = try runOnThreads(jobs.count, start: start, deadline: deadline) { job throws(LoadTarget.Problem) in
            let (l, t) = jobs[job]
            return (l, try loads[l].runThread(t, start: start))
        } eachSecond: { seconds in
            report(loads.map { $0.counts(seconds: seconds) })
        }
        return loads.indices.map { l in
            var merged = PlayerResults()
            for part in parts where part.0 == l { merged.add(part.1) }
            merged.elapsedSeconds = loads[l].durationSeconds
            return merged
        }
    }

    func runThread(_ t: Int, start: UInt64) throws(LoadTarget.Problem) -> PlayerResults {
        let share = viewers / threads + (t < viewers % threads ? 1 : 0)
        let first = t * (viewers / threads) + min(t, viewers % threads)
        let deadline = start + UInt64(durationSeconds * 1e9)
        var worker = try PlayerWorker(load: self, viewers: share, firstViewer: first, start: start, deadline: deadline, progress: progress[t])
        return worker.run()
    }

    func counts(seconds: Double) -> LiveCounts {
        var counts = LiveCounts(seconds: seconds)
        for p in progress {
            counts.requests += p.requests.load(ordering: .relaxed)
            counts.errors += p.errors.load(ordering: .relaxed)
            counts.stalls += p.stalls.load(ordering: .relaxed)
            counts.segmentP99Micros = max(counts.segmentP99Micros, p.intervalP99.load(ordering: .relaxed))
            counts.activeViewers += p.activeViewers.load(ordering: .relaxed)
        }
        return counts
    }
}

/// `--pause P --seek P --abandon P`: the percentage of viewers that do each, once, at a random
/// time of their run; reproducible from `seed` (viewer n's choices come from seed and n alone).
public struct Behaviours: Sendable, Equatable {
    public var pausePercent = 0.0
    public var seekPercent = 0.0
    public var abandonPercent = 0.0
    public var seed: UInt64 = 1

    public init(pausePercent: Double = 0, seekPercent: Double = 0, abandonPercent: Double = 0, seed: UInt64 = 1) {
        self.pausePercent = pausePercent
        self.seekPercent = seekPercent
        self.abandonPercent = abandonPercent
        self.seed = seed
    }

    /// Viewer `n`'s script, for a viewer with `remainingMs` of the run left: a pause of 5–30 s
    /// and a seek (to 0–90% of the title) at a time after its first 4 s; leaving at any time.
    func script(viewer n: Int, remainingMs: Int64) -> PlayerModel.Script {
        var random = SplitMix(seed: seed &+ UInt64(n) &* 0x9E37_79B9_7F4A_7C15)
        var script = PlayerModel.Script()
        let latest = max(4_001, remainingMs)
        if random.percent() < pausePercent {
            script.pauseAtMs = Int64.random(in: 4_000..<latest, using: &random)
            script.pauseForMs = Int64.random(in: 5_000...30_000, using: &random)
        }
        if random.percent() < seekPercent {
            script.seekAtMs = Int64.random(in: 4_000..<latest, using: &random)
            script.seekTo = Double.random(in: 0..<0.9, using: &random)
        }
        if random.percent() < abandonPercent {
            script.abandonAtMs = Int64.random(in: 1_000..<max(1_001, remainingMs), using: &random)
        }
        return script
    }
}

/// SplitMix64: small, fast, reproducible.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func percent() -> Double { Double(next() >> 11) / Double(1 << 53) * 100 }
}

/// What the viewers' requests measured and what the viewers saw.
public struct PlayerResults: Sendable {
    public enum Kind: Int, CaseIterable, Sendable {
        /// `segment` is video (or muxed audio and video); `audio` the segments of a separate audio track.
        case master, playlist, initialization, segment, audio
        var name: String { ["master", "playlist", "init", "segment", "audio"][rawValue] }
    }

    /// Per request kind: completed requests and their latency.
    public var kinds = Kind.allCases.map { _ in LoadResults() }
    /// Per viewer that started playing: startup ms, rebuffer ratio, average bitrate, stalls.
    public var startupMs: [Int64] = []
    public var rebufferRatios: [Double] = []
    public var bitrates: [Double] = []
    public var stalls = 0
    public var stalledMs: Int64 = 0
    public var switches = 0
    public var viewersStarted = 0
    public var viewersNeverPlayed = 0
    /// Behaviours (`--pause`, `--seek`, `--abandon`): viewers that did each, and each seek's
    /// wait from the seek to playing again.
    public var pauses = 0
    public var seeks = 0
    public var seekWaitMs: [Int64] = []
    public var abandoned = 0
    /// Viewers that left before their playback started: by their script, not a failure.
    public var abandonedBeforeStart = 0
    /// Problems with what the server sent (not HTTP failures): unparsable playlists, foreign hosts.
    public var contentErrors: [String: Int] = [:]
    public var elapsedSeconds = 0.0
    /// With `--api`: each playback session's own stalls (the command writes them into its
    /// `sessions`), to check what the platform made of the same sessions.
    public var sessions: [SessionOutcome] = []

    public struct SessionOutcome: Sendable {
        public var sessionID: String
        public var stalls: Int
        public var stalledMs: Int64
    }

    public init() {}

    mutating func add(_ other: PlayerResults) {
        for k in kinds.indices { kinds[k].add(other.kinds[k]) }
        startupMs += other.startupMs
        rebufferRatios += other.rebufferRatios
        bitrates += other.bitrates
        stalls += other.stalls
        stalledMs += other.stalledMs
        switches += other.switches
        viewersStarted += other.viewersStarted
        viewersNeverPlayed += other.viewersNeverPlayed
        pauses += other.pauses
        seeks += other.seeks
        seekWaitMs += other.seekWaitMs
        abandoned += other.abandoned
        abandonedBeforeStart += other.abandonedBeforeStart
        for (k, v) in other.contentErrors { contentErrors[k, default: 0] += v }
        sessions += other.sessions
    }

    public var requests: UInt64 { kinds.reduce(0) { $0 + $1.requests } }
    public var failures: UInt64 { kinds.reduce(0) { $0 + $1.failures } }
    public var errorResponses: UInt64 { kinds.reduce(0) { $0 + $1.errorResponses } }

    static func percentile<T: Comparable>(_ values: [T], _ p: Double) -> T? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((p / 100 * Double(sorted.count - 1)).rounded()))]
    }

    public func text(title: String) -> String {
        var lines = [title]
        lines.append("viewers   \(viewersStarted) played, \(viewersNeverPlayed) never started; \(stalls) stalls (\(stalledMs) ms), \(switches) rendition switches")
        func row(_ name: String, _ values: [Double], _ format: (Double) -> String) {
            guard !values.isEmpty else { return }
            let cells = [50.0, 90, 99].map { "p\(Int($0)) \(format(Self.percentile(values, $0)!))" }
            lines.append("\(name)  " + cells.joined(separator: "  "))
        }
        row("startup ms      ", startupMs.map(Double.init)) { String(Int64($0)) }
        row("rebuffer ratio  ", rebufferRatios) { String(fixed: $0, digits: 4) }
        row("avg bitrate kb/s", bitrates) { String(Int64($0 / 1000)) }
        if pauses + seeks + abandoned + abandonedBeforeStart > 0 {
            lines.append("behaviours  \(pauses) paused, \(seeks) seeked, \(abandoned + abandonedBeforeStart) abandoned (\(abandonedBeforeStart) before playing)")
        }
        row("seek wait ms    ", seekWaitMs.map(Double.init)) { String(Int64($0)) }
        for kind in Kind.allCases where kinds[kind.rawValue].requests > 0 || kinds[kind.rawValue].failures > 0 {
            let r = kinds[kind.rawValue]
            let cells = LoadResults.percentiles.map { "\($0.0) \(r.latency.valueAtPercentile($0.1))" } + ["max \(r.latency.max)"]
            let statuses = r.statuses.indices.filter { r.statuses[$0] > 0 }.map { "\($0)×\(r.statuses[$0])" }.joined(separator: " ")
            lines.append("\(kind.name) requests \(r.requests) [\(statuses)], failures \(r.failures); latency µs " + cells.joined(separator: " "))
        }
        if !contentErrors.isEmpty {
            lines.append("content errors  " + contentErrors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; "))
        }
        return lines.joined(separator: "\n")
    }

    public func json(fields: [(String, String)]) -> String {
        var parts = fields.map { "\"\($0.0)\": \($0.1)" }
        parts.append("\"requests\": \(requests)")
        parts.append("\"viewers_started\": \(viewersStarted)")
        parts.append("\"viewers_never_played\": \(viewersNeverPlayed)")
        parts.append("\"stalls\": \(stalls)")
        parts.append("\"stalled_ms\": \(stalledMs)")
        parts.append("\"switches\": \(switches)")
        parts.append("\"pauses\": \(pauses)")
        parts.append("\"seeks\": \(seeks)")
        parts.append("\"abandoned\": \(abandoned + abandonedBeforeStart)")
        parts.append("\"abandoned_before_start\": \(abandonedBeforeStart)")
        func quantiles(_ values: [Double]) -> String {
            guard !values.isEmpty else { return "null" }
            return "{" + [50.0, 90, 99].map { "\"p\(Int($0))\": \(String(fixed: Self.percentile(values, $0)!, digits: 4))" }.joined(separator: ", ") + "}"
        }
        parts.append("\"startup_ms\": \(quantiles(startupMs.map(Double.init)))")
        parts.append("\"rebuffer_ratio\": \(quantiles(rebufferRatios))")
        parts.append("\"average_bitrate\": \(quantiles(bitrates))")
        parts.append("\"seek_wait_ms\": \(quantiles(seekWaitMs.map(Double.init)))")
        let kindParts = Kind.allCases.map { kind in
            "\"\(kind.name)\": " + kinds[kind.rawValue].json(fields: []).trimmingCharacters(inSet: "\n")
        }
        parts.append("\"by_kind\": {\(kindParts.joined(separator: ", "))}")
        let content = contentErrors.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }
        parts.append("\"content_errors\": {\(content.joined(separator: ", "))}")
        return "{" + parts.joined(separator: ", ") + "}\n"
    }
}

extension String {
    func trimmingCharacters(inSet set: Character) -> String {
        var s = self
        while s.last == set { s.removeLast() }
        return s
    }
}
