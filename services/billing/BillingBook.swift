import Foundation
import HTTPTypes
import MarqueePolicy
import MarqueeServiceKit

/// The operations that move money for sessions, each inside a transaction it is given: opening a
/// session (one minute held), charging minutes, ending a session (the hold released).
struct BillingBook: Sendable {
    let platformFeePercent: Int64

    /// What a session start needs.
    struct Opening: Sendable {
        let sessionID: String
        let userID: String
        let titleID: String
        let owner: String
        let packageVersion: String
        let pricePerMinute: Int64
        let currency: String
    }

    /// The platform's and the publisher's part of one minute.
    func split(_ price: Int64) -> (fee: Int64, publisher: Int64) {
        let fee = price * platformFeePercent / 100
        return (fee, price - fee)
    }

    /// Records the session and, for a priced title, moves one minute from the wallet to the
    /// session's hold; 402 naming the shortfall when the wallet cannot.
    func open(_ opening: Opening, now: Int64, _ tx: any SQLExecutor) async throws -> BillingSession {
        let session = BillingSession(
            id: opening.sessionID, userID: opening.userID, titleID: opening.titleID, owner: opening.owner,
            packageVersion: opening.packageVersion, pricePerMinute: opening.pricePerMinute, currency: opening.currency, now: now)
        let wallet = Account.wallet(opening.userID, opening.currency)
        try await Ledger.ensure(tx, wallet, kind: .wallet, owner: opening.userID, currency: opening.currency)
        if opening.pricePerMinute > 0 {
            try await Ledger.ensure(tx, Account.hold(opening.sessionID), kind: .hold, owner: opening.userID, currency: opening.currency)
            let outcome = try await Ledger.transfer(
                tx, id: "hold:\(opening.sessionID):1", from: wallet, to: Account.hold(opening.sessionID), amount: opening.pricePerMinute,
                currency: opening.currency, kind: .hold, .init(session: opening.sessionID, title: opening.titleID, minute: 1, now: now))
            if case .insufficient(let available) = outcome {
                throw Self.insufficient(price: opening.pricePerMinute, currency: opening.currency, available: available)
            }
        }
        try await BillingSession.insert(session, tx)
        return session
    }

    static func insufficient(price: Int64, currency: String, available: Int64) -> ServiceError {
        ServiceError(
            HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required"),
            "insufficient funds: one minute of this title costs \(price) (\(currency) minor units) and your \(currency) wallet holds \(available); "
                + "deposit at least \(price - available) more",
            type: "https://marquee.dev/problems/insufficient-funds")
    }

    /// Ends an active session: what its hold still has goes back to the wallet, and the gateways
    /// are to be told (`revoke_pending`). Does nothing to a session already over.
    func end(_ session: inout BillingSession, state: BillingSession.State, reason: String, now: Int64, _ tx: any SQLExecutor) async throws {
        guard session.state == .active else { return }
        try await release(session, now: now, tx)
        session.state = state
        session.endedAt = now
        session.endReason = reason
        session.revokePending = state == .revoked ? RevocationReason.funds.description : RevocationReason.other.description
        try await BillingSession.save(session, tx)
    }

    /// Moves what the session's hold has back to the wallet.
    func release(_ session: BillingSession, now: Int64, _ tx: any SQLExecutor) async throws {
        let hold = Account.hold(session.id)
        let held = try await Ledger.balance(tx, hold, lock: true)
        guard held > 0 else { return }
        // One release per hold top-up generation: the id names the minute the session reached.
        _ = try await Ledger.transfer(
            tx, id: "release:\(session.id):\(session.billedMinutes)", from: hold, to: Account.wallet(session.userID, session.currency),
            amount: held, currency: session.currency, kind: .release, .init(session: session.id, title: session.titleID, now: now))
    }

    /// Charges minute `minute` of the session from its hold: a short hold is topped up from the
    /// wallet, and what the wallet cannot pay is written off. Returns whether anything had to be
    /// written off. Every transfer's id names (session, minute): charging a minute twice changes
    /// nothing.
    @discardableResult
    func charge(_ session: inout BillingSession, minute: Int64, now: Int64, _ tx: any SQLExecutor) async throws -> Bool {
        let batch = Ledger.Batch()
        let unpaid = try await charge(&session, minute: minute, now: now, tx, batch: batch)
        try await Ledger.applyCredits(tx, batch)
        return unpaid
    }

