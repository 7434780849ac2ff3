import Foundation
import MarqueeMetering
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
        charged, written_off, created_at, last_activity, ended_at, end_reason, revoke_pending, version
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
    /// Grows with every write of the row (see `BillingMigrations`).
    var version: Int64 = 0

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
        version = try row.int("version")
    }

    var bindings: [SQLValue] {
        [
            .text(id), .text(userID), .text(titleID), .text(owner), .text(packageVersion), .integer(pricePerMinute), .text(currency),
            .text(state.rawValue), .text(coverage.text), .integer(coveredMicroseconds), .integer(billedMinutes), .integer(charged),
            .integer(writtenOff), .integer(createdAt), .integer(lastActivity), endedAt.sqlValue, endReason.sqlValue, revokePending.sqlValue,
            .integer(version),
        ]
    }

    static func insert(_ session: BillingSession, _ tx: any SQLExecutor) async throws {
        let placeholders = sqlPlaceholders(count: 19)
        _ = try await tx.query("INSERT INTO billing_sessions (\(columns)) VALUES (\(placeholders))", session.bindings)
    }

    /// Writes the session's changing columns and bumps its version; a row whose fixed columns
    /// differ is left alone.
    static func save(_ session: BillingSession, _ tx: any SQLExecutor) async throws {
        _ = try await tx.query(
            """
            UPDATE billing_sessions SET state = $8, coverage = $9, covered_us = $10, billed_minutes = $11, charged = $12,
                written_off = $13, last_activity = $15, ended_at = $16, end_reason = $17, revoke_pending = $18, version = version + 1
            WHERE id = $1 AND user_id = $2 AND title_id = $3 AND owner = $4 AND package_version = $5 AND price_per_minute = $6
                AND currency = $7 AND created_at = $14
            """, Array(session.bindings.dropLast()))  // all but the version, which the statement bumps
    }

    /// Saves the changing columns of many sessions loaded in the same transaction, in few
    /// statements, each row with the `version` it carries (the caller bumped it). The values
    /// travel as a `VALUES` list (columns `column1`... in SQLite and PostgreSQL alike); the casts
    /// give PostgreSQL a type for a column whose every value in the list is NULL.
    static func saveMany(_ sessions: [BillingSession], _ tx: any SQLExecutor) async throws {
        let width = 12
        let chunk = 300  // 3,600 parameters a statement, well inside SQLite's and PostgreSQL's limits
        var start = 0
        while start < sessions.count {
            let part = sessions[start..<min(sessions.count, start + chunk)]
            var binds: [SQLValue] = []
            binds.reserveCapacity(part.count * width)
            var rows: [String] = []
            rows.reserveCapacity(part.count)
            for session in part {
                rows.append("(" + sqlPlaceholders(from: binds.count + 1, count: width) + ")")
                binds += [
                    .text(session.id), .text(session.state.rawValue), .text(session.coverage.text), .integer(session.coveredMicroseconds),
                    .integer(session.billedMinutes), .integer(session.charged), .integer(session.writtenOff), .integer(session.lastActivity),
                    session.endedAt.sqlValue, session.endReason.sqlValue, session.revokePending.sqlValue, .integer(session.version),
                ]
            }
            _ = try await tx.query(
                """
                UPDATE billing_sessions SET state = v.column2, coverage = v.column3, covered_us = CAST(v.column4 AS BIGINT),
                    billed_minutes = CAST(v.column5 AS BIGINT), charged = CAST(v.column6 AS BIGINT), written_off = CAST(v.column7 AS BIGINT),
                    last_activity = CAST(v.column8 AS BIGINT), ended_at = CAST(v.column9 AS BIGINT), end_reason = v.column10,
                    revoke_pending = v.column11, version = CAST(v.column12 AS BIGINT)
                FROM (VALUES \(rows.joined(separator: ", "))) AS v
                WHERE billing_sessions.id = v.column1
                """, binds)
            start += chunk
        }
    }

    /// The sessions among `ids` that exist, by id; with `lock`, locked for the rest of `tx` on
    /// PostgreSQL, in id order (`rowsByID`).
    static func loadMany(_ ids: [String], _ executor: any SQLExecutor, lock: Bool = false) async throws -> [String: BillingSession] {
        var found: [String: BillingSession] = [:]
        found.reserveCapacity(ids.count)
        for row in try await rowsByID(columns, from: "billing_sessions", ids: ids, executor, lock: lock) {
            let session = try BillingSession(row)
            found[session.id] = session
        }
        return found
    }

    /// The versions of the sessions among `ids` that exist, by id; with `lock`, the rows locked
    /// as `loadMany` locks them.
    static func versions(_ ids: [String], _ executor: any SQLExecutor, lock: Bool = false) async throws -> [String: Int64] {
        var found: [String: Int64] = [:]
        found.reserveCapacity(ids.count)
        for row in try await rowsByID("id, version", from: "billing_sessions", ids: ids, executor, lock: lock) {
            found[try row.string("id")] = try row.int("version")
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
