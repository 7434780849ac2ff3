import HTTPTypes
import Hummingbird
import NIOCore

/// The request context every Marquee service uses: who is asking (from the bearer token, when
/// one was sent) and from which address.
public struct ServiceRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `AuthenticationMiddleware` when the request carried a valid access token.
    public var identity: Identity?
    /// Set by `AuthenticationMiddleware` when the request carried a service credential instead.
    public var serviceCaller: ServiceCaller?
    /// The TCP peer (the gateway, when the request came through it).
    public let peer: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peer = source.channel.remoteAddress?.ipAddress
    }

    /// The maximum request body the services decode (`decodeJSON` applies its own, smaller, limit).
    public var maxUploadSize: Int { 1 << 20 }

    /// The signed-in user, or 401.
    public func requireIdentity() throws(ServiceError) -> Identity {
        if identity == nil, let serviceCaller {
            throw .forbidden("the \(serviceCaller.holder) service credential grants \(serviceCaller.grant.rawValue) and nothing else")
        }
        guard let identity else { throw .unauthorized("sign in first: send Authorization: Bearer <access token>", error: "invalid_request") }
        return identity
    }

    /// The signed-in user if their role is at least `role`; 401 when nobody is signed in, 403
    /// when the role is too low.
    @discardableResult
    public func require(_ role: Role) throws(ServiceError) -> Identity {
        let identity = try requireIdentity()
        guard identity.role >= role else { throw .forbidden("this needs the \(role.rawValue) role; you are a \(identity.role.rawValue)") }
        return identity
    }

    /// The service credential for `grant`, or else a signed-in user with at least `role` (nil
    /// identity when a service called). 401 when neither came, 403 for another credential or a
    /// lower role.
    @discardableResult
    public func require(_ grant: ServiceGrant, or role: Role) throws(ServiceError) -> Identity? {
        if let serviceCaller, serviceCaller.grant == grant { return nil }
        return try require(role)
    }
}
