import Foundation
import MarqueeServiceKit

/// Learns from billing who watched each session analytics has seen, and when it started: then
/// the session counts towards its title's unique viewers (on the day of its first media segment),
/// its startup time is known, and it appears in the viewer's history. Sessions billing does not
/// know (signed without playback) are marked `unknown` and keep counting everything else.
struct SessionDirectory: Sendable {
    let database: any Database
    let billing: BillingFacts

    /// Looks up one round of pending sessions; returns how many it settled.
    @discardableResult
    func settlePending(limit: Int = 500) async throws -> Int {
        let pending = try await database.query(
            "SELECT id FROM analytics_sessions WHERE lookup = 'pending' ORDER BY last_seen LIMIT \(limit)", [])
        let ids = try pending.map { try $0.string("id") }
        guard !ids.isEmpty else { return 0 }
        let facts = try await billing.sessions(ids)
        try await database.transaction { tx in
            var delta = RollupDelta()
            var byID: [String: BillingFacts.SessionFact] = [:]
            for fact in facts { byID[fact.session_id] = fact }
            for row in try await rowsByID(ViewSession.columns.joined(separator: ", "), from: "analytics_sessions", ids: ids, tx, lock: true) {
                var session = try ViewSession(row)
                guard session.lookup == .pending else { continue }
                guard let fact = byID[session.id], fact.title_id == session.titleID else {
                    try await tx.execute("UPDATE analytics_sessions SET lookup = 'unknown', version = version + 1 WHERE id = $1", session.id)
                    continue
                }
                var startup: Int64?
                if let first = session.firstMedia, session.startupMicroseconds == nil {
                    startup = ViewSession.startup(from: fact.created_at, toFirstMedia: first)
                }
                if let startup, let first = session.firstMedia {
                    let dimensions = RollupDimensions(
                        title: session.titleID, version: session.packageVersion, country: session.country, edge: session.edge)
                    delta.add(minute: Grain.minute.bucket(RollupEngine.floorSeconds(first)), dimensions) { row in
                        row.startups += 1
                        row.startupMicroseconds += startup
                    }
                }
                session.startupMicroseconds = session.startupMicroseconds ?? startup
                _ = try await tx.query(
                    "UPDATE analytics_sessions SET user_id = $2, started_at = $3, lookup = 'done', startup_us = $4, version = version + 1 WHERE id = $1",
                    [.text(session.id), .text(fact.user_id), .integer(fact.created_at), session.startupMicroseconds.map(SQLValue.integer) ?? .null])
                let day = Grain.day.bucket(RollupEngine.floorSeconds(session.firstMedia ?? fact.created_at * 1000))
                _ = try await tx.query(
                    "INSERT INTO analytics_viewer_days (title_id, day, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    [.text(session.titleID), .integer(day), .text(fact.user_id)])
                _ = try await tx.query(
                    """
                    INSERT INTO analytics_titles (title_id, owner, duration_us) VALUES ($1, $2, 0)
                    ON CONFLICT (title_id) DO UPDATE SET owner = excluded.owner
                    """, [.text(session.titleID), .text(fact.owner)])
            }
            try await RollupBatch.writeRollups(delta, tx)
        }
        return ids.count
    }

    /// Replaces the revenue of the last days (all of it the first time) with billing's figures:
    /// charges land on the day they are made, so earlier days no longer change.
    func syncRevenue(now: Int64 = unixMilliseconds()) async throws {
        let any = try await database.first("SELECT day FROM analytics_revenue LIMIT 1")
        let from = any == nil ? "1970-01-01" : dayText(Grain.day.bucket(now / 1000) - 2 * 86_400)
        let lines = try await billing.revenue(from: from)
        try await database.transaction { tx in
            try await tx.execute("DELETE FROM analytics_revenue WHERE day >= $1", from)
            for line in lines {
                _ = try await tx.query(
                    """
                    INSERT INTO analytics_revenue (day, title_id, currency, owner, minutes, gross, publisher, platform_fee)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (day, title_id, currency) DO UPDATE SET
                    owner = excluded.owner, minutes = excluded.minutes, gross = excluded.gross, publisher = excluded.publisher, platform_fee = excluded.platform_fee
                    """,
                    [
                        .text(line.day), .text(line.title_id), .text(line.currency), .text(line.owner), .integer(line.minutes), .integer(line.gross),
                        .integer(line.publisher), .integer(line.platform_fee),
                    ])
                if !line.owner.isEmpty, line.owner != "none" {
                    try await tx.execute(
                        "INSERT INTO analytics_titles (title_id, owner, duration_us) VALUES ($1, $2, 0) ON CONFLICT (title_id) DO UPDATE SET owner = excluded.owner",
                        line.title_id, line.owner)
                }
            }
        }
    }
}

/// `YYYY-MM-DD` of a Unix time in seconds (UTC).
func dayText(_ seconds: Int64) -> String {
    let days = Grain.day.bucket(seconds) / 86_400
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    return String(format: "%04d-%02d-%02d", Int(year), Int(month), Int(day))
}
