/// The buckets analytics rolls records into: minute → hour → day (UTC), each a row per
/// combination of dimensions.
enum Grain: String, Sendable, CaseIterable {
    case minute, hour, day

    var seconds: Int64 {
        switch self {
        case .minute: 60
        case .hour: 3_600
        case .day: 86_400
        }
    }

    /// The start (Unix seconds) of the bucket holding `seconds`.
    func bucket(_ seconds: Int64) -> Int64 {
        let floor = seconds >= 0 ? seconds / self.seconds : (seconds - self.seconds + 1) / self.seconds
        return floor * self.seconds
    }
}

/// The dimensions of a rollup row. Empty strings stand for "none" (a record with no title, no
/// country, an object that is no media segment).
struct RollupDimensions: Hashable, Sendable {
    var title = ""
    var version = ""
    /// The track (`720p`, the audio rendition) of a media segment; "" for other objects.
    var rendition = ""
    var country = ""
    /// The producing gateway's id.
    var edge = ""
    /// `none`, `hit` or `miss`.
    var cache = ""
    /// `2xx` ... `5xx`.
    var statusClass = ""

    static let columns = ["title_id", "package_version", "rendition", "country", "edge", "cache", "status_class"]

    var values: [String] { [title, version, rendition, country, edge, cache, statusClass] }
}

/// What a rollup row counts. Every field is a sum, so rows merge by adding, and the same records
/// in any order (duplicates dropped by their origin) give the same totals.
struct RollupCounters: Equatable, Sendable {
    /// Responses, and the bytes that went out.
    var requests: Int64 = 0
    var bytes: Int64 = 0
    /// Successful responses of whole media segments, their bytes and media time: the delivered
    /// bitrate is `mediaBytes × 8 / mediaMicroseconds`.
    var mediaRequests: Int64 = 0
    var mediaBytes: Int64 = 0
    var mediaMicroseconds: Int64 = 0
    /// Media time newly covered (watch time, as billing counts it).
    var watchMicroseconds: Int64 = 0
    /// Sessions that got their first media segment here (views), and those that passed 90% of
    /// the title here.
    var views: Int64 = 0
    var completions: Int64 = 0
    /// Session-minutes with a delivery: at minute grain the number of concurrent viewers.
    var activeSessionMinutes: Int64 = 0
    var switches: Int64 = 0
    var rebuffers: Int64 = 0
    var rebufferMicroseconds: Int64 = 0
    /// Startup times (session start → first media segment delivered), summed with their count.
    var startups: Int64 = 0
    var startupMicroseconds: Int64 = 0
    var hits: Int64 = 0
    var misses: Int64 = 0
    var aborted: Int64 = 0
    /// Refusals and errors by status.
    var status402: Int64 = 0
    var status403: Int64 = 0
    var status404: Int64 = 0
    var status410: Int64 = 0
    var status429: Int64 = 0
    var status451: Int64 = 0
    var status4xx: Int64 = 0
    var status5xx: Int64 = 0

    static let columns = [
        "requests", "bytes", "media_requests", "media_bytes", "media_us", "watch_us", "views", "completions", "active_minutes", "switches",
        "rebuffers", "rebuffer_us", "startups", "startup_us", "hits", "misses", "aborted", "s402", "s403", "s404", "s410", "s429", "s451",
        "s4xx", "s5xx",
    ]

    var values: [Int64] {
        [
            requests, bytes, mediaRequests, mediaBytes, mediaMicroseconds, watchMicroseconds, views, completions, activeSessionMinutes, switches,
            rebuffers, rebufferMicroseconds, startups, startupMicroseconds, hits, misses, aborted, status402, status403, status404, status410,
            status429, status451, status4xx, status5xx,
        ]
    }

    init() {}

    init(values: [Int64]) {
        precondition(values.count == Self.columns.count)
        (requests, bytes, mediaRequests, mediaBytes, mediaMicroseconds, watchMicroseconds) = (values[0], values[1], values[2], values[3], values[4], values[5])
        (views, completions, activeSessionMinutes, switches, rebuffers, rebufferMicroseconds) = (values[6], values[7], values[8], values[9], values[10], values[11])
        (startups, startupMicroseconds, hits, misses, aborted) = (values[12], values[13], values[14], values[15], values[16])
        (status402, status403, status404, status410, status429, status451, status4xx, status5xx) =
            (values[17], values[18], values[19], values[20], values[21], values[22], values[23], values[24])
    }

    static func += (lhs: inout RollupCounters, rhs: RollupCounters) {
        lhs.requests &+= rhs.requests
        lhs.bytes &+= rhs.bytes
        lhs.mediaRequests &+= rhs.mediaRequests
        lhs.mediaBytes &+= rhs.mediaBytes
        lhs.mediaMicroseconds &+= rhs.mediaMicroseconds
        lhs.watchMicroseconds &+= rhs.watchMicroseconds
        lhs.views &+= rhs.views
        lhs.completions &+= rhs.completions
        lhs.activeSessionMinutes &+= rhs.activeSessionMinutes
        lhs.switches &+= rhs.switches
        lhs.rebuffers &+= rhs.rebuffers
        lhs.rebufferMicroseconds &+= rhs.rebufferMicroseconds
        lhs.startups &+= rhs.startups
        lhs.startupMicroseconds &+= rhs.startupMicroseconds
        lhs.hits &+= rhs.hits
        lhs.misses &+= rhs.misses
        lhs.aborted &+= rhs.aborted
        lhs.status402 &+= rhs.status402
        lhs.status403 &+= rhs.status403
        lhs.status404 &+= rhs.status404
        lhs.status410 &+= rhs.status410
        lhs.status429 &+= rhs.status429
        lhs.status451 &+= rhs.status451
        lhs.status4xx &+= rhs.status4xx
        lhs.status5xx &+= rhs.status5xx
    }

