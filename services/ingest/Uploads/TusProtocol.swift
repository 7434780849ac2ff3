import HTTPTypes
import Hummingbird
import MarqueeServiceKit

/// The tus 1.0 headers (https://tus.io/protocols/resumable-upload).
extension HTTPField.Name {
    static let tusResumable = HTTPField.Name("Tus-Resumable")!
    static let tusVersion = HTTPField.Name("Tus-Version")!
    static let tusExtension = HTTPField.Name("Tus-Extension")!
    static let tusMaxSize = HTTPField.Name("Tus-Max-Size")!
    static let uploadLength = HTTPField.Name("Upload-Length")!
    static let uploadOffset = HTTPField.Name("Upload-Offset")!
    static let uploadMetadata = HTTPField.Name("Upload-Metadata")!
    static let uploadDeferLength = HTTPField.Name("Upload-Defer-Length")!
    static let uploadExpires = HTTPField.Name("Upload-Expires")!
}

/// The one protocol version this server speaks.
let tusVersion = "1.0.0"

/// Speaks the tus core protocol's envelope: every request but OPTIONS must name version 1.0.0
/// (else 412 with the versions we support), and every answer, errors included, says which
/// version it is.
struct TusProtocolMiddleware: RouterMiddleware {
    typealias Context = ServiceRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            if request.method != .options {
                guard request.headers[.tusResumable] == tusVersion else {
                    var error = ServiceError(
                        .preconditionFailed,
                        "Tus-Resumable: this server speaks tus \(tusVersion); send 'Tus-Resumable: \(tusVersion)' (got \(request.headers[.tusResumable].map { "'\($0)'" } ?? "none"))")
                    error.headers[.tusVersion] = tusVersion
                    throw error
                }
            }
            var response = try await next(request, context)
            response.headers[.tusResumable] = tusVersion
            return response
        } catch var error as ServiceError {
            error.headers[.tusResumable] = tusVersion
            throw error
        }
    }
}
