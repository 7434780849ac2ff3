import Foundation
import HTTPTypes
import Hummingbird
import MarqueeServiceKit

/// The API's reads, all from rollups (and the small tables beside them), so they stay fast
/// however many records went in.
struct AnalyticsQueries: Sendable {
    let database: any Database

    // MARK: - Scopes

    /// `range`: the last `hour` (by minute), `day` (by hour), `week` or `month` (by day).
    static func rangeScope(_ request: Request, now: Int64 = unixMilliseconds() / 1000) throws(ServiceError) -> RollupScope {
        let range = request.uri.queryParameters["range"].map(String.init) ?? "day"
        switch range {
        case "hour": return RollupScope(grain: .minute, from: Grain.minute.bucket(now) - 59 * 60, to: Grain.minute.bucket(now))
        case "day": return RollupScope(grain: .hour, from: Grain.hour.bucket(now) - 23 * 3_600, to: Grain.hour.bucket(now))
        case "week": return RollupScope(grain: .day, from: Grain.day.bucket(now) - 6 * 86_400, to: Grain.day.bucket(now))
        case "month": return RollupScope(grain: .day, from: Grain.day.bucket(now) - 29 * 86_400, to: Grain.day.bucket(now))
        default: throw .invalid("range", "must be hour, day, week or month")
        }
    }

    /// Publishers see their own titles; admins all (viewers are refused).
    static func restrict(_ scope: inout RollupScope, _ context: ServiceRequestContext) throws(ServiceError) {
        let identity = try context.require(.publisher)
        scope.owner = identity.role == .admin ? nil : identity.userID
    }

    /// `from`/`to` days (`YYYY-MM-DD`, inclusive) as bucket starts; nil when absent.
    static func day(_ request: Request, _ name: String) throws(ServiceError) -> Int64? {
        guard let text = request.uri.queryParameters[Substring(name)].map(String.init) else { return nil }
        guard let seconds = dayStart(text) else { throw .invalid(name, "must be a day, YYYY-MM-DD") }
        return seconds
    }

    // MARK: - Routes

    struct TitleView: Encodable {
        let title_id: String
        let from: String?
        let to: String?
        let figures: Figures
        let renditions: [Part]
        let countries: [Part]
        let revenue: [RevenueLine]

        struct Part: Encodable {
            let name: String
            let views: Int64
            let watch_seconds: Double
            let bytes: Int64
            let requests: Int64
        }

        func encode(to encoder: any Encoder) throws {
            try figures.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(title_id, forKey: .title_id)
            try c.encode(from, forKey: .from)
            try c.encode(to, forKey: .to)
            try c.encode(renditions, forKey: .renditions)
            try c.encode(countries, forKey: .countries)
            try c.encode(revenue, forKey: .revenue)
        }

        enum CodingKeys: String, CodingKey { case title_id, from, to, renditions, countries, revenue }
    }

    /// `GET /api/analytics/titles/{id}?from=&to=`: one title's figures (all time by default).
    func title(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        var asked = RollupScope(grain: .day, from: try Self.day(request, "from") ?? 0, to: try Self.day(request, "to") ?? Int64.max / 2, title: id)
        try Self.restrict(&asked, context)
        let scope = asked
        guard (1...128).contains(id.utf8.count),
            let row = try await database.first("SELECT owner FROM analytics_titles WHERE title_id = $1", id),
            scope.owner == nil || row.optionalString("owner") == scope.owner
        else {
            throw ServiceError.notFound("no analytics for title \(id)")
        }
        // Independent reads, at once (see `dashboard`).
        let database = database
        let partColumns = ["views", "watch_us", "bytes", "requests"]
        async let totalsRead = RollupQuery.grouped(database, scope, by: nil)
        async let viewersRead = RollupQuery.uniqueViewers(database, scope, byTitle: false)
        async let renditionsRead = RollupQuery.grouped(database, scope, by: "rendition", skipEmpty: true, only: partColumns)
        async let countriesRead = RollupQuery.grouped(database, scope, by: "country", only: partColumns)
        async let revenueRead = revenueLines(scope)
        let part = { (key: String, c: RollupCounters) in
            TitleView.Part(name: key, views: c.views, watch_seconds: Double(c.watchMicroseconds) / 1_000_000, bytes: c.bytes, requests: c.requests)
        }
        let totals = try await totalsRead.first?.counters ?? RollupCounters()
        let viewers = try await viewersRead[""]
        let renditions = try await renditionsRead.map(part)
        let countries = try await countriesRead.map(part)
        let revenue = try await revenueRead
        let view = TitleView(
            title_id: id, from: scope.from > 0 ? dayText(scope.from) : nil, to: scope.to < Int64.max / 2 ? dayText(scope.to) : nil,
            figures: Figures(totals, uniqueViewers: viewers), renditions: renditions.sorted { $0.watch_seconds > $1.watch_seconds },
            countries: countries.sorted { $0.views > $1.views }, revenue: revenue)
        return try jsonResponse(view)
    }

