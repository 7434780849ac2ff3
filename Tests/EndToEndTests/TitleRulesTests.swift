import Foundation
import Glibc
import MarqueeTestSupport
import Testing

/// Per-title rules the gateway learns from the catalog's long-poll feed.
@Suite("Per-title rules from the catalog")
struct TitleRulesTests {
    /// A root with `titles/<id>/seg.m4s` for each id, and `files/free.txt` outside titles.
    static func root(_ ids: [String]) throws -> URL {
        let root = try Scratch.newDirectory("titles-root")
        for id in ids {
            let folder = root.appendingPathComponent("titles/\(id)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data("segment of \(id)".utf8).write(to: folder.appendingPathComponent("seg.m4s"))
        }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("files"), withIntermediateDirectories: true)
        try Data("free".utf8).write(to: root.appendingPathComponent("files/free.txt"))
        return root
    }

    func fetch(_ server: ServerProcess, _ path: String, from address: String? = nil) throws -> CurlResponse {
        try Curl.fetch(server.url(path), address.map { ["-H", "X-Forwarded-For: \($0)"] } ?? [])
    }

    @Test("Published served, draft 404, future 403, deny-listed country 451; a feed change applies within seconds")
    func rulesFromTheFeed() throws {
        let upstream = try ServiceUpstream()
        try upstream.publishRules(
            """
            {"version":1,"titles":[
              {"id":"pub","status":"published","geo":null,"available_from":null,"available_until":null},
              {"id":"draft","status":"draft","geo":null,"available_from":null,"available_until":null},
              {"id":"future","status":"published","geo":null,"available_from":4102444800,"available_until":null},
              {"id":"past","status":"published","geo":null,"available_from":null,"available_until":1000000000},
              {"id":"nofr","status":"published","geo":{"mode":"deny","countries":["FR"]},"available_from":null,"available_until":null}
            ]}
            """)
        let (countries, _) = try GeoFixtures.writtenDatabases()  // 192.0.2.0/24 FR, 198.51.100.0/24 DE
        let root = try Self.root(["pub", "draft", "future", "past", "nofr", "unlisted"])
        let config = try configFile(
            """
            client:
              trusted_proxies: ["127.0.0.1"]
            geo:
              database: \(countries)
            services:
              catalog: \(upstream.url)
            catalog:
              wait_seconds: 2
            """)
        let server = try ServerProcess(root: root, configFile: config)
        defer { server.stop() }
        #expect(try waitUntil(timeout: .seconds(10)) { try fetch(server, "/titles/pub/seg.m4s").status == 200 })

        let draft = try fetch(server, "/titles/draft/seg.m4s")
        #expect(draft.status == 404 && draft.bodyText == "title not available\n")
        let unlisted = try fetch(server, "/titles/unlisted/seg.m4s")
        #expect(unlisted.status == 404 && unlisted.bodyText == "no such title\n")
        let future = try fetch(server, "/titles/future/seg.m4s")
        #expect(future.status == 403 && future.bodyText == "title not available yet\n")
        let past = try fetch(server, "/titles/past/seg.m4s")
        #expect(past.status == 403 && past.bodyText == "title no longer available\n")
        let fromFrance = try fetch(server, "/titles/nofr/seg.m4s", from: "192.0.2.10")
        #expect(fromFrance.status == 451 && fromFrance.bodyText == "not available in your country (FR)\n")
        #expect(try fetch(server, "/titles/nofr/seg.m4s", from: "198.51.100.10").status == 200)
        #expect(try fetch(server, "/files/free.txt").status == 200, "paths outside titles/ are not concerned")
        #expect(try server.metric(#"marquee_policy_decisions_total{check="title",outcome="deny",reason="geo"}"#) == 1)
        #expect(try server.metric(#"marquee_policy_decisions_total{check="title",outcome="deny",reason="not_published"}"#) == 1)

        // The catalog withdraws "pub" and publishes "draft": the gateway follows without a restart.
        try upstream.publishRules(
            """
            {"version":2,"titles":[
              {"id":"pub","status":"withdrawn","geo":null,"available_from":null,"available_until":null},
              {"id":"draft","status":"published","geo":null,"available_from":null,"available_until":null}
            ]}
            """)
        #expect(try waitUntil(timeout: .seconds(5)) { try fetch(server, "/titles/pub/seg.m4s").status == 404 })
        #expect(try fetch(server, "/titles/draft/seg.m4s").status == 200)
        #expect(server.stderr.text.contains("version 2"), "\(server.stderr.text)")
    }

