import Foundation
import HTTPTypes
import Hummingbird

/// Verifies `Authorization: Bearer <access token>` when present and puts the identity in the
/// context. A request without one passes through anonymous (routes decide with `require`); a
/// request with a bad one is refused with 401 at once, so a client never mistakes a broken token
/// for being signed out.
public struct AuthenticationMiddleware: RouterMiddleware {
    public typealias Context = ServiceRequestContext
    let verifier: AccessTokenVerifier

    public init(verifier: AccessTokenVerifier) {
        self.verifier = verifier
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let authorization = request.headers[.authorization] else { return try await next(request, context) }
        guard authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else {
            throw ServiceError.unauthorized("the Authorization header must be 'Bearer <access token>'", error: "invalid_request")
        }
        var context = context
        context.identity = try await verifier.verify(String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        return try await next(request, context)
    }
}