    struct TopTitle: Encodable {
        let title_id: String
        let views: Int64
        let unique_viewers: Int64
        let watch_seconds: Double
        let completion_rate: Double?
        let bytes: Int64
    }

    func topTitles(_ scope: RollupScope, limit: Int) async throws -> [TopTitle] {
        async let rowsRead = RollupQuery.grouped(database, scope, by: "title_id", skipEmpty: true, only: ["views", "watch_us", "completions", "bytes"])
        async let viewersRead = RollupQuery.uniqueViewers(database, scope, byTitle: true)
        let (rows, viewers) = try await (rowsRead, viewersRead)
        return Self.ranked(rows, viewers: viewers, limit: limit)
    }

    /// The scope's totals, countries, gateways and top titles. Over every title (an admin) each
    /// has its own rows in the breakdowns table; over some titles (a publisher) one read of the
    /// title table gives all four.
    func cuts(_ scope: RollupScope, topLimit: Int) async throws -> (
        totals: RollupCounters, countries: [(key: String, counters: RollupCounters)], edges: [(key: String, counters: RollupCounters)], top: [TopTitle]
    ) {
        let database = database
        if scope.owner == nil && scope.title == nil {
            async let totals = RollupQuery.grouped(database, scope, by: nil)
            async let countries = RollupQuery.grouped(database, scope, by: "country", only: ["views", "watch_us", "bytes"])
            async let edges = RollupQuery.grouped(database, scope, by: "edge", only: ["requests", "hits", "misses", "bytes"])
            async let top = topTitles(scope, limit: topLimit)
            return (try await totals.first?.counters ?? RollupCounters(), try await countries, try await edges, try await top)
        }
        async let slicesRead = RollupQuery.titleSlices(database, scope)
        async let viewers = RollupQuery.uniqueViewers(database, scope, byTitle: true)
        let slices = try await slicesRead
        let titles = Self.sum(slices.filter { !$0.title.isEmpty }.map { ($0.title, $0.counters) })
        return (
            slices.reduce(into: RollupCounters()) { $0 += $1.counters }, Self.sum(slices.map { ($0.country, $0.counters) }),
            Self.sum(slices.map { ($0.edge, $0.counters) }), Self.ranked(titles, viewers: try await viewers, limit: topLimit)
        )
    }

    /// Counters summed per key.
    static func sum(_ rows: [(String, RollupCounters)]) -> [(key: String, counters: RollupCounters)] {
        var sums: [String: RollupCounters] = [:]
        for (key, counters) in rows { sums[key, default: RollupCounters()] += counters }
        return sums.map { ($0.key, $0.value) }
    }

    static func ranked(_ rows: [(key: String, counters: RollupCounters)], viewers: [String: Int64], limit: Int) -> [TopTitle] {
        rows.map { key, c in
            TopTitle(
                title_id: key, views: c.views, unique_viewers: viewers[key] ?? 0, watch_seconds: Double(c.watchMicroseconds) / 1_000_000,
                completion_rate: c.views > 0 ? Double(c.completions) / Double(c.views) : nil, bytes: c.bytes)
        }
        .sorted { ($0.views, $0.watch_seconds, $1.title_id) > ($1.views, $1.watch_seconds, $0.title_id) }
        .prefix(limit).map { $0 }
    }

    /// `GET /api/analytics/top-titles?range=&limit=`.
    func topTitles(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        var scope = try Self.rangeScope(request)
        try Self.restrict(&scope, context)
        let limit = try pageLimit(request.uri.queryParameters["limit"].map(String.init))
        return try jsonResponse(["items": try await topTitles(scope, limit: limit)])
    }

    struct Dashboard: Encodable {
        let from: String
        let to: String
        let grain: String
        let totals: Figures
        let series: [Point]
        let top_titles: [TopTitle]
        let countries: [Country]
        let edges: [Edge]
        let errors: [ErrorCount]
        let revenue: [RevenueLine]

