import Foundation
import Logging
import MarqueeBus
import MarqueeServiceKit
import ServiceLifecycle

import MarqueeMetering
/// The meter: reads delivery records, applies each to its session's coverage (media time the
/// session was delivered, from the package's timeline) and charges every new minute. The charges,
/// the sessions' coverage and the log position after the batch commit in ONE transaction, so a
/// crash before the commit replays the batch and a crash after it never does; a replay of records
/// already applied changes no coverage, and every charge's id names (session, minute) anyway.
public struct Meter: Sendable {
    let service: BillingService
    let source: any DeliverySource
    let timelines: PackageTimelines
    let batchSize: Int
    /// The sessions this meter committed, so a batch loads only those written elsewhere since.
    let memory = MeterMemory()

    public init(service: BillingService, source: any DeliverySource, timelines: PackageTimelines, batchSize: Int = 500) {
        self.service = service
        self.source = source
        self.timelines = timelines
        self.batchSize = batchSize
    }

    /// The committed position (0 before the first batch).
    public func position() async throws -> UInt64 {
        let row = try await service.database.first("SELECT position FROM billing_positions WHERE consumer = $1", source.name)
        return UInt64(max(0, row?.optionalInt("position") ?? 0))
    }

    /// A batch read and sorted, ready for its transaction.
    struct PreparedBatch: Sendable {
        let batch: DeliveryBatch
        /// Where it was read from (0 for acknowledging sources).
        let start: UInt64
        /// Records by session, in log order.
        let bySession: [String: [DeliveryRecord]]
        /// The packages' timelines by `title/version`, loaded before the transaction.
        let timelines: [String: PackageTimeline]
    }

    /// Reads and applies one batch; returns how many records it read (0: nothing new).
    @discardableResult
    public func runOnce() async throws -> Int {
        guard let prepared = try await prepare(from: source.storesPosition ? try await position() : 0) else { return 0 }
        _ = try await commit(prepared)
        return max(1, prepared.batch.records.count)
    }

    /// Applies batches while there are records. From a positional source (the local log) each
    /// next batch is read and sorted while the one before it commits, so the decoding runs on
    /// another core than the database's work. (Not from a stream: entries read ahead of a failed
    /// commit would wait for the claim timeout.) Returns how many records it read.
    @discardableResult
    public func runAvailable() async throws -> Int {
        guard source.storesPosition else { return try await runOnce() }
        guard var current = try await prepare(from: try await position()) else { return 0 }
        var total = 0
        while true {
            // From where this batch ends, if it commits (checked again in the next transaction).
            let end = current.batch.next
            async let following = prepare(from: end)
            let applied = try await commit(current)
            total += max(1, current.batch.records.count)
            // Another meter moved the position: start again from the stored one, later.
            guard applied, let next = try await following else { return total }
            current = next
        }
    }

    /// Reads a batch from `start` and sorts its records by session; nil when there is nothing new.
    func prepare(from start: UInt64) async throws -> PreparedBatch? {
        let batch = try await source.read(from: start, limit: batchSize)
        guard source.storesPosition ? batch.next != start : !batch.acknowledgement.isEmpty else { return nil }
        var bySession: [String: [DeliveryRecord]] = [:]
        var timelines: [String: PackageTimeline] = [:]
        for record in batch.records {
            guard let session = record.sessionID, let title = record.titleID, let version = record.packageVersion else { continue }
            bySession[session, default: []].append(record)
            let name = "\(title)/\(version)"
            if timelines[name] == nil, let timeline = try await self.timelines.timeline(title: title, version: version) {
                timelines[name] = timeline
            }
        }
        return PreparedBatch(batch: batch, start: start, bySession: bySession, timelines: timelines)
    }