    @Test("Signed paths and ?token= reach the title rules after the token check; static geo rules apply as well")
    func withTokensAndStaticGeoRules() throws {
        let upstream = try ServiceUpstream()
        try upstream.publishRules(
            """
            {"version":1,"titles":[{"id":"pub","status":"published"},{"id":"draft","status":"draft"}]}
            """)
        let (countries, _) = try GeoFixtures.writtenDatabases()  // 192.0.2.0/24 FR, 198.51.100.0/24 DE
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let root = try Self.root(["pub", "draft"])
        let config = try configFile(
            """
            tokens:
              key_directory: \(keys.path)
              required: true
            client:
              trusted_proxies: ["127.0.0.1"]
            geo:
              database: \(countries)
              rules:
                - "/titles/pub/ deny=DE"
            services:
              catalog: \(upstream.url)
            """)
        let server = try ServerProcess(root: root, configFile: config, arguments: ["--require-token"])
        defer { server.stop() }
        let token = try SignedGateway.sign([
            "--key-id", "k1", "--secret-file", keys.appendingPathComponent("k1.key").path, "--token-only", "--scope", "/titles/", "/x",
        ])
        #expect(try waitUntil(timeout: .seconds(10)) { try fetch(server, "/t/\(token)/titles/pub/seg.m4s").status == 200 })
        #expect(try fetch(server, "/titles/pub/seg.m4s?token=\(token)").status == 200)
        #expect(try fetch(server, "/t/\(token)/titles/draft/seg.m4s").status == 404)
        #expect(try fetch(server, "/titles/draft/seg.m4s?token=\(token)").status == 404)
        #expect(try fetch(server, "/titles/pub/seg.m4s").status == 403, "the token check comes first")
        // The title allows every country; the configured rule still refuses DE.
        let german = try fetch(server, "/t/\(token)/titles/pub/seg.m4s", from: "198.51.100.10")
        #expect(german.status == 451 && german.bodyText == "not available in your country (DE)\n")
        #expect(try fetch(server, "/t/\(token)/titles/pub/seg.m4s", from: "192.0.2.10").status == 200)
    }

    @Test("Until the catalog first answers, title requests get 503 with Retry-After: 1; other paths and /readyz are fine")
    func beforeTheFirstAnswer() throws {
        let deadPort = try RedisServer.freePort()
        let root = try Self.root(["pub"])
        let server = try ServerProcess(root: root, arguments: ["--service", "catalog=http://127.0.0.1:\(deadPort)"])
        defer { server.stop() }
        let waiting = try fetch(server, "/titles/pub/seg.m4s")
        #expect(waiting.status == 503)
        #expect(waiting.header("Retry-After") == "1")
        #expect(try fetch(server, "/files/free.txt").status == 200)
        #expect(try server.admin("/readyz").status == 200)
        #expect(try waitUntil(timeout: .seconds(5)) { server.stderr.text.contains("catalog title rules") }, "the failure is logged")
    }

    @Test("catalog.title_rules: false leaves titles to the files alone")
    func rulesOff() throws {
        let deadPort = try RedisServer.freePort()
        let root = try Self.root(["pub"])
        let server = try ServerProcess(
            root: root, environment: ["MARQUEE_CATALOG_TITLE_RULES": "false"], arguments: ["--service", "catalog=http://127.0.0.1:\(deadPort)"])
        defer { server.stop() }
        #expect(try fetch(server, "/titles/pub/seg.m4s").status == 200)
    }
}
