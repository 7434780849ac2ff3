import MarqueeBus
import MarqueeMetering
import MarqueeServiceKit

/// One playback session as analytics sees it: what it was delivered (coverage, as billing counts
/// it), how far it got, and how playback went. Built from the session's delivery records as they
/// arrive; who watched and when the session started are learned from billing afterwards
/// (`SessionDirectory`).
struct ViewSession: Sendable, Equatable {
    /// Whether billing has told who watched: `pending`, `done`, or `unknown` (billing has no such
    /// session: one signed without playback, or billing is not deployed).
    enum Lookup: String, Sendable { case pending, done, unknown }

    var id: String
    var titleID: String
    var packageVersion: String
    var country: String
    var edge: String
    var userID: String?
    /// Unix ms, when playback started the session.
    var startedAt: Int64?
    var lookup = Lookup.pending
    /// µs: when the first media segment finished going out (nil: none yet).
    var firstMedia: Int64?
    var lastSeen: Int64 = 0
    var coverage = SessionCoverage()
    var watchMicroseconds: Int64 = 0
    var durationMicroseconds: Int64 = 0
    /// The furthest media time delivered (µs): where "continue watching" resumes.
    var positionMicroseconds: Int64 = 0
    var bytes: Int64 = 0
    var requests: Int64 = 0
    var errors: Int64 = 0
    var switches: Int64 = 0
    var lastTrack = ""
    var rebuffers: Int64 = 0
    var rebufferMicroseconds: Int64 = 0
    /// Stalls the playhead model found, whether or not the player reports its own (to check the
    /// inference against players that do).
    var inferredRebuffers: Int64 = 0
    /// The player sends CMCD buffer keys: rebufferings are counted from `bs`, not inferred.
    var sendsCMCD = false
    /// The player's last CMCD said `bs`: a stall spanning several requests marks each of them,
    /// so a rebuffer is counted where a run of them begins.
    var starved = false
    var startupMicroseconds: Int64?
    var completed = false
    /// The last minute (Unix s) the session was counted as watching.
    var activeMinute: Int64 = 0
    var playhead = PlayheadModel()

    /// Watched this share of the title: a completed view.
    static let completionShare = 0.9
    /// A startup longer than this is no startup (a session started and played much later).
    static let longestStartup: Int64 = 600_000_000

    init(id: String, titleID: String, packageVersion: String, country: String, edge: String) {
        self.id = id
        self.titleID = titleID
        self.packageVersion = packageVersion
        self.country = country
        self.edge = edge
    }

    /// Applies one record (of this session's package), adding what it changes to `delta`'s row
    /// `row` (its minute and dimensions). `timeline` is the package's (nil: its playlists cannot
    /// be read, so only requests and bytes count) and `media` what it says of the record's object.
    mutating func apply(
        _ record: DeliveryRecord, cmcd: CMCD?, timeline: PackageTimeline?, media: (segments: [TimelineSegment], track: PackageTimeline.Track)?,
        minute: Int64, row: Int, delta: inout RollupDelta
    ) {
        requests += 1
        bytes &+= Int64(clamping: record.bytesSent)
        lastSeen = max(lastSeen, record.endMicroseconds)
        if record.status >= 400 { errors += 1 }
        if let cmcd {
            if cmcd.bufferLengthMilliseconds != nil || cmcd.bufferStarvation { sendsCMCD = true }
            if cmcd.bufferStarvation && !starved {
                rebuffers += 1
                delta.counters[row].rebuffers += 1
            }
            starved = cmcd.bufferStarvation
        }
        guard let timeline, let media, record.status == 200 || record.status == 206 else { return }
        let segments = media.segments
        durationMicroseconds = max(durationMicroseconds, timeline.durationMicroseconds)
        let before = coverage.coveredMicroseconds
        _ = coverage.apply(record, segments: segments)
        let covered = coverage.coveredMicroseconds
        let grown = covered - before
        watchMicroseconds += grown
        // Segments whose bytes have all gone out (in this response or in pieces before).
        for segment in segments where coverage.isCovered(segment.interval) {
            positionMicroseconds = max(positionMicroseconds, segment.interval.end)
        }
        var counters = delta.counters[row]
        counters.watchMicroseconds += grown
        if firstMedia == nil {
            firstMedia = record.endMicroseconds
            counters.views += 1
            if let startedAt, startupMicroseconds == nil, let startup = Self.startup(from: startedAt, toFirstMedia: record.endMicroseconds) {
                startupMicroseconds = startup
                counters.startups += 1
                counters.startupMicroseconds += startup
            }
        }
        if !completed, durationMicroseconds > 0, Double(covered) >= Self.completionShare * Double(durationMicroseconds) {
            completed = true
            counters.completions += 1
        }
        var stall: PlayheadModel.Stall?
        if let first = segments.first, let last = segments.last {
            let interval = MediaInterval(start: first.interval.start, end: last.interval.end)
            if media.track.kind == timeline.primaryKind {
                stall = playhead.receive(interval, at: record.endMicroseconds)
            } else if media.track.kind == .audio {
                stall = playhead.receiveAudio(interval, at: record.endMicroseconds)
            }
        }
        if let stall {
            rebufferMicroseconds += stall.microseconds
            inferredRebuffers += 1
            counters.rebufferMicroseconds += stall.microseconds
            if !sendsCMCD {
                rebuffers += 1
                counters.rebuffers += 1
            }
        }
        if media.track.kind == timeline.primaryKind {
            if !lastTrack.isEmpty, lastTrack != media.track.name {
                switches += 1
                counters.switches += 1
            }
            lastTrack = media.track.name
        }
        if minute > activeMinute {
            activeMinute = minute
            counters.activeSessionMinutes += 1
        }
        delta.counters[row] = counters
    }