    /// `charge` as one of many in a transaction (the meter's batch): each account is ensured once,
    /// the hold's balance is read at most once (`batch.holds`), the minute's two charges are posted
    /// in one statement and one debit of the hold, and the revenue and fee credits are summed in
    /// `batch` for `Ledger.applyCredits` to apply before the commit.
    @discardableResult
    func charge(_ session: inout BillingSession, minute: Int64, now: Int64, _ tx: any SQLExecutor, batch: Ledger.Batch) async throws -> Bool {
        let price = session.pricePerMinute
        guard price > 0 else { return false }
        let currency = session.currency
        let hold = Account.hold(session.id)
        let wallet = Account.wallet(session.userID, currency)
        let context = Ledger.Context(session: session.id, title: session.titleID, owner: session.owner, minute: minute, now: now)
        try await Ledger.ensure(tx, hold, kind: .hold, owner: session.userID, currency: currency, batch: batch)
        var shortfall: Int64 = 0  // what neither the hold nor the wallet could pay
        var held: Int64
        if let known = batch.holds[hold] {
            held = known
        } else {
            held = try await Ledger.balance(tx, hold, lock: true)
        }
        if held < price {
            let short = price - held
            let available = try await Ledger.balance(tx, wallet, lock: true)
            let fromWallet = min(short, available)
            if fromWallet > 0 {
                if try await Ledger.transfer(
                    tx, id: "top_up:\(session.id):\(minute)", from: wallet, to: hold, amount: fromWallet, currency: currency, kind: .topUp,
                    context) == .posted
                {
                    held += fromWallet
                }
            }
            if short - fromWallet > 0 {
                let account = Account.writtenOff(currency)
                try await Ledger.ensure(tx, account, kind: .writtenOff, owner: nil, currency: currency, batch: batch)
                let outcome = try await Ledger.transfer(
                    tx, id: "write_off:\(session.id):\(minute)", from: account, to: hold, amount: short - fromWallet, currency: currency,
                    kind: .writeOff, context)
                if outcome == .posted {
                    session.writtenOff += short - fromWallet
                    held += short - fromWallet
                }
                shortfall = short - fromWallet
            }
        }
        // The minute is paid to the publisher and the platform in full either way (the platform
        // carries what was written off); the viewer is charged what their hold and wallet paid.
        let (fee, publisher) = split(price)
        var legs: [(id: String, to: String, amount: Int64, kind: TransferKind)] = []
        if publisher > 0 {
            let account = Account.revenue(session.owner, currency)
            try await Ledger.ensure(tx, account, kind: .revenue, owner: session.owner, currency: currency, batch: batch)
            legs.append(("charge:\(session.id):\(minute):publisher", account, publisher, .chargePublisher))
        }
        if fee > 0 {
            let account = Account.fee(currency)
            try await Ledger.ensure(tx, account, kind: .fee, owner: nil, currency: currency, batch: batch)
            legs.append(("charge:\(session.id):\(minute):fee", account, fee, .chargeFee))
        }
        let paid = try await Ledger.transfers(tx, from: hold, legs, currency: currency, context, batch: batch)
        batch.holds[hold] = held - paid
        if paid > 0 { session.charged += price - shortfall }
        return shortfall > 0
    }

    /// Sets the next minute aside for an active session; false when the wallet cannot.
    /// With `batch`, the hold's balance known in the transaction is used and kept up to date.
    func reserveNext(_ session: BillingSession, now: Int64, _ tx: any SQLExecutor, batch: Ledger.Batch? = nil) async throws -> Bool {
        let price = session.pricePerMinute
        guard price > 0 else { return true }
        let hold = Account.hold(session.id)
        let held: Int64
        if let known = batch?.holds[hold] {
            held = known
        } else {
            held = try await Ledger.balance(tx, hold, lock: true)
        }
        guard held < price else { return true }
        let outcome = try await Ledger.transfer(
            tx, id: "hold:\(session.id):\(session.billedMinutes + 1)", from: Account.wallet(session.userID, session.currency), to: hold,
            amount: price - held, currency: session.currency, kind: .hold,
            .init(session: session.id, title: session.titleID, minute: session.billedMinutes + 1, now: now))
        if outcome == .posted { batch?.holds[hold] = price }
        if case .insufficient = outcome { return false }
        return true
    }

