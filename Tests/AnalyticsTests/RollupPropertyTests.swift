import Foundation
import MarqueeBus
import MarqueeMetering
import MarqueeServiceKit
import MarqueeTestSupport
import Testing

@testable import MarqueeAnalytics

@Suite("Analytics: rollups from delivery records")
struct RollupPropertyTests {
    /// Sums an engine's minute rows per title.
    static func totals(_ rows: [RollupDelta.Key: RollupCounters]) -> [String: AnalyticsFixtures.Totals] {
        var byTitle: [String: RollupCounters] = [:]
        for (key, counters) in rows { byTitle[key.dimensions.title, default: RollupCounters()] += counters }
        return byTitle.mapValues(AnalyticsFixtures.Totals.init)
    }

    /// Feeds `records` in batches to engines that carry state between them, as the database does.
    static func ingest(_ records: [(DeliveryRecord, DeliveryOrigin)], batches: [Int], timeline: PackageTimeline) -> (RollupDelta, Int) {
        var seen: [String: SequenceSet] = [:]
        var sessions: [String: ViewSession] = [:]
        var all = RollupDelta()
        var duplicates = 0
        var start = 0
        for size in batches + [records.count] where start < records.count {
            let part = records[start..<min(records.count, start + size)]
            var engine = RollupEngine(seen: seen, sessions: sessions)
            engine.apply(part.map(\.0), origins: part.map(\.1), timelines: ["title-a/v1": timeline, "title-b/v1": timeline])
            seen = engine.seen
            sessions = engine.sessions
            duplicates += engine.duplicates
            for (key, counters) in engine.delta.rows { all.add(minute: key.minute, key.dimensions) { $0 += counters } }
            start += part.count
        }
        return (all, duplicates)
    }

    @Test("Any order of records, with replays, in any batches, gives the totals computed directly", arguments: 0..<40)
    func anyOrderSameTotals(seed: UInt64) throws {
        let timeline = try AnalyticsFixtures.timeline()
        let records = AnalyticsFixtures.records(sessions: 12, seed: 9_000 + seed)
        var generator = SeededGenerator(seed: seed)
        var arriving = records
        let replays = Int.random(in: 0...records.count / 3, using: &generator)
        for _ in 0..<replays { arriving.append(records.randomElement(using: &generator)!) }
        arriving.shuffle(using: &generator)
        let batches = (0..<8).map { _ in Int.random(in: 1...40, using: &generator) }
        let (delta, duplicates) = Self.ingest(arriving, batches: batches, timeline: timeline)
        #expect(duplicates == replays)
        let expected = AnalyticsFixtures.oracle(records, timeline: timeline)
        let got = Self.totals(delta.rows)
        #expect(got == expected, "seed \(seed)")
        // Folding minutes into hours and days, into every table's cut, changes no total.
        for grain in Grain.allCases {
            #expect(Self.totals(delta.rows(at: grain, for: .wide)) == got)
            #expect(Self.totals(delta.rows(at: grain, for: .narrow)) == got)
            let breakdowns = delta.rows(at: grain, for: .breakdowns)
            var byTitle: [String: RollupCounters] = [:]
            var total = RollupCounters()
            for (key, counters) in breakdowns {
                if key.dimensions.title == "title" { byTitle[key.dimensions.version, default: RollupCounters()] += counters }
                if key.dimensions.title == "total" { total += counters }
            }
            #expect(byTitle.mapValues(AnalyticsFixtures.Totals.init) == got)
            var everything = RollupCounters()
            for counters in delta.counters { everything += counters }
            #expect(total == everything)
        }
    }

    @Test("Request-level counters land in the same minute rows whatever the order")
    func minuteRowsAreOrderFree() throws {
        let timeline = try AnalyticsFixtures.timeline()
        let records = AnalyticsFixtures.records(sessions: 10, seed: 77)
        var generator = SeededGenerator(seed: 78)
        let (inOrder, _) = Self.ingest(records, batches: [1_000_000], timeline: timeline)
        let (shuffled, _) = Self.ingest(records.shuffled(using: &generator), batches: [7, 3, 50], timeline: timeline)
        func requestLevel(_ c: RollupCounters) -> [Int64] {
            [c.requests, c.bytes, c.hits, c.misses, c.aborted, c.errors, c.mediaRequests, c.mediaBytes, c.mediaMicroseconds]
        }
        #expect(inOrder.rows.mapValues(requestLevel) == shuffled.rows.mapValues(requestLevel))
    }

