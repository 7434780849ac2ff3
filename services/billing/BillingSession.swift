import Foundation
import MarqueeServiceKit

/// A billed playback session: who watches which package at which price (fixed at start), how much
/// media time they were delivered (the coverage), how many minutes were charged.
struct BillingSession: Sendable {
    enum State: String, Sendable {
        case active
        /// Ended by the viewer (`DELETE /api/playback/sessions/{id}`), by idleness, or to make room.
        case ended
        /// Ended because the wallet could not pay the next minute.
        case revoked
    }

    static let columns = """
        id, user_id, title_id, owner, package_version, price_per_minute, currency, state, coverage, covered_us, billed_minutes, \
        charged, written_off, created_at, last_activity, ended_at, end_reason, revoke_pending
        """

    var id: String
    var userID: String
    var titleID: String
    var owner: String
    var packageVersion: String
    var pricePerMinute: Int64
    var currency: String
    var state: State
    var coverage: SessionCoverage
    var coveredMicroseconds: Int64
    var billedMinutes: Int64
    var charged: Int64
    var writtenOff: Int64
    var createdAt: Int64
    var lastActivity: Int64
    var endedAt: Int64?
    var endReason: String?
    var revokePending: String?

    init(
        id: String, userID: String, titleID: String, owner: String, packageVersion: String, pricePerMinute: Int64, currency: String,
        now: Int64
    ) {
        self.id = id
        self.userID = userID
        self.titleID = titleID
        self.owner = owner
        self.packageVersion = packageVersion
        self.pricePerMinute = pricePerMinute
        self.currency = currency
        state = .active
        coverage = SessionCoverage()
        coveredMicroseconds = 0
        billedMinutes = 0
        charged = 0
        writtenOff = 0
        createdAt = now
        lastActivity = now
    }

    init(_ row: SQLRow) throws {
        id = try row.string("id")
        userID = try row.string("user_id")
        titleID = try row.string("title_id")
        owner = try row.string("owner")
        packageVersion = try row.string("package_version")
        pricePerMinute = try row.int("price_per_minute")
        currency = try row.string("currency")
        guard let state = State(rawValue: try row.string("state")) else { throw DatabaseError.column("state", "unknown session state") }
        self.state = state
        coverage = try SessionCoverage(text: try row.string("coverage")) { json in
            try JSONDecoder().decode(SessionCoverage.self, from: Data(json.utf8))
        }
        coveredMicroseconds = try row.int("covered_us")
        billedMinutes = try row.int("billed_minutes")
        charged = try row.int("charged")
        writtenOff = try row.int("written_off")
        createdAt = try row.int("created_at")
        lastActivity = try row.int("last_activity")
        endedAt = row.optionalInt("ended_at")
        endReason = row.optionalString("end_reason")
        revokePending = row.optionalString("revoke_pending")
    }

    var bindings: [SQLValue] {
        [
            .text(id), .text(userID), .text(titleID), .text(owner), .text(packageVersion), .integer(pricePerMinute), .text(currency),
            .text(state.rawValue), .text(coverage.text), .integer(coveredMicroseconds), .integer(billedMinutes), .integer(charged),
            .integer(writtenOff), .integer(createdAt), .integer(lastActivity), endedAt.sqlValue, endReason.sqlValue, revokePending.sqlValue,
        ]
    }

    static func insert(_ session: BillingSession, _ tx: any SQLExecutor) async throws {
        let placeholders = sqlPlaceholders(count: 18)
        _ = try await tx.query("INSERT INTO billing_sessions (\(columns)) VALUES (\(placeholders))", session.bindings)
    }

    static func save(_ session: BillingSession, _ tx: any SQLExecutor) async throws {
        _ = try await tx.query(
            """
            UPDATE billing_sessions SET state = $8, coverage = $9, covered_us = $10, billed_minutes = $11, charged = $12,
                written_off = $13, last_activity = $15, ended_at = $16, end_reason = $17, revoke_pending = $18
            WHERE id = $1 AND user_id = $2 AND title_id = $3 AND owner = $4 AND package_version = $5 AND price_per_minute = $6
                AND currency = $7 AND created_at = $14
            """, session.bindings)
    }

