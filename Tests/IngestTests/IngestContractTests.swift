import Foundation
import Hummingbird
import MarqueeAuth
import MarqueeIngest
import MarqueeServiceKit
import MarqueeTestSupport
import Testing

@Suite("Ingest contract")
struct IngestContractTests {
    /// `METHOD /path` pairs under `paths:` of an OpenAPI document, HEAD and OPTIONS included.
    static func documentedOperations(_ yaml: String) -> Set<String> {
        var operations: Set<String> = []
        var inPaths = false
        var path: String?
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" {
                inPaths = true
                continue
            }
            guard inPaths else { continue }
            if !line.hasPrefix(" ") && !line.isEmpty { break }
            if line.hasPrefix("  /") && line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     ") {
                let key = String(line.trimmingCharacters(in: .whitespaces).dropLast())
                if ["get", "post", "put", "patch", "delete", "head", "options"].contains(key) { operations.insert("\(key.uppercased()) \(path)") }
            }
        }
        return operations
    }

    @Test("/openapi.yaml documents exactly the routes the ingest service serves")
    func openAPIMatchesRoutes() async throws {
        let services = try await IngestServices.open(.sqlite)
        let documented = Self.documentedOperations(IngestService.openAPI)
        let routed = Set(services.ingest.router().routes.map { "\($0.method.rawValue) \($0.path.description)" })
        #expect(documented.contains("PATCH /api/ingest/uploads/{id}"))
        #expect(documented.subtracting(routed).isEmpty, "documented but not served: \(documented.subtracting(routed).sorted())")
        #expect(routed.subtracting(documented).isEmpty, "served but not documented: \(routed.subtracting(documented).sorted())")
        await services.auth.close()
        await services.ingest.close()
        try? FileManager.default.removeItem(at: services.data)
    }
}
