import Foundation
import MarqueeTestSupport
import Testing

/// Auth and catalog as separate processes (`marquee auth`, `marquee catalog`), fronted by the
/// io_uring gateway (`marquee origin --service ...`), driven with curl as a player app would.
@Suite("Services behind the gateway")
struct ServicesThroughGatewayTests {
    @Test(
        "A viewer registers, signs in, lists and reads titles; a publisher creates and publishes one; a deny-listed country gets 451 for its media",
        arguments: DatabaseKind.allCases)
    func throughTheGateway(kind: DatabaseKind) throws {
        let authDatabase = try kind.freshURL()
        let catalogDatabase = try kind.freshURL()
        try ServiceProcess.addUser(email: "pub@example.com", role: "publisher", password: "publisher passphrase", database: authDatabase)
        let bcrypt = ["MARQUEE_AUTH_BCRYPT_COST": "10"]
        let auth = try ServiceProcess("auth", ["--database", authDatabase], environment: bcrypt)
        defer { auth.stop() }
        // The gateway reads the catalog's rules with its own service credential.
        let gatewayCredential = try ServiceCredentialFile.make("gateway-credential")
        let catalog = try ServiceProcess(
            "catalog", ["--database", catalogDatabase, "--auth-url", auth.baseURL, "--gateway-credential-file", gatewayCredential.path])
        defer { catalog.stop() }
        let (countries, _) = try GeoFixtures.writtenDatabases()  // 192.0.2.0/24 FR, 198.51.100.0/24 DE
        let root = try Scratch.newDirectory("gateway-root")
        let config = try configFile(
            """
            client:
              trusted_proxies: ["127.0.0.1"]
            geo:
              database: \(countries)
            services:
              auth: \(auth.baseURL)
              catalog: \(catalog.baseURL)
              catalog_credential_file: \(gatewayCredential.path)
            catalog:
              wait_seconds: 5
            """)
        let gateway = try ServerProcess(root: root, configFile: config)
        defer { gateway.stop() }
        func api(_ method: String, _ path: String, token: String? = nil, json: Any? = nil, from address: String = "198.51.100.7") throws
            -> (status: Int, body: [String: Any], raw: CurlResponse)
        {
            try JSONCall.send(method, gateway.url(path), token: token, json: json, headers: ["X-Forwarded-For: \(address)"])
        }

        // The viewer signs up and in through the gateway.
        let registered = try api("POST", "/api/auth/register", json: ["email": "viewer@example.com", "password": "viewer passphrase"])
        #expect(registered.status == 201)
        #expect(registered.body["role"] as? String == "viewer")
        let login = try api("POST", "/api/auth/login", json: ["email": "viewer@example.com", "password": "viewer passphrase"])
        #expect(login.status == 200)
        let viewer = try #require(login.body["access_token"] as? String)
        #expect(try api("GET", "/api/auth/me", token: viewer).body["email"] as? String == "viewer@example.com")
        let jwks = try Curl.fetch(gateway.url("/.well-known/jwks.json"))
        #expect(jwks.status == 200 && jwks.bodyText.contains("Ed25519"))

        // The publisher creates a title denied in France, attaches its package and publishes it.
        let publisherLogin = try api("POST", "/api/auth/login", json: ["email": "pub@example.com", "password": "publisher passphrase"])
        let publisher = try #require(publisherLogin.body["access_token"] as? String)
        #expect(try api("POST", "/api/catalog/titles", token: viewer, json: ["name": "x", "price_per_minute": 1, "currency": "EUR"]).status == 403)
        let created = try api(
            "POST", "/api/catalog/titles", token: publisher,
            json: ["name": "Harbour Lights", "price_per_minute": 4, "currency": "GBP", "geo": ["mode": "deny", "countries": ["FR"]]])
        #expect(created.status == 201)
        let id = try #require(created.body["id"] as? String)
        let folder = root.appendingPathComponent("titles/\(id)/v1")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("#EXTM3U\n".utf8).write(to: folder.appendingPathComponent("master.m3u8"))
        let packaged = try api(
            "PUT", "/api/catalog/titles/\(id)/package", token: publisher,
            json: ["package_version": "v1", "renditions": [["name": "720p", "bandwidth": 3_000_000, "codecs": "avc1.64001f"]]])
        #expect(packaged.status == 200)
        #expect(try api("GET", "/api/catalog/titles/\(id)").status == 404, "not visible before it is published")
        #expect(try api("POST", "/api/catalog/titles/\(id)/publish", token: publisher).body["status"] as? String == "published")

        // The viewer lists and reads it.
        let listed = try api("GET", "/api/catalog/titles?q=harbour", token: viewer)
        #expect((listed.body["items"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
        #expect(try api("GET", "/api/catalog/titles/\(id)", token: viewer).body["name"] as? String == "Harbour Lights")

        // Media: served in Germany once the gateway has the rules; 451 in France.
        let media = "/titles/\(id)/v1/master.m3u8"
        #expect(try waitUntil(timeout: .seconds(15)) { try Curl.fetch(gateway.url(media), ["-H", "X-Forwarded-For: 198.51.100.7"]).status == 200 })
        let france = try Curl.fetch(gateway.url(media), ["-H", "X-Forwarded-For: 192.0.2.7"])
        #expect(france.status == 451)
        #expect(france.bodyText.contains("(FR)"))

        // Withdrawing reaches the gateway too.
        #expect(try api("POST", "/api/catalog/titles/\(id)/withdraw", token: publisher).status == 200)
        #expect(try waitUntil(timeout: .seconds(15)) { try Curl.fetch(gateway.url(media), ["-H", "X-Forwarded-For: 198.51.100.7"]).status == 404 })
    }

