import Foundation
import JWTKit

/// The claims of a Marquee access token (a JWT, `typ: at+jwt` as RFC 9068 names access tokens,
/// signed EdDSA by the auth service). Short-lived; services verify them locally against the
/// auth service's JWKS.
public struct AccessClaims: JWTPayload, Sendable, Equatable {
    /// The audience every Marquee service checks.
    public static let audience = "marquee"
    /// The JOSE `typ` header access tokens carry; tokens with another type are refused.
    public static let tokenType = "at+jwt"

    public var iss: IssuerClaim
    public var sub: SubjectClaim
    public var aud: AudienceClaim
    public var exp: ExpirationClaim
    public var iat: IssuedAtClaim
    public var jti: IDClaim
    public var role: Role
    public var email: String

    public init(issuer: String, userID: String, role: Role, email: String, issuedAt: Date, lifetime: TimeInterval, tokenID: String) {
        iss = IssuerClaim(value: issuer)
        sub = SubjectClaim(value: userID)
        aud = AudienceClaim(value: [Self.audience])
        exp = ExpirationClaim(value: issuedAt.addingTimeInterval(lifetime))
        iat = IssuedAtClaim(value: issuedAt)
        jti = IDClaim(value: tokenID)
        self.role = role
        self.email = email
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        guard exp.value > Date() else { throw ClaimRefusal(reason: "the token has expired") }
        guard aud.value.contains(Self.audience) else { throw ClaimRefusal(reason: "the token is for another audience") }
    }

    /// A claim that makes a correctly signed token unacceptable.
    struct ClaimRefusal: Error {
        let reason: String
    }
}

/// Who made a request, from a verified access token.
public struct Identity: Sendable, Equatable {
    public let userID: String
    public let email: String
    public let role: Role
    public let tokenID: String
    public let expiresAt: Date

    public init(_ claims: AccessClaims) {
        userID = claims.sub.value
        email = claims.email
        role = claims.role
        tokenID = claims.jti.value
        expiresAt = claims.exp.value
    }
}