    /// Startup time from the session's start (ms) to its first media segment (µs); nil when it
    /// makes no sense as a startup (clocks apart, or played long after starting).
    static func startup(from startedAt: Int64, toFirstMedia first: Int64) -> Int64? {
        let startup = first - startedAt * 1000
        return (0...longestStartup).contains(startup) ? startup : nil
    }

    // MARK: - Stored form

    static let columns = [
        "id", "title_id", "package_version", "country", "edge", "user_id", "started_at", "lookup", "first_media", "last_seen", "coverage",
        "watch_us", "duration_us", "position_us", "bytes", "requests", "errors", "switches", "last_track", "rebuffers", "rebuffer_us", "inferred_rebuffers", "cmcd",
        "startup_us", "completed", "active_minute", "playhead", "starved",
    ]

    /// The text columns (the others are integers).
    static let textColumns: Set = ["id", "title_id", "package_version", "country", "edge", "user_id", "lookup", "coverage", "last_track", "playhead"]

    var values: [SQLValue] {
        [
            .text(id), .text(titleID), .text(packageVersion), .text(country), .text(edge), userID.map(SQLValue.text) ?? .null,
            startedAt.map(SQLValue.integer) ?? .null, .text(lookup.rawValue), firstMedia.map(SQLValue.integer) ?? .null, .integer(lastSeen),
            .text(coverage.text), .integer(watchMicroseconds), .integer(durationMicroseconds), .integer(positionMicroseconds), .integer(bytes),
            .integer(requests), .integer(errors), .integer(switches), .text(lastTrack), .integer(rebuffers), .integer(rebufferMicroseconds),
            .integer(inferredRebuffers), .integer(sendsCMCD ? 1 : 0), startupMicroseconds.map(SQLValue.integer) ?? .null, .integer(completed ? 1 : 0), .integer(activeMinute),
            .text(playhead.text), .integer(starved ? 1 : 0),
        ]
    }

    init(_ row: SQLRow) throws {
        id = try row.string("id")
        titleID = try row.string("title_id")
        packageVersion = try row.string("package_version")
        country = try row.string("country")
        edge = try row.string("edge")
        userID = row.optionalString("user_id")
        startedAt = row.optionalInt("started_at")
        lookup = Lookup(rawValue: try row.string("lookup")) ?? .pending
        firstMedia = row.optionalInt("first_media")
        lastSeen = try row.int("last_seen")
        coverage = (try? SessionCoverage(text: try row.string("coverage")) { _ in SessionCoverage() }) ?? SessionCoverage()
        watchMicroseconds = try row.int("watch_us")
        durationMicroseconds = try row.int("duration_us")
        positionMicroseconds = try row.int("position_us")
        bytes = try row.int("bytes")
        requests = try row.int("requests")
        errors = try row.int("errors")
        switches = try row.int("switches")
        lastTrack = try row.string("last_track")
        rebuffers = try row.int("rebuffers")
        rebufferMicroseconds = try row.int("rebuffer_us")
        inferredRebuffers = try row.int("inferred_rebuffers")
        sendsCMCD = try row.int("cmcd") != 0
        startupMicroseconds = row.optionalInt("startup_us")
        completed = try row.int("completed") != 0
        activeMinute = try row.int("active_minute")
        playhead = PlayheadModel(text: try row.string("playhead"))
        starved = try row.int("starved") != 0
    }
}
