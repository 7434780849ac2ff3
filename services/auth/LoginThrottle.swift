import MarqueeServiceKit

/// Slows password guessing, in the database so every auth instance sees the same counts:
/// - per account: after `accountFailures` wrong passwords within the window the account refuses
///   logins for `accountBlock`, doubling with each further block while failures continue;
/// - per client address: after `addressFailures` failures within the window, that address is
///   refused for `addressBlock` (one address trying many accounts).
/// A successful login clears the account's count. Checked before bcrypt runs, so a blocked
/// attacker costs no CPU.
struct LoginThrottle: Sendable {
    struct Settings: Sendable {
        var window: Int64 = 15 * 60 * 1000
        var accountFailures: Int64 = 5
        var accountBlock: Int64 = 60 * 1000
        var addressFailures: Int64 = 30
        var addressBlock: Int64 = 5 * 60 * 1000
    }

    let database: any Database
    let settings: Settings

    static func accountKey(_ email: String) -> String { "account:" + email }
    static func addressKey(_ address: String) -> String { "address:" + address }

    /// Seconds until these keys may try again, or nil when they may now.
    func retryAfter(keys: [String], now: Int64) async throws -> Int? {
        var latest: Int64 = 0
        for key in keys {
            if let row = try await database.first("SELECT blocked_until FROM login_throttle WHERE key = $1", key) {
                latest = max(latest, try row.int("blocked_until"))
            }
        }
        return latest > now ? Int((latest - now + 999) / 1000) : nil
    }

    func recordFailure(account: String, address: String?, now: Int64) async throws {
        try await bump(Self.accountKey(account), limit: settings.accountFailures, block: settings.accountBlock, escalates: true, now: now)
        if let address {
            try await bump(Self.addressKey(address), limit: settings.addressFailures, block: settings.addressBlock, escalates: false, now: now)
        }
    }

    func recordSuccess(account: String) async throws {
        try await database.execute("DELETE FROM login_throttle WHERE key = $1", Self.accountKey(account))
    }

    private func bump(_ key: String, limit: Int64, block: Int64, escalates: Bool, now: Int64) async throws {
        let window = settings.window
        try await database.transaction { tx in
            var failures: Int64 = 1
            var started = now
            if let row = try await tx.first("SELECT failures, window_started_at FROM login_throttle WHERE key = $1", key) {
                let windowStart = try row.int("window_started_at")
                if now - windowStart < window {
                    failures = try row.int("failures") + 1
                    started = windowStart
                }
            }
            var blockedUntil: Int64 = 0
            if failures >= limit {
                // The 5th failure blocks for `block`, the 10th for twice that, ... (accounts only).
                let doublings = escalates ? min(10, (failures - limit) / limit) : 0
                blockedUntil = now + block << doublings
            }
            try await tx.execute(
                """
                INSERT INTO login_throttle (key, failures, window_started_at, blocked_until) VALUES ($1, $2, $3, $4)
                ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, window_started_at = excluded.window_started_at,
                    blocked_until = excluded.blocked_until
                """, key, failures, started, blockedUntil)
        }
    }
}
