import NIOConcurrencyHelpers

/// The sessions a meter committed, as it committed them, with their holds' balances. A batch
/// reads only its sessions' versions (`BillingSession.versions`) and loads whole rows only for
/// sessions it does not remember at that version: written elsewhere since (a session ended
/// through the API, another meter on the same stream), or never seen. Every statement that writes
/// a session bumps its version, and a hold moves only in transactions that write its session,
/// so a remembered hold is right whenever its session's version is.
final class MeterMemory: Sendable {
    struct Entry: Sendable {
        var session: BillingSession
        /// The hold's balance after the commit; nil when not known (read it).
        var hold: Int64?
        /// The batch that last used or wrote the entry, for eviction.
        var lastBatch: UInt64
    }

    /// Sessions remembered at most; past it, those not in the latest batch are forgotten.
    let capacity: Int
    private let state = NIOLockedValueBox<(entries: [String: Entry], batch: UInt64)>(([:], 0))
    /// Shared ledger accounts (revenue, fee, written-off) a committed batch made or found: they
    /// exist for good, so later batches need not ensure them again.
    private let sharedAccounts = NIOLockedValueBox<Set<String>>([])

    var accounts: Set<String> { sharedAccounts.withLockedValue { $0 } }

    /// After a commit: accounts that exist, of which the shared ones are kept (holds and wallets
    /// are many, and known through their sessions anyway).
    func remember(accounts: Set<String>) {
        let shared = accounts.filter { !$0.hasPrefix("hold:") && !$0.hasPrefix("wallet:") }
        guard !shared.isEmpty else { return }
        sharedAccounts.withLockedValue { $0.formUnion(shared) }
    }

    init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    /// The remembered entries among `versions` (id → version in the database) whose version
    /// matches; the rest must be read.
    func entries(matching versions: [String: Int64]) -> [String: Entry] {
        state.withLockedValue { state in
            state.batch += 1
            var found: [String: Entry] = [:]
            found.reserveCapacity(versions.count)
            for (id, version) in versions {
                guard var entry = state.entries[id], entry.session.version == version else { continue }
                entry.lastBatch = state.batch
                state.entries[id] = entry
                found[id] = entry
            }
            return found
        }
    }

    /// After a commit: the sessions as now stored, with their holds' balances where known.
    func remember(_ sessions: [BillingSession], holds: [String: Int64]) {
        state.withLockedValue { state in
            for session in sessions {
                state.entries[session.id] = Entry(session: session, hold: holds[Account.hold(session.id)], lastBatch: state.batch)
            }
            if state.entries.count > capacity {
                let batch = state.batch
                state.entries = state.entries.filter { $0.value.lastBatch == batch }
            }
        }
    }

    /// Forgets sessions whose stored form this meter does not know (written by a statement that
    /// bumped the version behind it, or by a transaction that rolled back).
    func forget(_ ids: some Sequence<String>) {
        state.withLockedValue { state in
            for id in ids { state.entries[id] = nil }
        }
    }
}
