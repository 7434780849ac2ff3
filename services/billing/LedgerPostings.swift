import HTTPTypes
import MarqueeServiceKit

/// The transfers of one metering batch, written together just before its commit: every transfer
/// row in a few multi-row inserts, then each account's net change in a few updates. A batch
/// charges hundreds of minutes, and posting each transfer on its own (its row, its debit, its
/// credit) was most of the meter's statements, each a round trip to PostgreSQL.
///
/// Balances are read once per account (locked on PostgreSQL, in the same order the one-at-a-time
/// path takes: sessions first, then accounts) and followed in memory as transfers are added, so
/// no wallet or hold is ever asked for more than it has. The batch assumes every transfer is new:
/// if the insert finds one already written (a replay of records whose session row lost its
/// coverage), `flush` throws `AlreadyPosted`, the transaction rolls back, and the meter applies
/// the batch again one transfer at a time, where a duplicate changes nothing.
final class LedgerPostings {
    /// A transfer of the batch was written before: apply it one transfer at a time instead.
    struct AlreadyPosted: Error, CustomStringConvertible {
        let count: Int
        var description: String { "\(count) of the batch's transfers were written before" }
    }

    /// Accounts known to exist: ensured in the transaction, or before it (accounts are never
    /// removed).
    private(set) var made: Set<String>
    /// Balances known in the transaction, kept up to date by `post`.
    private(set) var balances: [String: Int64]
    private var rows: [SQLValue] = []
    private var rowCount = 0
    /// Each account's net change, applied by `flush`.
    private var changes: [String: Int64] = [:]

    /// Starts with hold balances already known (read together, or remembered by the meter; the
    /// accounts they name exist) and accounts made by transactions that committed.
    init(holds: [String: Int64], existing: Set<String> = []) {
        balances = holds
        made = existing.union(holds.keys)
    }

    /// Makes the account unless it exists, once per transaction.
    func ensure(_ tx: any SQLExecutor, _ id: String, kind: AccountKind, owner: String?, currency: String) async throws {
        guard !made.contains(id) else { return }
        try await Ledger.ensure(tx, id, kind: kind, owner: owner, currency: currency)
        made.insert(id)
    }

    /// The account's balance with the batch's transfers so far (0 when it does not exist); read
    /// once, locked on PostgreSQL.
    func balance(_ tx: any SQLExecutor, _ id: String) async throws -> Int64 {
        if let known = balances[id] { return known }
        let read = try await Ledger.balance(tx, id, lock: true)
        balances[id] = read
        return read
    }

    /// Reads the balances of `ids` (in order; locked on PostgreSQL) in few statements; an account
    /// that does not exist has 0.
    func read(_ tx: any SQLExecutor, _ ids: [String]) async throws {
        let unknown = ids.filter { balances[$0] == nil }
        for id in unknown { balances[id] = 0 }
        for row in try await rowsByID("id, balance", from: "billing_accounts", ids: unknown, tx, lock: true) {
            balances[try row.string("id")] = try row.int("balance")
        }
    }

    /// Adds a transfer. The caller made sure a wallet or hold `from` has `amount` (`balance`), and
    /// that both accounts exist.
    func post(
        id: String, from: String, to: String, amount: Int64, currency: String, kind: TransferKind, _ context: Ledger.Context
    ) {
        precondition(amount > 0, "transfers move a positive amount")
        rows += Ledger.transferRow(id: id, from: from, to: to, amount: amount, currency: currency, kind: kind, context)
        rowCount += 1
        changes[from, default: 0] -= amount
        changes[to, default: 0] += amount
        if let known = balances[from] { balances[from] = known - amount }
        if let known = balances[to] { balances[to] = known + amount }
    }

    /// Writes the transfers and the balances' changes.
    /// - Throws: `AlreadyPosted` when a transfer's id was written before (nothing may count
    ///   twice: the caller rolls back); an error when an account is missing or a wallet or hold
    ///   would go below zero (the table's CHECK).
    func flush(_ tx: any SQLExecutor) async throws {
        let width = 12
        let rowsPerInsert = 250  // 3,000 parameters a statement
        var inserted = 0
        var first = 0
        while first < rowCount {
            let count = min(rowsPerInsert, rowCount - first)
            let values = (0..<count).map { "(" + sqlPlaceholders(from: $0 * width + 1, count: width) + ")" }.joined(separator: ", ")
            let written = try await tx.query(
                "\(Ledger.insertTransfers) \(values) ON CONFLICT (id) DO NOTHING RETURNING id", Array(rows[first * width..<(first + count) * width]))
            inserted += written.count
            first += count
        }
        guard inserted == rowCount else { throw AlreadyPosted(count: rowCount - inserted) }
        let changed = changes.filter { $0.value != 0 }.sorted { $0.key < $1.key }
        let accountsPerUpdate = 500
        first = 0
        while first < changed.count {
            let part = changed[first..<min(changed.count, first + accountsPerUpdate)]
            var binds: [SQLValue] = []
            binds.reserveCapacity(part.count * 2)
            var values: [String] = []
            for (account, change) in part {
                values.append("($\(binds.count + 1), $\(binds.count + 2))")
                binds += [.text(account), .integer(change)]
            }
            let updated = try await tx.query(
                """
                UPDATE billing_accounts SET balance = billing_accounts.balance + CAST(v.column2 AS BIGINT)
                FROM (VALUES \(values.joined(separator: ", "))) AS v WHERE billing_accounts.id = v.column1 RETURNING billing_accounts.id
                """, binds)
            guard updated.count == part.count else {
                throw ServiceError(.internalServerError, "\(part.count - updated.count) ledger accounts of the batch do not exist")
            }
            first += part.count
        }
        rows = []
        rowCount = 0
        changes = [:]
    }
}
