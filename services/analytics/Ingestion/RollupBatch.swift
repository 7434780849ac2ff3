import MarqueeBus
import MarqueeMetering
import MarqueeServiceKit

/// One batch's transaction: reads the state the batch touches (the gateways' counted sequences,
/// its sessions, locked on PostgreSQL), lets `RollupEngine` work out the changes, and writes
/// them in a few multi-row statements.
enum RollupBatch {
    struct Outcome: Sendable {
        /// False when the stored log position was not where the batch starts (another worker
        /// applied it): nothing was done.
        var applied: Bool
        var duplicates = 0
        var newestRecord: Int64?
    }

    /// `positional`: the log's consumer name and where the batch starts, for a local log.
    static func apply(
        _ batch: DeliveryBatch, timelines: [String: PackageTimeline], positional: (name: String, start: UInt64)?, _ tx: any SQLExecutor
    ) async throws -> Outcome {
        if let (name, start) = positional {
            try await tx.execute(
                "INSERT INTO analytics_positions (consumer, position, updated_at) VALUES ($1, 0, 0) ON CONFLICT (consumer) DO NOTHING", name)
            let forUpdate = tx.dialect == .postgres ? " FOR UPDATE" : ""
            let current = try await tx.first("SELECT position FROM analytics_positions WHERE consumer = $1\(forUpdate)", name)?.int("position") ?? 0
            guard UInt64(max(0, current)) == start else { return Outcome(applied: false) }
        }
        // What the batch touches, as stored.
        let gateways = Set(batch.origins.map(\.gateway).filter { !$0.isEmpty })
        var seen: [String: SequenceSet] = [:]
        for row in try await rowsByID("gateway, sequences", from: "analytics_seen", key: "gateway", ids: gateways, tx, lock: true) {
            seen[try row.string("gateway")] = SequenceSet(text: try row.string("sequences")) ?? SequenceSet()
        }
        let ids = Set(batch.records.compactMap(\.sessionID))
        var sessions: [String: ViewSession] = [:]
        for row in try await rowsByID(ViewSession.columns.joined(separator: ", "), from: "analytics_sessions", ids: ids, tx, lock: true) {
            let session = try ViewSession(row)
            sessions[session.id] = session
        }
        var engine = RollupEngine(seen: seen, sessions: sessions)
        engine.apply(batch.records, origins: batch.origins, timelines: timelines)

        try await writeRollups(engine.delta, tx)
        try await writeSessions(engine.changedSessions.compactMap { engine.sessions[$0] }, tx)
        for gateway in engine.changedGateways.sorted() {
            try await tx.execute(
                "INSERT INTO analytics_seen (gateway, sequences) VALUES ($1, $2) ON CONFLICT (gateway) DO UPDATE SET sequences = excluded.sequences",
                gateway, engine.seen[gateway]?.text ?? "")
        }
        for (edge, place) in engine.edges.sorted(by: { $0.key < $1.key }) {
            try await tx.execute(
                "INSERT INTO analytics_edges (edge, role, region) VALUES ($1, $2, $3) ON CONFLICT (edge) DO UPDATE SET role = excluded.role, region = excluded.region",
                edge, place.role, place.region)
        }
        for (name, timeline) in timelines.sorted(by: { $0.key < $1.key }) {
            guard let title = name.split(separator: "/").first.map(String.init) else { continue }
            try await tx.execute(
                """
                INSERT INTO analytics_titles (title_id, owner, duration_us) VALUES ($1, NULL, $2)
                ON CONFLICT (title_id) DO UPDATE SET duration_us = excluded.duration_us
                """, title, timeline.durationMicroseconds)
        }
        if let (name, _) = positional {
            try await tx.execute(
                "UPDATE analytics_positions SET position = $2, updated_at = $3 WHERE consumer = $1", name, Int64(batch.next), unixMilliseconds())
        }
        return Outcome(applied: true, duplicates: engine.duplicates, newestRecord: engine.newestRecord)
    }

    /// Adds the batch's rows to every rollup table at each of its grains.
    static func writeRollups(_ delta: RollupDelta, _ tx: any SQLExecutor) async throws {
        guard !delta.isEmpty else { return }
        for table in [RollupTable.wide, .narrow, .breakdowns] {
            for grain in table.grains {
                try await write(delta.rows(at: grain, for: table), grain: grain, into: table, tx)
            }
        }
    }

    private static func write(_ rows: [RollupDelta.Key: RollupCounters], grain: Grain, into table: RollupTable, _ tx: any SQLExecutor) async throws {
        let dimensions = table.dimensions
        let counters = RollupCounters.columns
        let conflict = (["grain", "bucket"] + dimensions).joined(separator: ", ")
        let updates = counters.map { "\($0) = \(table.rawValue).\($0) + excluded.\($0)" }.joined(separator: ", ")
        let head = "INSERT INTO \(table.rawValue) (\(conflict), \(counters.joined(separator: ", "))) VALUES "
        let tail = " ON CONFLICT (\(conflict)) DO UPDATE SET \(updates)"
        // In key order, so concurrent workers on PostgreSQL lock rows in one order. Counters and
        // buckets are integers written as literals; only the dimensions are bound (at most 7
        // parameters a row, well under SQLite's 32,766 for 1,000 rows).
        let sorted = rows.map { row in
            let values = RollupDelta.values(row.key, for: table)
            return (row.key.minute, values, row.value, values.joined(separator: "\u{1}"))  // the sort key, made once
        }
        .sorted { ($0.0, $0.3) < ($1.0, $1.3) }
        var start = 0
        while start < sorted.count {
            let part = sorted[start..<min(sorted.count, start + 1_000)]
            var binds: [SQLValue] = []
            binds.reserveCapacity(part.count * dimensions.count)
            var sql = head
            for (n, (bucket, values, row, _)) in part.enumerated() {
                if n > 0 { sql += ", " }
                sql += "('\(grain.rawValue)', \(bucket), \(sqlPlaceholders(from: binds.count + 1, count: values.count))"
                for value in row.values { sql += ", \(value)" }
                sql += ")"
                binds += values.map(SQLValue.text)
            }
            _ = try await tx.query(sql + tail, binds)
            start += part.count
        }
    }

    /// Writes sessions whole, keeping what billing told (viewer, start) if it arrived meanwhile.
    static func writeSessions(_ sessions: [ViewSession], _ tx: any SQLExecutor) async throws {
        guard !sessions.isEmpty else { return }
        let columns = ViewSession.columns
        let kept: [String: String] = [
            "user_id": "COALESCE(analytics_sessions.user_id, excluded.user_id)",
            "started_at": "COALESCE(analytics_sessions.started_at, excluded.started_at)",
            "lookup": "CASE WHEN analytics_sessions.lookup = 'pending' THEN excluded.lookup ELSE analytics_sessions.lookup END",
        ]
        let updates = columns.dropFirst().map { "\($0) = \(kept[$0] ?? "excluded.\($0)")" }.joined(separator: ", ")
        let sorted = sessions.sorted { $0.id < $1.id }
        var start = 0
        while start < sorted.count {
            let part = sorted[start..<min(sorted.count, start + 500)]
            var binds: [SQLValue] = []
            var tuples: [String] = []
            for session in part {
                tuples.append("(\(sqlPlaceholders(from: binds.count + 1, count: columns.count)))")
                binds += session.values
            }
            _ = try await tx.query(
                "INSERT INTO analytics_sessions (\(columns.joined(separator: ", "))) VALUES \(tuples.joined(separator: ", ")) ON CONFLICT (id) DO UPDATE SET \(updates)",
                binds)
            start += part.count
        }
    }
}
