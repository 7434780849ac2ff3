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
        /// The sessions written, at their new versions: for the memory, once committed.
        var stored: [(id: String, version: Int64, value: ViewSession)] = []
    }

    /// `positional`: the log's consumer name and where the batch starts, for a local log.
    /// `memory`: sessions as this ingestor committed them (nil: read them all).
    static func apply(
        _ batch: DeliveryBatch, timelines: [String: PackageTimeline], positional: (name: String, start: UInt64)?,
        memory: CommittedMemory<ViewSession>? = nil, _ tx: any SQLExecutor
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
        // The batch's sessions: their versions (locked on PostgreSQL), and whole rows only for
        // those the memory does not hold at that version.
        let ids = Set(batch.records.compactMap(\.sessionID))
        var versions: [String: Int64] = [:]
        versions.reserveCapacity(ids.count)
        for row in try await rowsByID("id, version", from: "analytics_sessions", ids: ids, tx, lock: true) {
            versions[try row.string("id")] = try row.int("version")
        }
        var sessions = memory?.values(matching: versions) ?? [:]
        let unknown = versions.keys.filter { sessions[$0] == nil }
        for row in try await rowsByID(ViewSession.columns.joined(separator: ", "), from: "analytics_sessions", ids: unknown, tx) {
            let session = try ViewSession(row)
            sessions[session.id] = session
        }
        var engine = RollupEngine(seen: seen, sessions: sessions)
        engine.apply(batch.records, origins: batch.origins, timelines: timelines)

        try await writeRollups(engine.delta, tx)
        let changed = engine.changedSessions.compactMap { engine.sessions[$0] }
        let written = try await writeSessions(changed, tx)
        // Remembered as written when the version is the one this write made (one more than read,
        // or 1 for a new row); otherwise another writer's row was merged in: read it next time.
        var stored: [(id: String, version: Int64, value: ViewSession)] = []
        stored.reserveCapacity(changed.count)
        for session in changed {
            guard let version = written[session.id], version == (versions[session.id] ?? 0) + 1 else { continue }
            stored.append((session.id, version, session))
        }
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
        return Outcome(applied: true, duplicates: engine.duplicates, newestRecord: engine.newestRecord, stored: stored)
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
        // In key order, so concurrent workers on PostgreSQL lock rows in one order. PostgreSQL
        // takes every row in one statement, an array per column (`ColumnArrays`). On SQLite,
        // counters and buckets are integers written as literals and only the dimensions are bound
        // (at most 7 parameters a row, well under SQLite's 32,766 for 1,000 rows).
        let sorted = rows.map { row in
            let values = RollupDelta.values(row.key, for: table)
            return (row.key.minute, values, row.value, values.joined(separator: "\u{1}"))  // the sort key, made once
        }
        .sorted { ($0.0, $0.3) < ($1.0, $1.3) }
        if tx.dialect == .postgres {
            let kinds: [(name: String, kind: ColumnArrays.Kind)] = dimensions.map { ($0, .text) } + counters.map { ($0, .integer) }
            var arrays = ColumnArrays([("grain", .text), ("bucket", .integer)] + kinds)
            arrays.reserveCapacity(sorted.count)
            for (bucket, values, row, _) in sorted {
                arrays.append([.text(grain.rawValue), .integer(bucket)] + values.map(SQLValue.text) + row.values.map(SQLValue.integer))
            }
            let (select, binds) = arrays.select()
            _ = try await tx.query("INSERT INTO \(table.rawValue) (\(conflict), \(counters.joined(separator: ", "))) \(select)\(tail)", binds)
            return
        }
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

    /// Writes sessions whole, keeping what billing told (viewer, start) if it arrived meanwhile;
    /// returns each one's version as now stored.
    @discardableResult
    static func writeSessions(_ sessions: [ViewSession], _ tx: any SQLExecutor) async throws -> [String: Int64] {
        guard !sessions.isEmpty else { return [:] }
        let columns = ViewSession.columns
        let kept: [String: String] = [
            "user_id": "COALESCE(analytics_sessions.user_id, excluded.user_id)",
            "started_at": "COALESCE(analytics_sessions.started_at, excluded.started_at)",
            "lookup": "CASE WHEN analytics_sessions.lookup = 'pending' THEN excluded.lookup ELSE analytics_sessions.lookup END",
        ]
        let updates = (columns.dropFirst().map { "\($0) = \(kept[$0] ?? "excluded.\($0)")" } + ["version = analytics_sessions.version + 1"])
            .joined(separator: ", ")
        let sorted = sessions.sorted { $0.id < $1.id }
        var versions: [String: Int64] = [:]
        versions.reserveCapacity(sorted.count)
        let returning = " ON CONFLICT (id) DO UPDATE SET \(updates) RETURNING id, version"
        if tx.dialect == .postgres {
            var arrays = ColumnArrays((columns + ["version"]).map { ($0, ViewSession.textColumns.contains($0) ? .text : .integer) })
            arrays.reserveCapacity(sorted.count)
            for session in sorted { arrays.append(session.values + [.integer(1)]) }
            let (select, binds) = arrays.select()
            for row in try await tx.query("INSERT INTO analytics_sessions (\(columns.joined(separator: ", ")), version) \(select)\(returning)", binds) {
                versions[try row.string("id")] = try row.int("version")
            }
            return versions
        }
        var start = 0
        while start < sorted.count {
            let part = sorted[start..<min(sorted.count, start + 500)]
            var binds: [SQLValue] = []
            var tuples: [String] = []
            for session in part {
                tuples.append("(\(sqlPlaceholders(from: binds.count + 1, count: columns.count)), 1)")
                binds += session.values
            }
            for row in try await tx.query(
                "INSERT INTO analytics_sessions (\(columns.joined(separator: ", ")), version) VALUES \(tuples.joined(separator: ", "))\(returning)", binds)
            {
                versions[try row.string("id")] = try row.int("version")
            }
            start += part.count
        }
        return versions
    }
}
