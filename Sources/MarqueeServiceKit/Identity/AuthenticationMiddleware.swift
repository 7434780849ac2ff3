import Foundation
import HTTPTypes
import Hummingbird

/// Verifies `Authorization: Bearer <access token>` when present and puts the identity in the
/// context. A request without one passes through anonymous (routes decide with `require`); a
/// request with a bad one is refused with 401 at once, so a client never mistakes a broken token
/// for being signed out.
///
/// A bearer value that is one of `credentials` (compared in constant time with each of them) is a
/// service, not a user: the context gets its `ServiceCaller` and no identity.
public struct AuthenticationMiddleware: RouterMiddleware {
    public typealias Context = ServiceRequestContext
    let verifier: AccessTokenVerifier
    let credentials: [ServiceCredential]

    public init(verifier: AccessTokenVerifier, credentials: [ServiceCredential] = []) {
        self.verifier = verifier
        self.credentials = credentials
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let authorization = request.headers[.authorization] else { return try await next(request, context) }
        guard authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else {
            throw ServiceError.unauthorized("the Authorization header must be 'Bearer <access token>'", error: "invalid_request")
        }
        var context = context
        let token = authorization.dropFirst(7).trimmingCharacters(in: .whitespaces)
        // Every credential is compared, so the time taken does not say which one came close.
        var caller: ServiceCaller?
        for credential in credentials where credential.matches(token[...]) {
            caller = ServiceCaller(holder: credential.holder, grant: credential.grant)
        }
        if let caller {
            context.serviceCaller = caller
        } else {
            context.identity = try await verifier.verify(token)
        }
        return try await next(request, context)
    }
}
