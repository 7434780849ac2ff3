import Foundation
import MarqueeServiceKit

/// A time range of rollups at one grain, and whose titles a caller may see.
struct RollupScope: Sendable {
    var grain: Grain
    /// Bucket starts, Unix seconds, inclusive.
    var from: Int64
    var to: Int64
    /// A publisher's user id: only titles they own. Nil for an admin: every title.
    var owner: String?
    /// One title only.
    var title: String?

    /// `AND ...` conditions on `analytics_rollups` (or a table with `title_id`) and their values,
    /// numbered from `first`.
    func conditions(first: Int = 1, bucketColumn: String = "bucket", grainColumn: String? = "grain") -> (String, [SQLValue]) {
        var sql = ""
        var binds: [SQLValue] = []
        if let grainColumn {
            binds.append(.text(grain.rawValue))
            sql += " AND \(grainColumn) = $\(first + binds.count - 1)"
        }
        binds.append(.integer(from))
        sql += " AND \(bucketColumn) >= $\(first + binds.count - 1)"
        binds.append(.integer(to))
        sql += " AND \(bucketColumn) <= $\(first + binds.count - 1)"
        if let owner {
            binds.append(.text(owner))
            sql += " AND title_id IN (SELECT title_id FROM analytics_titles WHERE owner = $\(first + binds.count - 1))"
        }
        if let title {
            binds.append(.text(title))
            sql += " AND title_id = $\(first + binds.count - 1)"
        }
        return (sql, binds)
    }
}

/// Reads rollup rows back: sums of every counter, grouped as asked.
enum RollupQuery {
    static func sums(_ columns: [String]) -> String {
        columns.map { "CAST(COALESCE(SUM(\($0)), 0) AS BIGINT) AS \($0)" }.joined(separator: ", ")
    }

    /// The counters of a row holding `columns` (the others 0).
    static func counters(_ row: SQLRow, _ columns: [String]) throws -> RollupCounters {
        let summed = Set(columns)
        return RollupCounters(values: try RollupCounters.columns.map { summed.contains($0) ? try row.int($0) : 0 })
    }

    /// The columns the error counts need.
    static let errorColumns = ["s402", "s403", "s404", "s410", "s429", "s451", "s4xx", "s5xx"]

    /// The counters summed over the scope, one row per value of `groupBy` (one row in all when
    /// nil), from the narrowest table that holds it; `skipEmpty` leaves out the group of "" (no
    /// title, not a media segment).
    /// Only `columns` are summed (every counter by default): each one costs a sum per row read.
    static func grouped(
        _ database: any SQLExecutor, _ scope: RollupScope, by groupBy: String?, skipEmpty: Bool = false, only columns: [String] = RollupCounters.columns
    ) async throws -> [(key: String, counters: RollupCounters)] {
        let table = RollupTable.answering(column: groupBy, everyTitle: scope.owner == nil && scope.title == nil)
        var (conditions, binds) = scope.conditions()
        var column = groupBy
        if table == .breakdowns {
            // One dimension's rows: `total` for the totals and the series.
            let dimension = groupBy.flatMap { g in RollupTable.breakdownColumns.first { $0.value == g }?.key } ?? "total"
            binds.append(.text(dimension))
            conditions += " AND dimension = $\(binds.count)"
            if dimension != "total" { column = "value" }
        }
        let select = column.map { "CAST(\($0) AS TEXT) AS grouping, " } ?? ""
        let empty = skipEmpty ? column.map { " AND \($0) <> ''" } ?? "" : ""
        let group = column.map { " GROUP BY \($0)" } ?? ""
        let rows = try await database.query(
            "SELECT \(select)\(sums(columns)) FROM \(table.rawValue) WHERE 1 = 1\(conditions)\(empty)\(group)", binds)
        return try rows.map { (groupBy == nil ? "" : try $0.string("grouping"), try counters($0, columns)) }
    }