    @Test("Batches through SQLite add up to the direct computation; a replayed batch adds nothing")
    func throughTheDatabase() async throws {
        let timeline = try AnalyticsFixtures.timeline()
        let records = AnalyticsFixtures.records(sessions: 30, seed: 4_242)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("analytics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let database = try await openDatabase("sqlite://\(folder.path)/analytics.db")
        try await Migrator.migrate(database, service: "analytics", AnalyticsMigrations.all)
        let timelines = ["title-a/v1": timeline, "title-b/v1": timeline]
        var start = 0
        while start < records.count {
            let part = Array(records[start..<min(records.count, start + 97)])
            let batch = DeliveryBatch(records: part.map(\.0), origins: part.map(\.1), next: 0)
            _ = try await database.transaction { tx in try await RollupBatch.apply(batch, timelines: timelines, positional: nil, tx) }
            if start == 0 {
                // The same batch again (a stream entry redelivered): every record is dropped.
                let again = try await database.transaction { tx in try await RollupBatch.apply(batch, timelines: timelines, positional: nil, tx) }
                #expect(again.duplicates == part.count)
            }
            start += part.count
        }
        let expected = AnalyticsFixtures.oracle(records, timeline: timeline)
        for grain in Grain.allCases {
            let scope = RollupScope(grain: grain, from: 0, to: Int64.max / 2)
            let rows = try await RollupQuery.grouped(database, scope, by: "title_id")
            let got = Dictionary(uniqueKeysWithValues: rows.map { ($0.key, AnalyticsFixtures.Totals($0.counters)) })
            #expect(got == expected, "\(grain)")
        }
        await database.close()
    }
    @Test("Sessions remembered between batches give the same stored sessions as reading them all, also when billing's facts land in between")
    func rememberedSessions() async throws {
        let timeline = try AnalyticsFixtures.timeline()
        let records = AnalyticsFixtures.records(sessions: 30, seed: 9_001)
        let timelines = ["title-a/v1": timeline, "title-b/v1": timeline]
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("analytics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let memory = CommittedMemory<ViewSession>()
        var stored: [[[String]]] = []
        for remembering in [false, true] {
            let database = try await openDatabase("sqlite://\(folder.path)/analytics-\(remembering).db")
            try await Migrator.migrate(database, service: "analytics", AnalyticsMigrations.all)
            var start = 0
            var round = 0
            while start < records.count {
                let part = Array(records[start..<min(records.count, start + 61)])
                let batch = DeliveryBatch(records: part.map(\.0), origins: part.map(\.1), next: 0)
                let outcome = try await database.transaction { tx in
                    try await RollupBatch.apply(batch, timelines: timelines, positional: nil, memory: remembering ? memory : nil, tx)
                }
                if remembering { memory.remember(outcome.stored) }
                // Billing's facts arrive for the oldest sessions (as `SessionDirectory` writes them).
                round += 1
                let pending = try await database.query("SELECT id FROM analytics_sessions WHERE lookup = 'pending' ORDER BY id LIMIT 2", [])
                for row in pending {
                    try await database.execute(
                        "UPDATE analytics_sessions SET user_id = $2, started_at = 1, lookup = 'done', startup_us = $3, version = version + 1 WHERE id = $1",
                        try row.string("id"), "viewer-\(round)", Int64(round))
                }
                start += part.count
            }
            let rows = try await database.query("SELECT \(ViewSession.columns.joined(separator: ", ")) FROM analytics_sessions ORDER BY id", [])
            stored.append(rows.map { row in ViewSession.columns.map { "\(row[$0])" } })
            await database.close()
        }
        #expect(memory.count > 0, "sessions were remembered")
        #expect(stored[0].count > 20)
        #expect(stored[0].count == stored[1].count)
        let differing = zip(stored[0], stored[1]).filter { $0.0 != $0.1 }
        #expect(differing.isEmpty, "read: \(differing.first?.0 ?? []), remembered: \(differing.first?.1 ?? [])")
        #expect(stored[1].contains { $0[ViewSession.columns.firstIndex(of: "lookup")!] == "\(SQLValue.text("done"))" })
    }
}
