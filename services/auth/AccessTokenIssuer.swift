import Crypto
import Foundation
import JWTKit
import MarqueeServiceKit
import NIOConcurrencyHelpers

/// Signs access tokens with the current signing key: EdDSA, `typ: at+jwt`, `aud: marquee`,
/// 15 minutes by default.
final class AccessTokenIssuer: Sendable {
    let keys: SigningKeys
    let issuer: String
    let lifetime: TimeInterval
    private let collections = NIOLockedValueBox<[String: JWTKeyCollection]>([:])

    init(keys: SigningKeys, issuer: String, lifetime: TimeInterval) {
        self.keys = keys
        self.issuer = issuer
        self.lifetime = lifetime
    }

    func issue(userID: String, email: String, role: Role, now exact: Date = Date()) async throws -> String {
        // NumericDate in whole seconds: some verifiers refuse fractions.
        let now = Date(timeIntervalSince1970: exact.timeIntervalSince1970.rounded(.down))
        let key = try await keys.signingKey(now: unixMilliseconds(exact))
        let collection = await collection(for: key)
        let claims = AccessClaims(
            issuer: issuer, userID: userID, role: role, email: email, issuedAt: now, lifetime: lifetime, tokenID: Identifier.make(at: now))
        var header = JWTHeader()
        header.typ = AccessClaims.tokenType
        return try await collection.sign(claims, kid: JWKIdentifier(string: key.kid), header: header)
    }

    private func collection(for key: SigningKeys.Key) async -> JWTKeyCollection {
        if let existing = collections.withLockedValue({ $0[key.kid] }) { return existing }
        let collection = JWTKeyCollection()
        await collection.add(eddsa: EdDSA.PrivateKey(backing: key.privateKey), kid: JWKIdentifier(string: key.kid))
        collections.withLockedValue { $0[key.kid] = collection }
        return collection
    }
}