        struct Point: Encodable {
            let t: String
            let views: Int64
            let watch_seconds: Double
            let concurrent_viewers: Double
            let bytes: Int64
            let errors: Int64
        }

        struct Country: Encodable {
            let country: String
            let views: Int64
            let watch_seconds: Double
            let bytes: Int64
        }

        struct Edge: Encodable {
            let edge: String
            let role: String
            let region: String
            let requests: Int64
            let hits: Int64
            let misses: Int64
            let cache_hit_ratio: Double?
            let bytes: Int64
        }

        struct ErrorCount: Encodable {
            let status: Int
            let reason: String
            let count: Int64
        }
    }

    /// `GET /api/analytics/dashboard?range=`: everything the dashboard page draws.
    func dashboard(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        var scope = try Self.rangeScope(request)
        try Self.restrict(&scope, context)
        return try jsonResponse(try await dashboard(scope))
    }

    func dashboard(_ scope: RollupScope, topLimit: Int = 10) async throws -> Dashboard {
        // The parts read different cuts of the rollups, independently: on PostgreSQL they run at
        // once on the pool's connections, so the page waits for the slowest, not for the sum.
        let database = database
        async let cutsRead = cuts(scope, topLimit: topLimit)
        async let viewersRead = RollupQuery.uniqueViewers(database, scope, byTitle: false)
        async let seriesRead = RollupQuery.grouped(database, scope, by: "bucket", only: ["views", "watch_us", "active_minutes", "bytes"] + RollupQuery.errorColumns)
        async let placesRead = database.query("SELECT edge, role, region FROM analytics_edges", [])
        async let revenueRead = revenueLines(scope)
        let (totals, countryRows, edgeRows, top) = try await cutsRead
        let viewers = try await viewersRead[""]
        let minutesPerBucket = Double(scope.grain.seconds / 60)
        let series = try await seriesRead.compactMap { key, c -> (Int64, RollupCounters)? in
            Int64(key).map { ($0, c) }
        }
        .sorted { $0.0 < $1.0 }
        .map { bucket, c in
            Dashboard.Point(
                t: isoTime(bucket), views: c.views, watch_seconds: Double(c.watchMicroseconds) / 1_000_000,
                concurrent_viewers: Double(c.activeSessionMinutes) / minutesPerBucket, bytes: c.bytes, errors: c.errors)
        }
        let countries = countryRows.map { key, c in
            Dashboard.Country(country: key.isEmpty ? "unknown" : key, views: c.views, watch_seconds: Double(c.watchMicroseconds) / 1_000_000, bytes: c.bytes)
        }
        .sorted { ($0.views, $0.bytes) > ($1.views, $1.bytes) }
        var places: [String: (String, String)] = [:]
        for row in try await placesRead {
            places[try row.string("edge")] = (try row.string("role"), try row.string("region"))
        }
        let edges = edgeRows.map { key, c in
            Dashboard.Edge(
                edge: key.isEmpty ? "unknown" : key, role: places[key]?.0 ?? "", region: places[key]?.1 ?? "", requests: c.requests, hits: c.hits,
                misses: c.misses, cache_hit_ratio: c.hits + c.misses > 0 ? Double(c.hits) / Double(c.hits + c.misses) : nil, bytes: c.bytes)
        }
        .sorted { $0.requests > $1.requests }
        let errorCounts: [(Int, String, Int64)] = [
            (402, "payment required (session revoked for funds)", totals.status402), (403, "forbidden (token or client)", totals.status403),
            (404, "not found", totals.status404), (410, "gone (URL expired or session ended)", totals.status410),
            (429, "rate limited", totals.status429), (451, "unavailable where the viewer is", totals.status451),
            (400, "other client errors", totals.status4xx), (500, "server errors", totals.status5xx),
        ]
        return Dashboard(
            from: isoTime(scope.from), to: isoTime(scope.to + scope.grain.seconds), grain: scope.grain.rawValue,
            totals: Figures(totals, uniqueViewers: viewers), series: series, top_titles: top,
            countries: countries, edges: edges,
            errors: errorCounts.filter { $0.2 > 0 }.map { Dashboard.ErrorCount(status: $0.0, reason: $0.1, count: $0.2) },
            revenue: try await revenueRead)
    }

    struct RevenueLine: Encodable {
        let day: String
        let title_id: String
        let currency: String
        let minutes: Int64
        let gross: Int64
        let publisher: Int64
        let platform_fee: Int64
    }

