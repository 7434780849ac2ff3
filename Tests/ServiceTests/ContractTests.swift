import Foundation
import HTTPTypes
import Hummingbird
import MarqueeAuth
import MarqueeCatalog
import MarqueeServiceKit
import MarqueeTestSupport
import Testing

@Suite("Service contracts")
struct ContractTests {
    static func routedOperations(_ router: Router<ServiceRequestContext>) -> Set<String> {
        Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
    }

    @Test("Each service's /openapi.yaml documents exactly the routes it serves")
    func openAPIMatchesRoutes() async throws {
        let services = try await Services.open(.sqlite)
        for (router, document) in [(services.auth.router(), AuthService.openAPI), (services.catalog.router(), CatalogService.openAPI)] {
            let documented = OpenAPIOperations.documented(in: document)
            let routed = Self.routedOperations(router)
            #expect(!documented.isEmpty)
            #expect(documented.subtracting(routed).isEmpty, "documented but not served: \(documented.subtracting(routed).sorted())")
            #expect(routed.subtracting(documented).isEmpty, "served but not documented: \(routed.subtracting(documented).sorted())")
        }
        await services.auth.close()
        await services.catalog.close()
    }

    @Test("Hostile bodies on every write route: never a 5xx; every refusal is a problem+json", arguments: DatabaseKind.allCases)
    func hostileBodies(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind)
        try await services.run { auth, catalog in
            let admin = try await services.user(.admin, "root@example.com", client: auth)
            let title = try await catalog.send(.post, "/api/catalog/titles", token: admin, json: ["name": "Seed", "price_per_minute": 1, "currency": "EUR"])
            let id = try #require(title["id"])
            var generator = SeededGenerator(seed: 20_261_122)
            let fragments = [
                "{", "}", "[", "]", "\"", ":", ",", "null", "true", "1e999", "-0", "1.5", "\"name\"", "\"price_per_minute\"", "\"currency\"",
                "\"geo\"", "\"email\"", "\"password\"", "\"refresh_token\"", "\u{0}", "\\u0000", "\u{FEFF}", "💥", "\"EUR\"", "{\"mode\":\"deny\"}",
                String(repeating: "a", count: 300), "\"countries\":[\"G\"]", "\"renditions\":[{}]", "9223372036854775808",
            ]
            let routes: [(Client, HTTPRequest.Method, String)] = [
                (auth, .post, "/api/auth/register"), (auth, .post, "/api/auth/login"), (auth, .post, "/api/auth/refresh"),
                (auth, .post, "/api/auth/logout"), (auth, .post, "/api/auth/password"), (auth, .post, "/api/auth/users"),
                (catalog, .post, "/api/catalog/titles"), (catalog, .patch, "/api/catalog/titles/\(id)"),
                (catalog, .put, "/api/catalog/titles/\(id)/package"),
            ]
            for round in 0..<60 {
                for (client, method, path) in routes {
                    var body = ""
                    for _ in 0..<Int.random(in: 1...12, using: &generator) { body += fragments.randomElement(using: &generator)! }
                    if round % 3 == 0 { body = "{" + body + "}" }
                    let reply = try await client.send(method, path, token: admin, raw: body)
                    #expect(reply.status.code < 500, "\(method) \(path) \(body.debugDescription) → \(reply.status) \(reply.text)")
                    if reply.status.code >= 400 {
                        #expect(reply.headers[.contentType] == "application/problem+json", "\(reply.text)")
                        #expect(!reply.detail.isEmpty)
                    }
                }
            }
            #expect(try await catalog.send(.get, "/api/catalog/titles/\(id)", token: admin).status == .ok)
            #expect(try await auth.send(.get, "/api/auth/me", token: admin).status == .ok)
        }
    }
}