    /// The title table's counters over the scope, one row per title, country and gateway: a
    /// publisher's dashboard cuts this one read into its totals, countries, gateways and titles
    /// (their rows are few), where reading the table once per cut cost a scan each.
    static func titleSlices(_ database: any SQLExecutor, _ scope: RollupScope) async throws -> [(title: String, country: String, edge: String, counters: RollupCounters)] {
        let (conditions, binds) = scope.conditions()
        let rows = try await database.query(
            """
            SELECT title_id, country, edge, \(sums(RollupCounters.columns)) FROM \(RollupTable.narrow.rawValue)
            WHERE 1 = 1\(conditions) GROUP BY title_id, country, edge
            """, binds)
        return try rows.map { (try $0.string("title_id"), try $0.string("country"), try $0.string("edge"), try counters($0, RollupCounters.columns)) }
    }

    /// Distinct viewers of the scope's titles on the days it spans.
    static func uniqueViewers(_ database: any SQLExecutor, _ scope: RollupScope, byTitle: Bool) async throws -> [String: Int64] {
        var days = scope
        days.from = Grain.day.bucket(scope.from)
        days.to = Grain.day.bucket(scope.to)
        let (conditions, binds) = days.conditions(bucketColumn: "day", grainColumn: nil)
        if byTitle {
            let rows = try await database.query(
                "SELECT title_id, COUNT(DISTINCT user_id) AS viewers FROM analytics_viewer_days WHERE 1 = 1\(conditions) GROUP BY title_id", binds)
            return Dictionary(uniqueKeysWithValues: try rows.map { (try $0.string("title_id"), try $0.int("viewers")) })
        }
        let row = try await database.query("SELECT COUNT(DISTINCT user_id) AS viewers FROM analytics_viewer_days WHERE 1 = 1\(conditions)", binds).first
        return ["": try row?.int("viewers") ?? 0]
    }
}

/// The figures every view of a rollup shows, derived from its counters.
struct Figures: Encodable, Sendable {
    let views: Int64
    let unique_viewers: Int64?
    let watch_seconds: Double
    let completion_rate: Double?
    let bytes: Int64
    let requests: Int64
    let cache_hit_ratio: Double?
    let average_bitrate_kbps: Double?
    let switches: Int64
    let errors: Int64
    let startup_ms_avg: Double?
    let rebuffer_ratio: Double?
    let rebuffers: Int64

    init(_ c: RollupCounters, uniqueViewers: Int64?) {
        views = c.views
        unique_viewers = uniqueViewers
        watch_seconds = Double(c.watchMicroseconds) / 1_000_000
        completion_rate = c.views > 0 ? Double(c.completions) / Double(c.views) : nil
        bytes = c.bytes
        requests = c.requests
        cache_hit_ratio = c.hits + c.misses > 0 ? Double(c.hits) / Double(c.hits + c.misses) : nil
        average_bitrate_kbps = c.mediaMicroseconds > 0 ? Double(c.mediaBytes) * 8_000 / Double(c.mediaMicroseconds) : nil
        switches = c.switches
        errors = c.errors
        startup_ms_avg = c.startups > 0 ? Double(c.startupMicroseconds) / Double(c.startups) / 1_000 : nil
        rebuffer_ratio = c.watchMicroseconds > 0 ? Double(c.rebufferMicroseconds) / Double(c.watchMicroseconds + c.rebufferMicroseconds) : nil
        rebuffers = c.rebuffers
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(views, forKey: .views)
        try c.encode(unique_viewers, forKey: .unique_viewers)
        try c.encode(watch_seconds, forKey: .watch_seconds)
        try c.encode(completion_rate, forKey: .completion_rate)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(requests, forKey: .requests)
        try c.encode(cache_hit_ratio, forKey: .cache_hit_ratio)
        try c.encode(average_bitrate_kbps, forKey: .average_bitrate_kbps)
        try c.encode(switches, forKey: .switches)
        try c.encode(errors, forKey: .errors)
        try c.encode(startup_ms_avg, forKey: .startup_ms_avg)
        try c.encode(rebuffer_ratio, forKey: .rebuffer_ratio)
        try c.encode(rebuffers, forKey: .rebuffers)
    }

    enum CodingKeys: String, CodingKey {
        case views, unique_viewers, watch_seconds, completion_rate, bytes, requests, cache_hit_ratio, average_bitrate_kbps, switches, errors,
            startup_ms_avg, rebuffer_ratio, rebuffers
    }
}

/// ISO 8601 UTC text of a Unix time in seconds.
func isoTime(_ seconds: Int64) -> String { rfc3339(milliseconds: seconds * 1000) }
