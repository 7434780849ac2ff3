import Foundation
import MarqueeTestSupport
import Testing

/// schemathesis (PyPI) generates requests from each service's own `/openapi.yaml`, valid and
/// hostile, and checks every answer: no 5xx, every status documented, content types and bodies
/// as the schema says. It runs as an admin, so every operation is reachable.
@Suite("Services against their OpenAPI documents (schemathesis)")
struct SchemathesisTests {
    @Test("No 5xx and no response that breaks the schema, on auth, catalog, playback, billing and analytics")
    func services() throws {
        let database = try DatabaseKind.sqlite.freshURL()
        try ServiceProcess.addUser(email: "admin@example.com", role: "admin", password: "admin passphrase", database: database)
        let auth = try ServiceProcess("auth", ["--database", database], environment: ["MARQUEE_AUTH_BCRYPT_COST": "10"])
        defer { auth.stop() }
        let catalog = try ServiceProcess("catalog", ["--database", try DatabaseKind.sqlite.freshURL(), "--auth-url", auth.baseURL])
        defer { catalog.stop() }
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let playback = try ServiceProcess(
            "playback",
            ["--database", try DatabaseKind.sqlite.freshURL(), "--auth-url", auth.baseURL, "--catalog-url", catalog.baseURL,
             "--token-key", "k1:" + keys.appendingPathComponent("k1.key").path])
        defer { playback.stop() }
        let billing = try ServiceProcess("billing", ["--database", try DatabaseKind.sqlite.freshURL(), "--auth-url", auth.baseURL])
        defer { billing.stop() }
        let analytics = try ServiceProcess("analytics", ["--database", try DatabaseKind.sqlite.freshURL(), "--auth-url", auth.baseURL])
        defer { analytics.stop() }
        let login = try JSONCall.send("POST", auth.url("/api/auth/login"), json: ["email": "admin@example.com", "password": "admin passphrase"])
        let token = try #require(login.body["access_token"] as? String)
        let schemathesis = try PythonEnvironment.python().deletingLastPathComponent().appendingPathComponent("schemathesis").path

        for service in [auth, catalog, playback, billing, analytics] {
            let result = try Tool.run(
                schemathesis,
                [
                    "run", service.url("/openapi.yaml"), "--url", service.baseURL, "-H", "Authorization: Bearer \(token)",
                    "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                    "--max-examples", "30", "--seed", "20261122", "--no-color",
                ], timeout: .seconds(300))
            #expect(result.termination == .exited(0), "schemathesis against \(service.baseURL):\n\(result.stdoutText.suffix(4000))")
        }
    }
}