    /// Counts a response's status.
    mutating func count(status: Int) {
        switch status {
        case 402: status402 += 1
        case 403: status403 += 1
        case 404: status404 += 1
        case 410: status410 += 1
        case 429: status429 += 1
        case 451: status451 += 1
        case 400..<500: status4xx += 1
        case 500..<600: status5xx += 1
        default: break
        }
    }

    /// Responses with a status of 400 or more.
    var errors: Int64 { status402 + status403 + status404 + status410 + status429 + status451 + status4xx + status5xx }
}

/// One batch's rollup changes at minute grain, before they are written to every grain. Rows
/// are found once per record (`row(minute:_:)`) and then changed by index.
struct RollupDelta: Sendable {
    struct Key: Hashable, Sendable {
        /// The bucket's start (Unix seconds): a minute here, an hour or day once folded.
        var minute: Int64
        var dimensions: RollupDimensions
    }

    private var index: [Key: Int] = [:]
    private(set) var keys: [Key] = []
    var counters: [RollupCounters] = []

    /// The row of `(minute, dimensions)`, made empty when new.
    mutating func row(minute: Int64, _ dimensions: RollupDimensions) -> Int {
        let key = Key(minute: minute, dimensions: dimensions)
        if let found = index[key] { return found }
        keys.append(key)
        counters.append(RollupCounters())
        index[key] = keys.count - 1
        return keys.count - 1
    }

    mutating func add(minute: Int64, _ dimensions: RollupDimensions, _ change: (inout RollupCounters) -> Void) {
        change(&counters[row(minute: minute, dimensions)])
    }

    /// The minute rows.
    var rows: [Key: RollupCounters] { Dictionary(uniqueKeysWithValues: zip(keys, counters)) }

    /// The rows at `grain` for `table`, as (bucket, the table's dimension values): the minutes
    /// folded into their hour or day, and the dimensions the table does not keep folded away.
    func rows(at grain: Grain, for table: RollupTable) -> [Key: RollupCounters] {
        var folded: [Key: RollupCounters] = [:]
        for (key, counters) in zip(keys, counters) {
            let bucket = grain.bucket(key.minute)
            let d = key.dimensions
            switch table {
            case .wide:
                folded[Key(minute: bucket, dimensions: d), default: RollupCounters()] += counters
            case .narrow:
                folded[Key(minute: bucket, dimensions: RollupDimensions(title: d.title, country: d.country, edge: d.edge)), default: RollupCounters()] +=
                    counters
            case .breakdowns:
                // (dimension, value) travel in the title and version fields of the key.
                for (dimension, value) in [("total", ""), ("title", d.title), ("country", d.country), ("edge", d.edge)] {
                    folded[Key(minute: bucket, dimensions: RollupDimensions(title: dimension, version: value)), default: RollupCounters()] += counters
                }
            }
        }
        return folded
    }

    /// The values a row of `table` stores for its dimensions, from a key `rows(at:for:)` made.
    static func values(_ key: Key, for table: RollupTable) -> [String] {
        let d = key.dimensions
        switch table {
        case .wide: return d.values
        case .narrow: return [d.title, d.country, d.edge]
        case .breakdowns: return [d.title, d.version]
        }
    }

    var isEmpty: Bool { keys.isEmpty }
}

/// The rollup tables, each the same counters at a different cut:
/// - `analytics_rollups` keeps every dimension by hour and day (a title's renditions, cache and
///   status classes);
/// - `analytics_title_rollups` keeps title, country and edge by minute, hour and day: a
///   publisher's dashboard, filtered to their titles;
/// - `analytics_breakdowns` keeps each of total, title, country and edge on its own over every
///   title, by minute, hour and day: an admin's dashboard reads a row per bucket and value, however
///   many titles, countries and edges combine.
enum RollupTable: String, Sendable {
    case wide = "analytics_rollups"
    case narrow = "analytics_title_rollups"
    case breakdowns = "analytics_breakdowns"

    /// The dimensions `analytics_breakdowns` cuts by, and the column each stands for.
    static let breakdownColumns = ["total": "", "title": "title_id", "country": "country", "edge": "edge"]

    var dimensions: [String] {
        switch self {
        case .wide: RollupDimensions.columns
        case .narrow: ["title_id", "country", "edge"]
        case .breakdowns: ["dimension", "value"]
        }
    }

    var grains: [Grain] {
        switch self {
        case .wide: [.hour, .day]
        case .narrow, .breakdowns: [.minute, .hour, .day]
        }
    }

    /// The table that can answer a query grouping on `column` (nil: none, `bucket`, or a
    /// dimension), over every title or only some.
    static func answering(column: String?, everyTitle: Bool) -> RollupTable {
        if everyTitle, column == nil || column == "bucket" || breakdownColumns.values.contains(column!) { return .breakdowns }
        return column == nil || column == "bucket" || RollupTable.narrow.dimensions.contains(column!) ? .narrow : .wide
    }
}