    /// Saves many sessions in few statements (a multi-row upsert that only ever updates: every
    /// session was loaded in the same transaction). Like `save`, a row whose fixed columns differ
    /// is left alone.
    static func saveMany(_ sessions: [BillingSession], _ tx: any SQLExecutor) async throws {
        let chunk = 200  // 3,600 parameters a statement, well inside SQLite's and PostgreSQL's limits
        var start = 0
        while start < sessions.count {
            let part = sessions[start..<min(sessions.count, start + chunk)]
            var binds: [SQLValue] = []
            binds.reserveCapacity(part.count * 18)
            var rows: [String] = []
            rows.reserveCapacity(part.count)
            for session in part {
                let base = binds.count
                rows.append("(" + sqlPlaceholders(from: base + 1, count: 18) + ")")
                binds += session.bindings
            }
            _ = try await tx.query(
                """
                INSERT INTO billing_sessions (\(columns)) VALUES \(rows.joined(separator: ", "))
                ON CONFLICT (id) DO UPDATE SET state = excluded.state, coverage = excluded.coverage, covered_us = excluded.covered_us,
                    billed_minutes = excluded.billed_minutes, charged = excluded.charged, written_off = excluded.written_off,
                    last_activity = excluded.last_activity, ended_at = excluded.ended_at, end_reason = excluded.end_reason,
                    revoke_pending = excluded.revoke_pending
                WHERE billing_sessions.user_id = excluded.user_id AND billing_sessions.title_id = excluded.title_id
                    AND billing_sessions.owner = excluded.owner AND billing_sessions.package_version = excluded.package_version
                    AND billing_sessions.price_per_minute = excluded.price_per_minute AND billing_sessions.currency = excluded.currency
                    AND billing_sessions.created_at = excluded.created_at
                """, binds)
            start += chunk
        }
    }

    /// The sessions among `ids` that exist, by id; with `lock`, locked for the rest of `tx` on
    /// PostgreSQL, in id order (one statement, so the order holds across the whole set).
    static func loadMany(_ ids: [String], _ executor: any SQLExecutor, lock: Bool = false) async throws -> [String: BillingSession] {
        var found: [String: BillingSession] = [:]
        found.reserveCapacity(ids.count)
        let postgres = executor.dialect == .postgres
        let chunk = postgres ? max(1, ids.count) : 500
        var start = 0
        while start < ids.count {
            let part = ids[start..<min(ids.count, start + chunk)]
            let placeholders = sqlPlaceholders(count: part.count)
            let suffix = lock && postgres ? " ORDER BY id FOR UPDATE" : ""
            for row in try await executor.query(
                "SELECT \(columns) FROM billing_sessions WHERE id IN (\(placeholders))\(suffix)", part.map(SQLValue.text))
            {
                let session = try BillingSession(row)
                found[session.id] = session
            }
            start += chunk
        }
        return found
    }

    /// The session, locked for the rest of `tx` on PostgreSQL (SQLite's transactions hold the
    /// whole database already).
    static func load(_ id: String, _ executor: any SQLExecutor, lock: Bool = false) async throws -> BillingSession? {
        let forUpdate = lock && executor.dialect == .postgres ? " FOR UPDATE" : ""
        return try await executor.first("SELECT \(columns) FROM billing_sessions WHERE id = $1\(forUpdate)", id).map(BillingSession.init)
    }

    struct View: Encodable, Sendable {
        let session_id: String
        let user_id: String
        let title_id: String
        let package_version: String
        let state: String
        let covered_seconds: Double
        let metered_minutes: Int64
        let billed_minutes: Int64
        let charged: Int64
        let written_off: Int64
        let price_per_minute: Int64
        let currency: String
        let created_at: String
        let ended_at: String?
        let end_reason: String?

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(session_id, forKey: .session_id)
            try c.encode(user_id, forKey: .user_id)
            try c.encode(title_id, forKey: .title_id)
            try c.encode(package_version, forKey: .package_version)
            try c.encode(state, forKey: .state)
            try c.encode(covered_seconds, forKey: .covered_seconds)
            try c.encode(metered_minutes, forKey: .metered_minutes)
            try c.encode(billed_minutes, forKey: .billed_minutes)
            try c.encode(charged, forKey: .charged)
            try c.encode(written_off, forKey: .written_off)
            try c.encode(price_per_minute, forKey: .price_per_minute)
            try c.encode(currency, forKey: .currency)
            try c.encode(created_at, forKey: .created_at)
            try c.encode(ended_at, forKey: .ended_at)
            try c.encode(end_reason, forKey: .end_reason)
        }

        enum CodingKeys: String, CodingKey {
            case session_id, user_id, title_id, package_version, state, covered_seconds, metered_minutes, billed_minutes, charged, written_off
            case price_per_minute, currency, created_at, ended_at, end_reason
        }
    }

    var view: View {
        View(
            session_id: id, user_id: userID, title_id: titleID, package_version: packageVersion, state: state.rawValue,
            covered_seconds: Double(coveredMicroseconds) / 1_000_000, metered_minutes: billedMinutes,
            billed_minutes: billedMinutes - (pricePerMinute > 0 ? writtenOff / pricePerMinute : 0), charged: charged,
            written_off: writtenOff, price_per_minute: pricePerMinute, currency: currency, created_at: rfc3339(milliseconds: createdAt),
            ended_at: endedAt.map(rfc3339(milliseconds:)), end_reason: endReason)
    }
}
