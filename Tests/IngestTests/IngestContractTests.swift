import Foundation
import Hummingbird
import MarqueeAuth
import MarqueeIngest
import MarqueeServiceKit
import MarqueeTestSupport
import Testing

@Suite("Ingest contract")
struct IngestContractTests {
    @Test("/openapi.yaml documents exactly the routes the ingest service serves")
    func openAPIMatchesRoutes() async throws {
        let services = try await IngestServices.open(.sqlite)
        let documented = OpenAPIOperations.documented(in: IngestService.openAPI)
        let routed = Set(services.ingest.router().routes.map { "\($0.method.rawValue) \($0.path.description)" })
        #expect(documented.contains("PATCH /api/ingest/uploads/{id}"))
        #expect(documented.subtracting(routed).isEmpty, "documented but not served: \(documented.subtracting(routed).sorted())")
        #expect(routed.subtracting(documented).isEmpty, "served but not documented: \(routed.subtracting(documented).sorted())")
        await services.auth.close()
        await services.ingest.close()
        try? FileManager.default.removeItem(at: services.data)
    }
}