    func revenueLines(_ scope: RollupScope) async throws -> [RevenueLine] {
        var conditions = " AND day >= $1 AND day <= $2"
        var binds: [SQLValue] = [.text(dayText(scope.from)), .text(dayText(min(scope.to, 253_402_214_400)))]
        if let owner = scope.owner {
            binds.append(.text(owner))
            conditions += " AND owner = $\(binds.count)"
        }
        if let title = scope.title {
            binds.append(.text(title))
            conditions += " AND title_id = $\(binds.count)"
        }
        let rows = try await database.query(
            "SELECT day, title_id, currency, minutes, gross, publisher, platform_fee FROM analytics_revenue WHERE 1 = 1\(conditions) ORDER BY day DESC, title_id, currency LIMIT 1000",
            binds)
        return try rows.map {
            RevenueLine(
                day: try $0.string("day"), title_id: try $0.string("title_id"), currency: try $0.string("currency"), minutes: try $0.int("minutes"),
                gross: try $0.int("gross"), publisher: try $0.int("publisher"), platform_fee: try $0.int("platform_fee"))
        }
    }

    /// `GET /api/analytics/revenue?from=&to=`: charged minutes per day, title and currency.
    func revenue(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let now = unixMilliseconds() / 1000
        var scope = RollupScope(
            grain: .day, from: try Self.day(request, "from") ?? Grain.day.bucket(now) - 29 * 86_400, to: try Self.day(request, "to") ?? Grain.day.bucket(now))
        try Self.restrict(&scope, context)
        if let title = request.uri.queryParameters["title_id"].map(String.init) { scope.title = title }
        return try jsonResponse(["items": try await revenueLines(scope)])
    }

    struct Report: Encodable {
        let period: String
        let from: String
        let to: String
        let report: Dashboard
    }

    /// `GET /api/analytics/reports/{day|week|month}?date=YYYY-MM-DD`: the UTC day, ISO week
    /// (Monday to Sunday) or calendar month holding `date` (today by default).
    func report(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let period = try context.parameters.require("period")
        let date = try Self.day(request, "date") ?? Grain.day.bucket(unixMilliseconds() / 1000)
        var scope: RollupScope
        switch period {
        case "day":
            scope = RollupScope(grain: .hour, from: date, to: date + 23 * 3_600)
        case "week":
            let weekday = ((date / 86_400) % 7 + 10) % 7  // 0 = Monday (1970-01-01 was a Thursday)
            let monday = date - weekday * 86_400
            scope = RollupScope(grain: .day, from: monday, to: monday + 6 * 86_400)
        case "month":
            let text = dayText(date)
            let first = dayStart(String(text.prefix(8)) + "01")!
            let next = Self.nextMonth(first)
            scope = RollupScope(grain: .day, from: first, to: next - 86_400)
        default:
            throw ServiceError.notFound("no report period \(period); use day, week or month")
        }
        try Self.restrict(&scope, context)
        let dashboard = try await dashboard(scope, topLimit: 50)
        return try jsonResponse(Report(period: period, from: dayText(scope.from), to: dayText(scope.to), report: dashboard))
    }

    static func nextMonth(_ first: Int64) -> Int64 {
        let text = dayText(first)
        let year = Int(text.prefix(4))!
        let month = Int(text.dropFirst(5).prefix(2))!
        return dayStart(month == 12 ? String(format: "%04d-01-01", year + 1) : String(format: "%04d-%02d-01", year, month + 1))!
    }

    struct SessionView: Encodable, Sendable {
        let session_id: String
        let title_id: String
        let package_version: String
        /// Admins only.
        let user_id: String?
        let country: String?
        let edge: String
        let started_at: String?
        let last_seen_at: String
        let watch_seconds: Double
        let position_seconds: Double
        let duration_seconds: Double
        let bytes: Int64
        let requests: Int64
        let errors: Int64
        let switches: Int64
        let startup_ms: Double?
        let rebuffers: Int64
        let rebuffer_ms: Double
        let inferred_rebuffers: Int64
        let cmcd: Bool
        let completed: Bool
    }

    struct SessionsCursor: Codable {
        let t: Int64
        let i: String
    }