    /// Applies a prepared batch in one transaction, then acknowledges it and sends its
    /// revocations. Returns false when the stored position was not where the batch starts
    /// (another meter on the same log applied it): nothing was done.
    func commit(_ prepared: PreparedBatch) async throws -> Bool {
        let positional = source.storesPosition
        let memory = self.memory
        let apply = { @Sendable (careful: Bool) in
            try await service.database.transaction { tx in
                try await self.apply(
                    prepared.bySession, timelines: prepared.timelines, positional: positional, start: prepared.start, next: prepared.batch.next,
                    memory: memory, careful: careful, tx)
            }
        }
        let outcome: BatchOutcome
        do {
            outcome = try await apply(false)
        } catch let replay as LedgerPostings.AlreadyPosted {
            // Rolled back; again, skipping what was written before.
            service.logger.info("the meter applies a batch again one transfer at a time", metadata: ["reason": "\(replay)"])
            outcome = try await apply(true)
        }
        guard outcome.applied else { return false }
        // Only after the commit: a batch rolled back leaves the memory as the database is.
        memory.remember(outcome.stored, holds: outcome.holds)
        memory.forget(outcome.revoked)
        memory.remember(accounts: outcome.accounts)
        let batch = prepared.batch
        if batch.skipped > 0 {
            service.logger.warning("the meter passed over delivery records it could not read", metadata: ["count": "\(batch.skipped)", "source": "\(source.name)"])
        }
        do {
            try await source.acknowledge(batch)
        } catch {
            // The batch is committed; unacknowledged stream entries come back and change nothing.
            service.logger.warning("cannot acknowledge the meter's batch to its source", metadata: ["error": "\(error)"])
        }
        for id in outcome.revoked { await service.revokePending(id) }
        return true
    }

    /// What a batch's transaction did, for the meter's memory and the revocations.
    struct BatchOutcome: Sendable {
        /// False when the stored position was not where the batch starts: nothing was done.
        var applied: Bool
        var revoked: [String] = []
        /// The sessions as they are now stored.
        var stored: [BillingSession] = []
        /// The holds' balances after the batch, where known.
        var holds: [String: Int64] = [:]
        /// Accounts known to exist.
        var accounts: Set<String> = []
    }

