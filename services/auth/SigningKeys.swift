import HTTPTypes
import Crypto
import Foundation
import JWTKit
import MarqueeServiceKit
import NIOConcurrencyHelpers

/// The Ed25519 keys access tokens are signed with, kept in the database so every auth instance
/// signs with, and publishes, the same set. Their private halves are stored sealed with the key
/// encryption key (`SigningKeyEncryption`); only the public halves are stored in the clear.
///
/// Rotation without a failed verification anywhere: a new key is *published* in the JWKS
/// `publishLead` before it signs anything (verifiers that cached the old set refetch on the
/// unknown key id anyway), becomes the signing key at its `activates_at`, and its predecessor stays
/// published until the last token it signed has expired, then is deleted.
final class SigningKeys: Sendable {
    struct Key: Sendable {
        let kid: String
        let privateKey: Curve25519.Signing.PrivateKey
        let activatesAt: Int64
        let retiresAt: Int64?
        var publicX: String { Base64URL.encode(privateKey.publicKey.rawRepresentation) }
    }

    struct Settings: Sendable {
        /// How long a key signs before the next one takes over (default 30 days).
        var rotationInterval: Int64 = 30 * 24 * 3600 * 1000
        /// How long a new key is published before it signs (default 10 minutes).
        var publishLead: Int64 = 10 * 60 * 1000
        /// Access token lifetime: how long a retired key stays published.
        var tokenLifetime: Int64 = 15 * 60 * 1000
    }

    let database: any Database
    let settings: Settings
    /// Nil only for account administration (`marquee users add`), which never touches the keys.
    let encryption: SigningKeyEncryption?
    private let cache = NIOLockedValueBox<(keys: [Key], loadedAt: Int64)>(([], 0))

    init(database: any Database, settings: Settings, encryption: SigningKeyEncryption?) {
        self.database = database
        self.settings = settings
        self.encryption = encryption
    }

    private func requireEncryption() throws(AuthSetupError) -> SigningKeyEncryption {
        guard let encryption else { throw .noKeyEncryptionKey }
        return encryption
    }

    /// Seals the private keys an older version stored in the clear (plain base64url), in place,
    /// in one transaction. Returns how many rows it sealed. Run at start, before anything loads
    /// them. (On SQLite the old bytes may linger in free pages until `VACUUM`.)
    @discardableResult
    func sealPlaintextKeys() async throws -> Int {
        let encryption = try requireEncryption()
        return try await database.transaction { tx in
            var sealed = 0
            for row in try await tx.query("SELECT kid, private_key FROM signing_keys", []) {
                let kid = try row.string("kid")
                let stored = try row.string("private_key")
                guard !SigningKeyEncryption.isSealed(stored) else { continue }
                guard let raw = Base64URL.decode(stored) else { throw DatabaseError.column("private_key", "of signing key \(kid) is neither sealed nor base64url") }
                try await tx.execute(
                    "UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3", try encryption.seal(raw, kid: kid), kid, stored)
                sealed += 1
            }
            return sealed
        }
    }

    /// Creates the first key, starts a rotation when the signing key is due, completes rotations
    /// whose successor is now active, and drops keys whose tokens have all expired. Called at
    /// start-up and every minute.
    func maintain(now: Int64 = unixMilliseconds()) async throws {
        let settings = settings
        let encryption = try requireEncryption()
        try await database.transaction { tx in
            let keys = try await Self.load(tx, encryption)
            let active = keys.filter { $0.activatesAt <= now }.max { $0.activatesAt < $1.activatesAt }
            let pending = keys.contains { $0.activatesAt > now }
            if active == nil && !pending {
                try await Self.insertKey(tx, encryption, activatesAt: now, now: now)
            } else if let active, !pending, now - active.activatesAt >= settings.rotationInterval {
                try await Self.insertKey(tx, encryption, activatesAt: now + settings.publishLead, now: now)
            }
            // A key retires when a newer one activates.
            for key in keys where key.retiresAt == nil {
                if let successor = keys.filter({ $0.activatesAt > key.activatesAt && $0.activatesAt <= now }).min(by: { $0.activatesAt < $1.activatesAt }) {
                    try await tx.execute("UPDATE signing_keys SET retires_at = $1 WHERE kid = $2", successor.activatesAt, key.kid)
                }
            }
            try await tx.execute("DELETE FROM signing_keys WHERE retires_at IS NOT NULL AND retires_at + $1 < $2", settings.tokenLifetime, now)
        }
        try await reload(now: now)
    }

