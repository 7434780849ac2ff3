import HTTPTypes
import Hummingbird
import Logging

/// Makes every error an `application/problem+json` answer: Hummingbird's own (404 for an unknown
/// route, 413 for a body over the limit) keep their status; anything unexpected is logged in full
/// and answered 500 without internals. A uniqueness conflict the code did not anticipate is 409.
public struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ServiceError {
            throw error
        } catch let error as HTTPError {
            throw ServiceError(error.status, error.body ?? defaultDetail(error.status, request), headers: error.headers)
        } catch let error as any HTTPResponseError {
            throw ServiceError(error.status, defaultDetail(error.status, request))
        } catch DatabaseError.uniqueViolation {
            throw ServiceError.conflict("a resource with the same unique value already exists")
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            throw ServiceError(.internalServerError, "the server could not complete the request; it has been logged")
        }
    }

    func defaultDetail(_ status: HTTPResponse.Status, _ request: Request) -> String {
        switch status {
        case .notFound: "no route for \(request.method) \(request.uri.path)"
        case .methodNotAllowed: "\(request.method) is not allowed on \(request.uri.path)"
        case .contentTooLarge: "the request body is too large"
        default: status.reasonPhrase
        }
    }
}