    // MARK: - In a metering batch, with postings written together (`LedgerPostings`)

    /// `charge` as the meter's batch posts it: the same transfers under the same ids, added to
    /// `postings` instead of written one by one. Returns whether anything had to be written off.
    func charge(_ session: inout BillingSession, minute: Int64, now: Int64, _ tx: any SQLExecutor, postings: LedgerPostings) async throws -> Bool {
        let price = session.pricePerMinute
        guard price > 0 else { return false }
        let currency = session.currency
        let hold = Account.hold(session.id)
        let wallet = Account.wallet(session.userID, currency)
        let context = Ledger.Context(session: session.id, title: session.titleID, owner: session.owner, minute: minute, now: now)
        try await postings.ensure(tx, hold, kind: .hold, owner: session.userID, currency: currency)
        var held = try await postings.balance(tx, hold)
        var shortfall: Int64 = 0  // what neither the hold nor the wallet could pay
        if held < price {
            let short = price - held
            let fromWallet = min(short, try await postings.balance(tx, wallet))
            if fromWallet > 0 {
                postings.post(id: "top_up:\(session.id):\(minute)", from: wallet, to: hold, amount: fromWallet, currency: currency, kind: .topUp, context)
                held += fromWallet
            }
            shortfall = short - fromWallet
            if shortfall > 0 {
                let account = Account.writtenOff(currency)
                try await postings.ensure(tx, account, kind: .writtenOff, owner: nil, currency: currency)
                postings.post(id: "write_off:\(session.id):\(minute)", from: account, to: hold, amount: shortfall, currency: currency, kind: .writeOff, context)
                session.writtenOff += shortfall
                held += shortfall
            }
        }
        // The minute is paid to the publisher and the platform in full either way (the platform
        // carries what was written off); the viewer is charged what their hold and wallet paid.
        let (fee, publisher) = split(price)
        if publisher > 0 {
            let account = Account.revenue(session.owner, currency)
            try await postings.ensure(tx, account, kind: .revenue, owner: session.owner, currency: currency)
            postings.post(id: "charge:\(session.id):\(minute):publisher", from: hold, to: account, amount: publisher, currency: currency, kind: .chargePublisher, context)
        }
        if fee > 0 {
            let account = Account.fee(currency)
            try await postings.ensure(tx, account, kind: .fee, owner: nil, currency: currency)
            postings.post(id: "charge:\(session.id):\(minute):fee", from: hold, to: account, amount: fee, currency: currency, kind: .chargeFee, context)
        }
        session.charged += price - shortfall
        return shortfall > 0
    }

    /// `reserveNext` as the meter's batch posts it.
    func reserveNext(_ session: BillingSession, now: Int64, _ tx: any SQLExecutor, postings: LedgerPostings) async throws -> Bool {
        let price = session.pricePerMinute
        guard price > 0 else { return true }
        let hold = Account.hold(session.id)
        let wallet = Account.wallet(session.userID, session.currency)
        let held = try await postings.balance(tx, hold)
        guard held < price else { return true }
        guard try await postings.balance(tx, wallet) >= price - held else { return false }
        try await postings.ensure(tx, hold, kind: .hold, owner: session.userID, currency: session.currency)
        postings.post(
            id: "hold:\(session.id):\(session.billedMinutes + 1)", from: wallet, to: hold, amount: price - held, currency: session.currency, kind: .hold,
            .init(session: session.id, title: session.titleID, minute: session.billedMinutes + 1, now: now))
        return true
    }

    /// `end` as the meter's batch posts it: the hold's balance goes back to the wallet through
    /// `postings`, and the caller saves the session with the batch's other sessions.
    func end(_ session: inout BillingSession, state: BillingSession.State, reason: String, now: Int64, _ tx: any SQLExecutor, postings: LedgerPostings) async throws {
        guard session.state == .active else { return }
        let hold = Account.hold(session.id)
        let held = try await postings.balance(tx, hold)
        if held > 0 {
            postings.post(
                id: "release:\(session.id):\(session.billedMinutes)", from: hold, to: Account.wallet(session.userID, session.currency), amount: held,
                currency: session.currency, kind: .release, .init(session: session.id, title: session.titleID, now: now))
        }
        session.state = state
        session.endedAt = now
        session.endReason = reason
        session.revokePending = state == .revoked ? RevocationReason.funds.description : RevocationReason.other.description
    }
}