    @Test("The catalog's access-rules feed is not reachable through the gateway's /api/ proxy, needs the gateways' credential, and the gateway polls it with that credential")
    func feedIsForGateways() throws {
        let authDatabase = try DatabaseKind.sqlite.freshURL()
        try ServiceProcess.addUser(email: "pub@example.com", role: "publisher", password: "publisher passphrase", database: authDatabase)
        let auth = try ServiceProcess("auth", ["--database", authDatabase], environment: ["MARQUEE_AUTH_BCRYPT_COST": "10"])
        defer { auth.stop() }
        let gatewayCredential = try ServiceCredentialFile.make("gateway-credential")
        let catalog = try ServiceProcess(
            "catalog",
            ["--database", try DatabaseKind.sqlite.freshURL(), "--auth-url", auth.baseURL, "--gateway-credential-file", gatewayCredential.path])
        defer { catalog.stop() }
        let root = try Scratch.newDirectory("gateway-root")
        let gateway = try ServerProcess(
            root: root,
            arguments: [
                "--service", "auth=\(auth.baseURL)", "--service", "catalog=\(catalog.baseURL)", "--catalog-credential-file", gatewayCredential.path,
            ])
        defer { gateway.stop() }
        let secret = try String(contentsOf: gatewayCredential, encoding: .utf8).trimmingCharacters(in: .newlines)

        // Through the gateway, with or without the secret, nothing under /api/ is the feed.
        for path in ["/api/catalog/access-rules", "/api/catalog/internal/access-rules", "/api/catalog/../internal/access-rules"] {
            for headers in [[String](), ["-H", "Authorization: Bearer \(secret)"]] {
                let reply = try Curl.fetch(gateway.url(path), ["--path-as-is"] + headers)
                #expect(reply.status != 200 && !reply.bodyText.contains("\"titles\""), "\(path) through the gateway → \(reply.status) \(reply.bodyText)")
            }
        }
        #expect(try Curl.fetch(gateway.url("/internal/access-rules")).status == 404, "the gateway serves no feed of its own")

        // On the catalog itself: refused without the credential, served with it.
        let anonymous = try Curl.fetch(catalog.url("/internal/access-rules"))
        #expect(anonymous.status == 401)
        let login = try JSONCall.send("POST", auth.url("/api/auth/login"), json: ["email": "pub@example.com", "password": "publisher passphrase"])
        let publisher = try #require(login.body["access_token"] as? String)
        #expect(try JSONCall.send("GET", catalog.url("/internal/access-rules"), token: publisher).status == 403)
        let withSecret = try JSONCall.send("GET", catalog.url("/internal/access-rules"), token: secret)
        #expect(withSecret.status == 200 && withSecret.body["titles"] is [Any])

        // The gateway's own poll carries the credential: once it has the rules, title paths are
        // decided (404 for a title the catalog does not list) instead of 503 while waiting for them.
        #expect(try waitUntil(timeout: .seconds(15)) { try Curl.fetch(gateway.url("/titles/01jd0000000000000000000000/x.m3u8")).status == 404 })
        #expect(!gateway.stderr.text.contains("the catalog answered 401"), "\(gateway.stderr.text)")
    }
}
