import Crypto
import Foundation
import MarqueeServiceKit

/// Opaque refresh tokens (`rt_` + 256 random bits), stored only as their SHA-256. Each use spends
/// the token and issues its successor in the same *family*; presenting a spent token again means
/// it was copied, so the whole family is revoked and both holders must sign in again (the
/// OAuth 2.0 Security BCP's refresh token rotation).
struct RefreshTokens: Sendable {
    let database: any Database
    let lifetime: Int64

    enum Rotation: Sendable {
        case rotated(userID: String, token: String)
        case refused(String)
    }

    /// A new family for a fresh sign-in.
    func issue(userID: String, now: Int64) async throws -> String {
        try await insert(database, family: Identifier.make(), userID: userID, now: now)
    }

    /// Spends `token` and returns its successor, or why not. A reused token revokes its family;
    /// that revocation commits even though the answer is a refusal.
    func rotate(_ token: String, now: Int64) async throws -> Rotation {
        let hash = Self.hash(token)
        let lifetime = lifetime
        return try await database.transaction { tx in
            let lock = tx.dialect == .postgres ? " FOR UPDATE" : ""
            guard let row = try await tx.first(
                "SELECT family_id, user_id, expires_at, spent_at, revoked_at FROM refresh_tokens WHERE token_hash = $1\(lock)", hash)
            else {
                return .refused("the refresh token is not valid")
            }
            let family = try row.string("family_id")
            if row.optionalInt("revoked_at") != nil { return .refused("the refresh token has been revoked; sign in again") }
            if row.optionalInt("spent_at") != nil {
                try await tx.execute("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL", now, family)
                return .refused("the refresh token was already used; every session from that sign-in is now revoked")
            }
            if try row.int("expires_at") <= now { return .refused("the refresh token has expired; sign in again") }
            let userID = try row.string("user_id")
            guard let user = try await tx.first("SELECT disabled FROM users WHERE id = $1", userID), try !user.bool("disabled") else {
                return .refused("the account is disabled")
            }
            let spent = try await tx.query(
                "UPDATE refresh_tokens SET spent_at = $1 WHERE token_hash = $2 AND spent_at IS NULL RETURNING family_id", now, hash)
            guard !spent.isEmpty else { return .refused("the refresh token was already used") }
            let next = try await Self.insert(tx, family: family, userID: userID, now: now, lifetime: lifetime)
            return .rotated(userID: userID, token: next)
        }
    }

    /// Revokes the family `token` belongs to (logout). Unknown tokens are ignored: logout is idempotent.
    func revokeFamily(of token: String, now: Int64) async throws {
        try await database.execute(
            """
            UPDATE refresh_tokens SET revoked_at = $1
            WHERE revoked_at IS NULL AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $2)
            """, now, Self.hash(token))
    }

    /// Revokes every session of a user (password change, account disabled).
    func revokeAll(userID: String, now: Int64, in executor: (any SQLExecutor)? = nil) async throws {
        try await (executor ?? database).execute(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL", now, userID)
    }

    private func insert(_ executor: any SQLExecutor, family: String, userID: String, now: Int64) async throws -> String {
        try await Self.insert(executor, family: family, userID: userID, now: now, lifetime: lifetime)
    }

    static func insert(_ executor: any SQLExecutor, family: String, userID: String, now: Int64, lifetime: Int64) async throws -> String {
        var random = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for i in random.indices { random[i] = generator.next() }
        let token = "rt_" + Base64URL.encode(random)
        try await executor.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            hash(token), family, userID, now, now + lifetime)
        return token
    }

    static func hash(_ token: String) -> [UInt8] { Array(SHA256.hash(data: Array(token.utf8))) }
}