    /// `GET /api/analytics/sessions?title_id=&limit=&cursor=`: recent sessions with their
    /// experience, latest first (a publisher's own titles; every title for an admin, who also sees
    /// the viewer).
    func sessions(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.publisher)
        let query = request.uri.queryParameters
        let limit = try pageLimit(query["limit"].map(String.init))
        var conditions: [String] = []
        var binds: [SQLValue] = []
        if identity.role != .admin {
            binds.append(.text(identity.userID))
            conditions.append("title_id IN (SELECT title_id FROM analytics_titles WHERE owner = $\(binds.count))")
        }
        if let title = query["title_id"].map(String.init) {
            binds.append(.text(title))
            conditions.append("title_id = $\(binds.count)")
        }
        if let cursor = query["cursor"].map(String.init) {
            let decoded = try PageCursor.decode(SessionsCursor.self, from: cursor)
            binds += [.integer(decoded.t), .text(decoded.i)]
            conditions.append("(last_seen < $\(binds.count - 1) OR (last_seen = $\(binds.count - 1) AND id < $\(binds.count)))")
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let rows = try await database.query(
            "SELECT \(ViewSession.columns.joined(separator: ", ")) FROM analytics_sessions \(filter) ORDER BY last_seen DESC, id DESC LIMIT \(limit + 1)",
            binds)
        let sessions = try rows.prefix(limit).map(ViewSession.init)
        let items = sessions.map { s in
            SessionView(
                session_id: s.id, title_id: s.titleID, package_version: s.packageVersion, user_id: identity.role == .admin ? s.userID : nil,
                country: s.country.isEmpty ? nil : s.country, edge: s.edge, started_at: s.startedAt.map { rfc3339(milliseconds: $0) },
                last_seen_at: rfc3339(milliseconds: s.lastSeen / 1000), watch_seconds: Double(s.watchMicroseconds) / 1_000_000,
                position_seconds: Double(s.positionMicroseconds) / 1_000_000, duration_seconds: Double(s.durationMicroseconds) / 1_000_000,
                bytes: s.bytes, requests: s.requests, errors: s.errors, switches: s.switches, startup_ms: s.startupMicroseconds.map { Double($0) / 1_000 },
                rebuffers: s.rebuffers, rebuffer_ms: Double(s.rebufferMicroseconds) / 1_000, inferred_rebuffers: s.inferredRebuffers, cmcd: s.sendsCMCD,
                completed: s.completed)
        }
        let next = rows.count > limit ? sessions.last.map { PageCursor.encode(SessionsCursor(t: $0.lastSeen, i: $0.id)) } : nil
        return try jsonResponse(Page(items: items, next_cursor: next))
    }

    struct HistoryItem: Encodable {
        let title_id: String
        let package_version: String
        let session_id: String
        let position_seconds: Double
        let duration_seconds: Double
        let watched_seconds: Double
        let last_watched_at: String
        let completed: Bool
    }

    /// `GET /api/analytics/me/history`: the caller's titles, latest first, each with the last
    /// session's furthest media time delivered (where to resume).
    func history(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.viewer)
        let rows = try await database.query(
            """
            SELECT id, title_id, package_version, position_us, duration_us, watch_us, last_seen, completed FROM analytics_sessions
            WHERE user_id = $1 ORDER BY last_seen DESC LIMIT 500
            """, [.text(identity.userID)])
        var seen: Set<String> = []
        var items: [HistoryItem] = []
        for row in rows {
            let title = try row.string("title_id")
            guard seen.insert(title).inserted else { continue }
            items.append(
                HistoryItem(
                    title_id: title, package_version: try row.string("package_version"), session_id: try row.string("id"),
                    position_seconds: Double(try row.int("position_us")) / 1_000_000, duration_seconds: Double(try row.int("duration_us")) / 1_000_000,
                    watched_seconds: Double(try row.int("watch_us")) / 1_000_000, last_watched_at: rfc3339(milliseconds: try row.int("last_seen") / 1000),
                    completed: try row.int("completed") != 0))
            if items.count == 50 { break }
        }
        return try jsonResponse(["items": items], headers: [.cacheControl: "no-store"])
    }
}

/// The Unix time (s) a `YYYY-MM-DD` day starts, UTC; nil for anything else.
func dayStart(_ text: String) -> Int64? {
    let parts = text.split(separator: "-", omittingEmptySubsequences: false)
    guard text.utf8.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
        let year = Int64(parts[0]), let month = Int64(parts[1]), let day = Int64(parts[2]), (1...12).contains(month), (1...31).contains(day)
    else { return nil }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    let days = era * 146_097 + doe - 719_468
    guard dayText(days * 86_400) == text else { return nil }  // 2026-02-31 and the like
    return days * 86_400
}