    /// One batch's effects in its transaction.
    private func apply(
        _ grouped: [String: [DeliveryRecord]], timelines loaded: [String: PackageTimeline], positional: Bool, start: UInt64, next: UInt64,
        memory: MeterMemory, careful: Bool, _ tx: any SQLExecutor
    ) async throws -> BatchOutcome {
        let book = service.book
        let name = source.name
        // The position row first: a second meter on the same source waits here, then sees the
        // batch done and leaves. (A stream's consumer group gives each meter its own entries.)
        if positional {
            try await tx.execute(
                "INSERT INTO billing_positions (consumer, position, updated_at) VALUES ($1, 0, 0) ON CONFLICT (consumer) DO NOTHING", name)
            let forUpdate = tx.dialect == .postgres ? " FOR UPDATE" : ""
            let current = try await tx.first("SELECT position FROM billing_positions WHERE consumer = $1\(forUpdate)", name)?.int("position") ?? 0
            guard UInt64(max(0, current)) == start else { return BatchOutcome(applied: false) }
        }
        var revoked: [String] = []
        let now = unixMilliseconds()
        let ids = grouped.keys.sorted()
        // The batch's sessions' versions, on PostgreSQL locking them in id order before any
        // account: the order session starts and ends take their locks in too, so they never wait
        // on each other in a circle. Whole rows are loaded only for sessions not remembered at
        // their version.
        let versions = try await BillingSession.versions(ids, tx, lock: true)
        let remembered = memory.entries(matching: versions)
        var sessions = remembered.mapValues(\.session)
        let unknown = ids.filter { versions[$0] != nil && remembered[$0] == nil }
        for (id, session) in try await BillingSession.loadMany(unknown, tx) { sessions[id] = session }
        // The active sessions' holds: remembered, or read together (nothing else moves a locked
        // session's hold); charges and reservations keep the balances up to date in `ledger`,
        // so a hold is never read again in the batch.
        var holds: [String: Int64] = [:]
        var unknownHolds: [String] = []
        for id in ids {
            guard let session = sessions[id], session.state == .active, session.pricePerMinute > 0 else { continue }
            if let held = remembered[id]?.hold { holds[Account.hold(id)] = held } else { unknownHolds.append(Account.hold(id)) }
        }
        holds.merge(try await Ledger.balances(tx, unknownHolds)) { _, read in read }
        // Accounts ensured in this transaction (the holds found exist), the holds' balances, and
        // the revenue and fee credits of its minutes, applied once per account before the commit.
        // The transfers: written together before the commit (`postings`), or, when `careful`,
        // one at a time, so that one written before changes nothing (see `LedgerPostings`).
        let postings = careful ? nil : LedgerPostings(holds: holds, existing: memory.accounts)
        let ledger = Ledger.Batch()
        ledger.made.formUnion(holds.keys)
        ledger.holds = holds
        var changedSessions: [BillingSession] = []
        changedSessions.reserveCapacity(ids.count)
        var stored: [BillingSession] = []  // loaded here and left as they were
        // Coverage first (no statement): the sessions whose coverage grew go on to the ledger.
        var grown: [BillingSession] = []
        for id in ids {
            guard var session = sessions[id], let records = grouped[id] else { continue }
            guard let timeline = loaded["\(session.titleID)/\(session.packageVersion)"] else {
                if remembered[id] == nil { stored.append(session) }
                continue
            }
            var changed = false
            let lastActivity = session.lastActivity
            for record in records where record.titleID == session.titleID && record.packageVersion == session.packageVersion {
                if session.coverage.apply(record, timeline: timeline) { changed = true }
                session.lastActivity = max(session.lastActivity, record.endMicroseconds / 1000)
            }
            if changed {
                grown.append(session)
            } else if session.lastActivity != lastActivity {
                changedSessions.append(session)
            } else if remembered[id] == nil {
                stored.append(session)
            }
        }
        // The wallets those that pay or set aside a minute will draw on, read (and locked) in one
        // statement rather than one each.
        if let postings {
            let drawn = grown.filter { session in
                guard session.state == .active, session.pricePerMinute > 0 else { return false }
                return session.coverage.billedMinutes > session.billedMinutes || (postings.balances[Account.hold(session.id)] ?? 0) < session.pricePerMinute
            }
            try await postings.read(tx, Set(drawn.map { Account.wallet($0.userID, $0.currency) }).sorted())
        }
        for var session in grown {
            session.coveredMicroseconds = session.coverage.coveredMicroseconds
            let target = session.coverage.billedMinutes
            var unpaid = false
            if target > session.billedMinutes {
                for minute in (session.billedMinutes + 1)...target {
                    let unpaidMinute =
                        if let postings {
                            try await book.charge(&session, minute: minute, now: now, tx, postings: postings)
                        } else {
                            try await book.charge(&session, minute: minute, now: now, tx, batch: ledger)
                        }
                    unpaid = unpaid || unpaidMinute
                }
                session.billedMinutes = target
            }
            if session.state == .active {
                // A minute nobody could pay ends the session at once (its cost is written off).
                // Only then: a next minute the wallet cannot hold yet leaves the viewer the rest
                // of the minute they paid for, and a deposit in the meantime still counts.
                if unpaid {
                    revoked.append(session.id)
                    if let postings {
                        try await book.end(&session, state: .revoked, reason: "funds", now: now, tx, postings: postings)
                        changedSessions.append(session)
                    } else {
                        try await book.end(&session, state: .revoked, reason: "funds", now: now, tx)
                        ledger.holds[Account.hold(session.id)] = nil  // released: read again if ever needed
                    }
                    continue
                }
                // No statement when the hold already has the next minute (its balance is known).
                if let postings {
                    _ = try await book.reserveNext(session, now: now, tx, postings: postings)
                } else {
                    _ = try await book.reserveNext(session, now: now, tx, batch: ledger)
                }
            }
            changedSessions.append(session)
        }
        if let postings {
            try await postings.flush(tx)
        } else {
            try await Ledger.applyCredits(tx, ledger)
        }
        for index in changedSessions.indices { changedSessions[index].version += 1 }
        try await BillingSession.saveMany(changedSessions, tx)
        if positional {
            try await tx.execute(
                "UPDATE billing_positions SET position = $2, updated_at = $3 WHERE consumer = $1", name, Int64(next), now)
        }
        let holdsAfter = postings.map { $0.balances.filter { $0.key.hasPrefix("hold:") } } ?? ledger.holds
        return BatchOutcome(applied: true, revoked: revoked, stored: stored + changedSessions, holds: holdsAfter, accounts: postings?.made ?? [])
    }

    /// Runs batches until shutdown: at once while there is more, every `interval` when idle.
    public func runner(interval: Duration, logger: Logger) -> some Service {
        PeriodicWork("billing meter", every: interval, logger: logger) {
            while try await runAvailable() > 0 {}
        }
    }
}