    /// Publishes a new key now that signs from `now + publishLead` (an operator's rotation).
    func rotate(now: Int64 = unixMilliseconds()) async throws -> String {
        let lead = settings.publishLead
        let encryption = try requireEncryption()
        let kid = try await database.transaction { tx in try await Self.insertKey(tx, encryption, activatesAt: now + lead, now: now) }
        try await reload(now: now)
        return kid
    }

    /// The key that signs now.
    func signingKey(now: Int64 = unixMilliseconds()) async throws -> Key {
        if let key = current(now: now) { return key }
        try await maintain(now: now)
        guard let key = current(now: now) else { throw ServiceError(.internalServerError, "no signing key is active") }
        return key
    }

    /// Every published key: pending, signing, and retired ones whose tokens may still be live.
    func published(now: Int64 = unixMilliseconds()) async throws -> [Key] {
        if now - cache.withLockedValue({ $0.loadedAt }) > 60_000 { try await reload(now: now) }
        let lifetime = settings.tokenLifetime
        return cache.withLockedValue { $0.keys }.filter { key in key.retiresAt.map { $0 + lifetime > now } ?? true }
    }

    /// The JWKS document.
    func jwks(now: Int64 = unixMilliseconds()) async throws -> JWKSDocument {
        JWKSDocument(
            keys: try await published(now: now).map {
                JWKSDocument.Key(kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig", kid: $0.kid, x: $0.publicX)
            })
    }

    private func current(now: Int64) -> Key? {
        let (keys, loadedAt) = cache.withLockedValue { ($0.keys, $0.loadedAt) }
        guard now - loadedAt <= 60_000 else { return nil }
        return keys.filter { $0.activatesAt <= now }.max { $0.activatesAt < $1.activatesAt }
    }

    private func reload(now: Int64) async throws {
        let keys = try await Self.load(database, try requireEncryption())
        cache.withLockedValue { $0 = (keys, now) }
    }

    /// Every key, opened. A key sealed with another KEK, or altered, throws `AuthSetupError`.
    static func load(_ executor: any SQLExecutor, _ encryption: SigningKeyEncryption) async throws -> [Key] {
        try await executor.query("SELECT kid, private_key, activates_at, retires_at FROM signing_keys ORDER BY activates_at", []).map { row in
            let kid = try row.string("kid")
            let raw = try encryption.open(try row.string("private_key"), kid: kid)
            return Key(
                kid: kid, privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: raw),
                activatesAt: try row.int("activates_at"), retiresAt: row.optionalInt("retires_at"))
        }
    }

    @discardableResult
    static func insertKey(_ executor: any SQLExecutor, _ encryption: SigningKeyEncryption, activatesAt: Int64, now: Int64) async throws -> String {
        let key = Curve25519.Signing.PrivateKey()
        let kid = Identifier.make()
        try await executor.execute(
            "INSERT INTO signing_keys (kid, private_key, public_key, created_at, activates_at) VALUES ($1, $2, $3, $4, $5)", kid,
            try encryption.seal(key.rawRepresentation, kid: kid), Base64URL.encode(key.publicKey.rawRepresentation), now, activatesAt)
        return kid
    }
}

/// `/.well-known/jwks.json` (RFC 7517; OKP keys as RFC 8037 writes them).
struct JWKSDocument: Codable, Sendable {
    struct Key: Codable, Sendable {
        let kty: String
        let crv: String
        let alg: String
        let use: String
        let kid: String
        let x: String
    }
    let keys: [Key]
}
