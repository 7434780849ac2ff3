import Foundation
import HTTPTypes
import MarqueeServiceKit
import NIOConcurrencyHelpers

/// The kinds of ledger account.
enum AccountKind: String, Sendable {
    /// A viewer's money, one per viewer per currency. Never negative.
    case wallet
    /// Money set aside from a wallet for one session's next minute. Never negative.
    case hold
    /// What a title owner earned, per owner per currency.
    case revenue
    /// The platform's fee, per currency.
    case fee
    /// Minutes watched that nobody could pay for, per currency (goes negative: a loss).
    case writtenOff = "written_off"
    /// Where deposits come from (the outside world), per currency (goes negative).
    case funding
}

/// Account ids: the kind, the currency, and the owner when there is one.
enum Account {
    static func wallet(_ user: String, _ currency: String) -> String { "wallet:\(currency):\(user)" }
    static func hold(_ session: String) -> String { "hold:\(session)" }
    static func revenue(_ owner: String, _ currency: String) -> String { "revenue:\(currency):\(owner)" }
    static func fee(_ currency: String) -> String { "fee:\(currency)" }
    static func writtenOff(_ currency: String) -> String { "written_off:\(currency)" }
    static func funding(_ currency: String) -> String { "funding:\(currency)" }
}

/// What a transfer describes, for statements and reports.
enum TransferKind: String, Sendable {
    case deposit
    /// Wallet → hold: a minute set aside (at start, or ahead of the next minute).
    case hold
    /// Hold → wallet: what a session had set aside, back when it ends.
    case release
    /// Wallet → hold when a minute is due and the hold is short.
    case topUp = "top_up"
    /// Written-off → hold: the part of a minute nobody could pay.
    case writeOff = "write_off"
    /// Hold → revenue and hold → fee: one minute charged.
    case chargePublisher = "charge_publisher"
    case chargeFee = "charge_fee"
}

/// The double-entry ledger: every movement is one transfer from one account to another, and the
/// two balances change in the same transaction as the transfer row is written. Debits always equal
/// credits (the sum of all balances per currency is zero).
enum Ledger {
    enum Outcome: Equatable, Sendable {
        /// Written now.
        case posted
        /// A transfer with this id was already written: nothing changed.
        case duplicate
        /// The source account (a wallet or hold) holds less than the amount: nothing changed.
        case insufficient(available: Int64)
    }

    /// Makes the account unless it exists.
    static func ensure(_ tx: any SQLExecutor, _ id: String, kind: AccountKind, owner: String?, currency: String) async throws {
        try await tx.execute(
            "INSERT INTO billing_accounts (id, kind, owner, currency, balance) VALUES ($1, $2, $3, $4, 0) ON CONFLICT (id) DO NOTHING",
            id, kind.rawValue, owner, currency)
    }

    /// What one transaction that posts many transfers (a metering batch) remembers between them.
    final class Batch {
        init() {}
        /// Accounts already ensured in the transaction.
        var made: Set<String> = []
        /// Balances of hold accounts known in this transaction: read once (the meter reads its
        /// sessions' holds together after locking the sessions, and nothing else moves a locked
        /// session's hold), then kept up to date by the charges and reservations that move them.
        var holds: [String: Int64] = [:]
        /// Credits to revenue and fee accounts not applied yet, summed per account: the many
        /// minutes of a batch credit the same few accounts, which are updated once at the end
        /// (`applyCredits`, in the same transaction, so the balances still sum to zero at commit).
        var credits: [String: Int64] = [:]
    }

    /// `ensure` once per transaction.
    static func ensure(_ tx: any SQLExecutor, _ id: String, kind: AccountKind, owner: String?, currency: String, batch: Batch) async throws {
        guard !batch.made.contains(id) else { return }
        try await ensure(tx, id, kind: kind, owner: owner, currency: currency)
        batch.made.insert(id)
    }

    /// Applies the batch's deferred credits (one statement per account) and forgets them.
    static func applyCredits(_ tx: any SQLExecutor, _ batch: Batch) async throws {
        for (account, amount) in batch.credits.sorted(by: { $0.key < $1.key }) where amount != 0 {
            let credited = try await tx.query("UPDATE billing_accounts SET balance = balance + $1 WHERE id = $2 RETURNING balance", [.integer(amount), .text(account)])
            guard !credited.isEmpty else { throw ServiceError(.internalServerError, "ledger account \(account) does not exist") }
        }
        batch.credits = [:]
    }

    /// The balances of the accounts among `ids` that exist, by id (no lock).
    static func balances(_ executor: any SQLExecutor, _ ids: [String]) async throws -> [String: Int64] {
        var found: [String: Int64] = [:]
        for row in try await rowsByID("id, balance", from: "billing_accounts", ids: ids, executor) {
            found[try row.string("id")] = try row.int("balance")
        }
        return found
    }

    /// The account's balance (0 when it does not exist).
    static func balance(_ executor: any SQLExecutor, _ id: String, lock: Bool = false) async throws -> Int64 {
        let forUpdate = lock && executor.dialect == .postgres ? " FOR UPDATE" : ""
        return try await executor.first("SELECT balance FROM billing_accounts WHERE id = $1\(forUpdate)", id)?.int("balance") ?? 0
    }

