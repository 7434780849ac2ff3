import HTTPTypes
import Foundation
import JWTKit
import NIOConcurrencyHelpers

/// Where the verifier gets the auth service's public keys: a JWKS document.
public protocol JWKSSource: Sendable {
    func fetchJWKS() async throws -> String
}

/// Verifies access tokens against the auth service's JWKS, fetched once and cached. A token
/// whose key id is unknown triggers one refetch (the auth service publishes a new key before it
/// signs with it), at most once per `refetchInterval`, so a flood of forged key ids cannot turn
/// into a flood of fetches.
///
/// The algorithm is pinned: the header must say `EdDSA` and `at+jwt` before any key is consulted,
/// and only Ed25519 keys are ever loaded, so `alg: none`, an HMAC token keyed with the public
/// key, or an RSA/ECDSA key substitution cannot pass.
public final class AccessTokenVerifier: Sendable {
    let source: any JWKSSource
    let refetchInterval: TimeInterval
    let issuer: String?
    private let state = NIOLockedValueBox(State())

    struct State {
        var keys: JWTKeyCollection?
        var kids: Set<String> = []
        var fetchedAt: Date = .distantPast
    }

    public init(source: any JWKSSource, issuer: String? = nil, refetchInterval: TimeInterval = 30) {
        self.source = source
        self.issuer = issuer
        self.refetchInterval = refetchInterval
    }

    /// The identity in `token`, or a 401 saying why not.
    public func verify(_ token: String) async throws(ServiceError) -> Identity {
        let header = try Self.pinnedHeader(token)
        let (keys, known) = state.withLockedValue { ($0.keys, $0.kids.contains(header.kid)) }
        var collection = keys
        if !known {
            collection = try await refetch(ifStaleFor: header.kid) ?? keys
        }
        guard let collection, state.withLockedValue({ $0.kids.contains(header.kid) }) else {
            throw .unauthorized("the token was signed with an unknown key")
        }
        let claims: AccessClaims
        do {
            claims = try await collection.verify(token, as: AccessClaims.self)
        } catch let refusal as AccessClaims.ClaimRefusal {
            throw .unauthorized(refusal.reason)
        } catch {
            throw .unauthorized("the token's signature or claims are invalid")
        }
        if let issuer, claims.iss.value != issuer {
            throw .unauthorized("the token was issued by \(claims.iss.value), not \(issuer)")
        }
        return Identity(claims)
    }

    struct Header: Decodable {
        let alg: String?
        let typ: String?
        let kid: String?
    }

    /// Checks the JOSE header before anything else: EdDSA, at+jwt, a key id.
    static func pinnedHeader(_ token: String) throws(ServiceError) -> (alg: String, kid: String) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Base64URL.decode(parts[0]),
            let header = try? JSONDecoder().decode(Header.self, from: headerData)
        else {
            throw .unauthorized("the token is not a JWT")
        }
        guard header.alg == "EdDSA" else { throw .unauthorized("the token's algorithm must be EdDSA") }
        guard header.typ?.lowercased() == AccessClaims.tokenType || header.typ?.lowercased() == "application/at+jwt" else {
            throw .unauthorized("the token is not an access token (typ must be at+jwt)")
        }
        guard let kid = header.kid, !kid.isEmpty else { throw .unauthorized("the token names no key (kid)") }
        return ("EdDSA", kid)
    }

    /// Fetches the JWKS again unless it was fetched less than `refetchInterval` ago.
    private func refetch(ifStaleFor kid: String) async throws(ServiceError) -> JWTKeyCollection? {
        let due = state.withLockedValue { state -> Bool in
            guard Date().timeIntervalSince(state.fetchedAt) >= refetchInterval || state.keys == nil else { return false }
            state.fetchedAt = Date()
            return true
        }
        guard due else { return nil }
        do {
            let json = try await source.fetchJWKS()
            let (collection, kids) = try await Self.edDSAKeys(fromJWKS: json)
            state.withLockedValue {
                $0.keys = collection
                $0.kids = kids
            }
            return collection
        } catch {
            state.withLockedValue { $0.fetchedAt = .distantPast }
            throw ServiceError(.serviceUnavailable, "cannot reach the auth service's keys to check the token: \(error)")
        }
    }

    /// Only OKP/Ed25519 keys with a kid are loaded; anything else in the set is ignored.
    static func edDSAKeys(fromJWKS json: String) async throws -> (JWTKeyCollection, Set<String>) {
        struct Set_: Decodable { let keys: [Key] }
        struct Key: Decodable {
            let kty: String?
            let crv: String?
            let x: String?
            let kid: String?
        }
        let document = try JSONDecoder().decode(Set_.self, from: Data(json.utf8))
        let collection = JWTKeyCollection()
        var kids: Set<String> = []
        for key in document.keys where key.kty == "OKP" && key.crv == "Ed25519" {
            guard let x = key.x, let kid = key.kid else { continue }
            let publicKey = try EdDSA.PublicKey(x: x, curve: .ed25519)
            await collection.add(eddsa: publicKey, kid: JWKIdentifier(string: kid))
            kids.insert(kid)
        }
        return (collection, kids)
    }
}

/// Base64url without padding, as JOSE uses it.
public enum Base64URL {
    public static func decode(_ text: some StringProtocol) -> Data? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !s.contains("=") else { return nil }
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s)
    }

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
