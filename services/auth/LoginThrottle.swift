import MarqueeServiceKit

/// Slows password guessing and account farming, in the database so every auth instance sees the
/// same counts:
/// - per account: after `accountFailures` wrong passwords within the window the account refuses
///   logins for `accountBlock`, doubling with each further block while failures continue;
/// - per client address (an IPv6 address counts as its /64, see `AddressBlock`): after
///   `addressFailures` failed sign-ins within the window, that address is refused for
///   `addressBlock` (one address trying many accounts);
/// - registrations per client address: `registrations` within `registrationWindow`, then that
///   address may not register for `registrationWindow`.
///
/// An attempt is *reserved* before bcrypt runs: one transaction checks every counter it touches
/// and counts the attempt as a failure in advance, with the counters' rows locked. So concurrent
/// guesses cannot all pass the check before any of them is recorded: at most `limit` attempts
/// reach bcrypt, however many arrive at once. A successful sign-in gives its reservation back
/// (and clears the account's count); a refused request charges no counter.
struct LoginThrottle: Sendable {
    struct Settings: Sendable {
        var window: Int64 = 15 * 60 * 1000
        var accountFailures: Int64 = 5
        var accountBlock: Int64 = 60 * 1000
        var addressFailures: Int64 = 30
        var addressBlock: Int64 = 5 * 60 * 1000
        var registrations: Int64 = 10
        var registrationWindow: Int64 = 3600 * 1000
    }

    /// One row of `login_throttle`: how many attempts it allows within `window`, and how long it
    /// blocks once they are used up (doubling per further `limit` attempts when it `escalates`).
    struct Counter: Sendable {
        let key: String
        let limit: Int64
        let window: Int64
        let block: Int64
        let escalates: Bool
    }

    enum Verdict: Sendable, Equatable {
        case reserved
        case refused(retryAfterSeconds: Int)
    }

    let database: any Database
    let settings: Settings

    static func accountKey(_ email: String) -> String { "account:" + email }
    static func addressKey(_ address: String) -> String { "address:" + AddressBlock.of(address) }
    static func registrationKey(_ address: String) -> String { "register:" + AddressBlock.of(address) }

    /// The counters one sign-in attempt charges.
    func loginCounters(account: String, address: String?) -> [Counter] {
        var counters = [
            Counter(key: Self.accountKey(account), limit: settings.accountFailures, window: settings.window, block: settings.accountBlock, escalates: true)
        ]
        if let address {
            counters.append(
                Counter(key: Self.addressKey(address), limit: settings.addressFailures, window: settings.window, block: settings.addressBlock, escalates: false))
        }
        return counters
    }

    /// The counter one registration charges (none without a client address).
    func registrationCounters(address: String?) -> [Counter] {
        guard let address else { return [] }
        return [
            Counter(
                key: Self.registrationKey(address), limit: settings.registrations, window: settings.registrationWindow,
                block: settings.registrationWindow, escalates: false)
        ]
    }

    /// Counts one attempt against every counter, or none of them when one is blocked. The rows
    /// are locked for the check and the count (PostgreSQL `FOR UPDATE`, SQLite's write lock), and
    /// taken in key order so two attempts never wait on each other in a cycle.
    func reserve(_ counters: [Counter], now: Int64) async throws -> Verdict {
        guard !counters.isEmpty else { return .reserved }
        let ordered = counters.sorted { $0.key < $1.key }
        return try await database.transaction { tx in
            let lock = tx.dialect == .postgres ? " FOR UPDATE" : ""
            var states: [(counter: Counter, failures: Int64, started: Int64, blockedUntil: Int64)] = []
            for counter in ordered {
                try await tx.execute(
                    "INSERT INTO login_throttle (key, failures, window_started_at, blocked_until) VALUES ($1, 0, $2, 0) ON CONFLICT (key) DO NOTHING",
                    counter.key, now)
                guard let row = try await tx.first("SELECT failures, window_started_at, blocked_until FROM login_throttle WHERE key = $1" + lock, counter.key)
                else { throw DatabaseError.engine("login_throttle row \(counter.key) vanished inside its transaction") }
                states.append((counter, try row.int("failures"), try row.int("window_started_at"), try row.int("blocked_until")))
            }
            let latest = states.map(\.blockedUntil).max() ?? 0
            if latest > now { return .refused(retryAfterSeconds: Int((latest - now + 999) / 1000)) }
            for state in states {
                let counter = state.counter
                let fresh = now - state.started >= counter.window
                let failures = (fresh ? 0 : state.failures) + 1
                var blockedUntil: Int64 = 0
                if failures >= counter.limit {
                    // The limit-th attempt blocks for `block`, the 2×limit-th for twice that, ...
                    let doublings = counter.escalates ? min(10, (failures - counter.limit) / counter.limit) : 0
                    blockedUntil = now + counter.block << doublings
                }
                try await tx.execute(
                    "UPDATE login_throttle SET failures = $2, window_started_at = $3, blocked_until = $4 WHERE key = $1",
                    counter.key, failures, fresh ? now : state.started, blockedUntil)
            }
            return .reserved
        }
    }

    /// The right password: the account's count is cleared and the address gets its reserved
    /// attempt back (lifting a block that attempt alone had set).
    func loginSucceeded(account: String, address: String?) async throws {
        let addressKey = address.map(Self.addressKey)
        let limit = settings.addressFailures
        try await database.transaction { tx in
            try await tx.execute("DELETE FROM login_throttle WHERE key = $1", Self.accountKey(account))
            guard let addressKey else { return }
            try await tx.execute(
                """
                UPDATE login_throttle SET failures = failures - 1,
                    blocked_until = CASE WHEN failures - 1 < $2 THEN 0 ELSE blocked_until END
                WHERE key = $1 AND failures > 0
                """, addressKey, limit)
            try await tx.execute("DELETE FROM login_throttle WHERE key = $1 AND failures = 0 AND blocked_until = 0", addressKey)
        }
    }
}
