import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// What every service answers besides its own API: `/healthz` (the process is up), `/readyz`
/// (its database answers), `/metrics` (Prometheus text), `/openapi.yaml` (its contract).
public enum ServiceRouter {
    /// A router with the shared middleware (problem+json errors, request metrics, optional bearer
    /// authentication) and the shared routes. The service adds its own routes to it.
    /// `credentials` are the service credentials the service accepts besides users' tokens.
    public static func make(
        name: String, openAPI: String, database: any Database, verifier: AccessTokenVerifier?, credentials: [ServiceCredential] = []
    ) -> Router<ServiceRequestContext> {
        ServiceMetrics.bootstrap()
        let router = Router(context: ServiceRequestContext.self)
        router.add(middleware: ProblemMiddleware())
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: LogRequestsMiddleware(.debug))
        if let verifier { router.add(middleware: AuthenticationMiddleware(verifier: verifier, credentials: credentials)) }

        router.get("/healthz") { _, _ in
            try jsonResponse(["status": "ok", "service": name])
        }
        router.get("/readyz") { _, _ in
            do {
                _ = try await database.query("SELECT 1 AS ok", [])
                return try jsonResponse(["status": "ready", "service": name])
            } catch {
                throw ServiceError(.serviceUnavailable, "the database does not answer: \(error)")
            }
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: ServiceMetrics.render())))
        }
        let document = ByteBuffer(string: openAPI)
        router.get("/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: document))
        }
        return router
    }

    /// Reads a resource file shipped with a service module.
    public static func resource(_ name: String, in bundle: Bundle) -> String {
        guard let url = bundle.url(forResource: name, withExtension: nil), let text = try? String(contentsOf: url, encoding: .utf8) else {
            fatalError("resource \(name) is missing from the \(bundle.bundlePath) bundle")
        }
        return text
    }
}