    /// Several transfers out of one account posted together, as `transfer` posts each: their rows
    /// in one statement (ids already written are left alone), then one debit of what was new. The
    /// credits go to `batch`'s deferred credits. Returns the amount debited.
    /// - Throws: when `from` cannot pay it (the caller made sure it can: nothing may be half done).
    static func transfers(
        _ tx: any SQLExecutor, from: String, _ legs: [(id: String, to: String, amount: Int64, kind: TransferKind)], currency: String,
        _ context: Context, batch: Batch
    ) async throws -> Int64 {
        var binds: [SQLValue] = []
        var rows: [String] = []
        for leg in legs {
            precondition(leg.amount > 0, "transfers move a positive amount")
            rows.append("(" + sqlPlaceholders(from: binds.count + 1, count: 12) + ")")
            binds += transferRow(id: leg.id, from: from, to: leg.to, amount: leg.amount, currency: currency, kind: leg.kind, context)
        }
        guard !rows.isEmpty else { return 0 }
        let inserted = try await tx.query(
            "\(insertTransfers) \(rows.joined(separator: ", ")) ON CONFLICT (id) DO NOTHING RETURNING id", binds)
        let posted = Set(try inserted.map { try $0.string("id") })
        var total: Int64 = 0
        for leg in legs where posted.contains(leg.id) {
            total += leg.amount
            batch.credits[leg.to, default: 0] += leg.amount
        }
        guard total > 0 else { return 0 }
        let debited = try await tx.query(
            "UPDATE billing_accounts SET balance = balance - $1 WHERE id = $2 AND (kind NOT IN ('wallet', 'hold') OR balance >= $1) RETURNING balance",
            [.integer(total), .text(from)])
        guard !debited.isEmpty else { throw ServiceError(.internalServerError, "ledger account \(from) cannot pay \(total)") }
        return total
    }

    /// The head of an insert of transfer rows, each of `transferRow`'s twelve values.
    static let insertTransfers =
        "INSERT INTO billing_transfers (id, debit_account, credit_account, amount, currency, kind, session_id, title_id, owner, minute, day, created_at) VALUES"

    static func transferRow(
        id: String, from: String, to: String, amount: Int64, currency: String, kind: TransferKind, _ context: Context
    ) -> [SQLValue] {
        [
            .text(id), .text(from), .text(to), .integer(amount), .text(currency), .text(kind.rawValue), context.session.sqlValue,
            context.title.sqlValue, context.owner.sqlValue, context.minute.sqlValue, .text(day(context.now)), .integer(context.now),
        ]
    }

    /// Fields a transfer records besides its accounts and amount.
    struct Context: Sendable {
        var session: String?
        var title: String?
        var owner: String?
        var minute: Int64?
        var now: Int64
    }

    /// Moves `amount` from `from` to `to` under `id`, in `tx`. Both accounts must exist. The id
    /// is inserted first: a concurrent transfer with the same id waits for this one and then
    /// inserts nothing. A wallet or hold that cannot pay leaves everything as it was.
    static func transfer(
        _ tx: any SQLExecutor, id: String, from: String, to: String, amount: Int64, currency: String, kind: TransferKind, _ context: Context
    ) async throws -> Outcome {
        precondition(amount > 0, "transfers move a positive amount")
        let inserted = try await tx.query(
            "\(insertTransfers) (\(sqlPlaceholders(count: 12))) ON CONFLICT (id) DO NOTHING RETURNING id",
            transferRow(id: id, from: from, to: to, amount: amount, currency: currency, kind: kind, context))
        guard !inserted.isEmpty else { return .duplicate }
        let debited = try await tx.query(
            "UPDATE billing_accounts SET balance = balance - $1 WHERE id = $2 AND (kind NOT IN ('wallet', 'hold') OR balance >= $1) RETURNING balance",
            [.integer(amount), .text(from)])
        guard !debited.isEmpty else {
            try await tx.execute("DELETE FROM billing_transfers WHERE id = $1", id)
            return .insufficient(available: try await balance(tx, from))
        }
        let credited = try await tx.query("UPDATE billing_accounts SET balance = balance + $1 WHERE id = $2 RETURNING balance", [.integer(amount), .text(to)])
        guard !credited.isEmpty else { throw ServiceError(.internalServerError, "ledger account \(to) does not exist") }
        return .posted
    }

    /// `YYYY-MM-DD` (UTC) of a Unix millisecond time: the day revenue is reported under.
    static func day(_ milliseconds: Int64) -> String {
        // Every transfer asks, and nearly always for the day asked last: the calendar is consulted
        // once per UTC day (it cost the meter 2% of its time per transfer).
        let index = milliseconds >= 0 ? milliseconds / 86_400_000 : (milliseconds + 1) / 86_400_000 - 1
        if let known = lastDay.withLockedValue({ $0?.index == index ? $0?.text : nil }) { return known }
        let text = calendarDay(milliseconds)
        lastDay.withLockedValue { $0 = (index, text) }
        return text
    }

    private static let lastDay = NIOLockedValueBox<(index: Int64, text: String)?>(nil)

    /// The UTC day of a time in milliseconds, `YYYY-MM-DD`, from the Gregorian calendar.
    static func calendarDay(_ milliseconds: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", c.year ?? 1970, c.month ?? 1, c.day ?? 1)
    }
}
