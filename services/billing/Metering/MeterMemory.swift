import MarqueeMetering
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
    }

    private let sessions: CommittedMemory<Entry>
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

    /// `capacity`: sessions remembered at most; past it, those not in the latest batch are forgotten.
    init(capacity: Int = 50_000) {
        sessions = CommittedMemory(capacity: capacity)
    }

    /// The remembered entries among `versions` (id → version in the database) whose version
    /// matches; the rest must be read.
    func entries(matching versions: [String: Int64]) -> [String: Entry] {
        sessions.values(matching: versions)
    }

    /// After a commit: the sessions as now stored, with their holds' balances where known.
    func remember(_ stored: [BillingSession], holds: [String: Int64]) {
        sessions.remember(stored.map { ($0.id, $0.version, Entry(session: $0, hold: holds[Account.hold($0.id)])) })
    }

    /// Forgets sessions whose stored form this meter does not know (written by a statement that
    /// bumped the version behind it, or by a transaction that rolled back).
    func forget(_ ids: some Sequence<String>) {
        sessions.forget(ids)
    }
}
