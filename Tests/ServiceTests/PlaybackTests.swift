import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MarqueeAuth
import MarqueeHTTP
import MarqueePlayback
import MarqueePolicy
import MarqueeServiceKit
import MarqueeTestSupport
import MarqueeTokens
import Testing

/// `POST /api/playback/sessions`: the playback service asks a real catalog (over loopback HTTP,
/// with the viewer's token) and decides with the gateways' own rule function; its URLs verify with
/// the gateways' token verifier, scoped to the package version and carrying the session.
@Suite("Playback sessions")
struct PlaybackSessionTests {
    static let key = URLTokenKey(id: "k1", secret: Array("0123456789abcdef0123456789abcdef".utf8))

    /// The real GeoLite2 City database (2.2.2.2 is FR, 5.9.0.1 DE, 8.8.8.8 US).
    static func geoLite2() throws -> String {
        let python = PythonEnvironment.packageRoot.appendingPathComponent(".build/python/bin/python").path
        let result = try Subprocess.run(python, ["-c", "import geolite2; print(geolite2.geolite2.filename)"], separateErrors: true)
        guard result.succeeded else { throw TestEnvironmentError("no GeoLite2 database: run scripts/install-deps test") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Auth, catalog and playback on `kind`, each served over loopback; `body` gets the three clients.
    static func withPlayback(
        _ kind: DatabaseKind, configure: @escaping @Sendable (inout PlaybackSettings) -> Void = { _ in },
        _ body: @escaping @Sendable (Services, Client, Client, Client) async throws -> Void
    ) async throws {
        let services = try await Services.open(kind)
        let geo = try geoLite2()
        try await services.run { auth, catalog in
            let port = try #require(catalog.client.port)
            var settings = PlaybackSettings()
            settings.database = try kind.freshURL()
            settings.catalogURL = "http://127.0.0.1:\(port)"
            settings.tokenKey = key
            settings.geoDatabase = geo
            settings.publicURL = "http://cdn.example.test:8080/"
            configure(&settings)
            let playback = try await PlaybackService.open(settings, jwks: services.auth.jwksSource)
            do {
                try await Application(router: playback.router()).test(.live) { client in
                    try await body(services, auth, catalog, Client(client))
                }
            } catch {
                await playback.close()
                throw error
            }
            await playback.close()
        }
    }

    /// A published title with a package; `extra` adds fields (geo, window).
    static func publishedTitle(_ catalog: Client, publisher: String, extra: [String: Any] = [:], publish: Bool = true) async throws -> String {
        var body: [String: Any] = ["name": "Test card", "price_per_minute": 2, "currency": "EUR"]
        body.merge(extra) { $1 }
        let created = try await catalog.send(.post, "/api/catalog/titles", token: publisher, json: body)
        let id = try #require(created["id"], "create failed: \(created.text)")
        let package = try await catalog.send(
            .put, "/api/catalog/titles/\(id)/package", token: publisher,
            json: [
                "package_version": "v7", "duration_seconds": 600,
                "renditions": [["name": "720p", "width": 1280, "height": 720, "bandwidth": 3_000_000, "codecs": "avc1.64001f,mp4a.40.2"]],
            ])
        #expect(package.status == .ok, "package: \(package.text)")
        if publish {
            let published = try await catalog.send(.post, "/api/catalog/titles/\(id)/publish", token: publisher)
            #expect(published.status == .ok, "publish: \(published.text)")
        }
        return id
    }

    static func start(_ playback: Client, _ token: String?, _ titleID: String, from address: String = "5.9.0.1") async throws -> Client.Reply {
        var headers = HTTPFields()
        headers[HTTPField.Name("X-Forwarded-For")!] = address
        return try await playback.send(.post, "/api/playback/sessions", token: token, json: ["title_id": titleID], headers: headers)
    }

    /// What the gateway would decide for `url` (path mode), from `client`.
    static func gatewayCheck(_ url: String, client: String = "5.9.0.1", now: Int64 = Int64(Date().timeIntervalSince1970)) throws -> TokenCheck {
        let afterHost = String(url.dropFirst("http://cdn.example.test:8080".count))
        #expect(afterHost.hasPrefix("/t/"))
        let rest = afterHost.dropFirst(3)
        let slash = try #require(rest.firstIndex(of: "/"))
        let token = Array(rest[..<slash].utf8)
        let relative = Array(rest[rest.index(after: slash)...].utf8)
        let keys = try TokenKeyRing([(key.id, key.secret)])
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 8)
        defer { scratch.deallocate() }
        return token.withUnsafeBytes { t in
            relative.withUnsafeBytes { p in
                TokenVerifier.verify(t, path: p, client: IPAddress(client)!, nowSeconds: now, keys: keys, scratch: scratch)
            }
        }
    }

    @Test("A viewer gets signed URLs scoped to the package version, carrying the session, valid for the title plus the margin", arguments: DatabaseKind.allCases)
    func startsASession(kind: DatabaseKind) async throws {
        try await Self.withPlayback(kind) { services, auth, catalog, playback in
            let publisher = try await services.user(.publisher, "publisher@example.com", client: auth)
            let viewer = try await auth.signUp("viewer@example.com").access
            let id = try await Self.publishedTitle(catalog, publisher: publisher)

            let started = try await Self.start(playback, viewer, id)
            #expect(started.status == .created, "\(started.text)")
            #expect(started.headers[.cacheControl] == "no-store")
            let json = started.json
            let session = try #require(json["id"] as? String)
            #expect(json["package_version"] as? String == "v7")
            #expect(json["country"] as? String == "DE")
            let hls = try #require(json["hls_url"] as? String)
            #expect(hls.hasPrefix("http://cdn.example.test:8080/t/v1."))
            #expect(hls.hasSuffix("/titles/\(id)/v7/master.m3u8"))
            for field in ["dash_url": "manifest.mpd", "poster_url": "poster.jpg", "thumbnails_url": "thumbnails.vtt"] {
                #expect((json[field.key] as? String)?.hasSuffix("/titles/\(id)/v7/\(field.value)") == true)
            }
            // The gateway's verifier accepts it for this version's files, with this session...
            guard case .granted = try Self.gatewayCheck(hls) else {
                Issue.record("the gateway would refuse the playlist URL")
                return
            }
            // ...and refuses the same token on another version or another title.
            let otherVersion = hls.replacingOccurrences(of: "/v7/master.m3u8", with: "/v8/master.m3u8")
            guard case .refused = try Self.gatewayCheck(otherVersion) else {
                Issue.record("the token covers another package version")
                return
            }
            // Valid for 600 s of title + 4 h, not more.
            let expires = try #require((json["expires_at"] as? String).flatMap(parseRFC3339)) / 1000
            let now = Int64(Date().timeIntervalSince1970)
            #expect(abs(expires - (now + 600 + 4 * 3600)) <= 5)
            guard case .refused = try Self.gatewayCheck(hls, now: expires + 1) else {
                Issue.record("the token outlives expires_at")
                return
            }
            #expect(hls.contains(session) == false)  // the session travels inside the token, not beside it

            // The session is recorded and readable by its viewer, not by another.
            let mine = try await playback.send(.get, "/api/playback/sessions/\(session)", token: viewer)
            #expect(mine.status == .ok)
            #expect(mine["title_id"] == id)
            let someoneElse = try await auth.signUp("other@example.com").access
            #expect(try await playback.send(.get, "/api/playback/sessions/\(session)", token: someoneElse).status == .notFound)
            let list = try await playback.send(.get, "/api/playback/sessions", token: viewer)
            #expect(list.items.count == 1)
            #expect(try await playback.send(.get, "/api/playback/sessions", token: someoneElse).items.isEmpty)
        }
    }

    @Test("Refusals: no token 401, unknown 404, unpublished 409, outside the window 403, denied country 451", arguments: DatabaseKind.allCases)
    func refusals(kind: DatabaseKind) async throws {
        try await Self.withPlayback(kind) { services, auth, catalog, playback in
            let publisher = try await services.user(.publisher, "publisher@example.com", client: auth)
            let viewer = try await auth.signUp("viewer@example.com").access

            #expect(try await Self.start(playback, nil, "01m81q52cfxsm97j6brmh89je4").status == .unauthorized)
            let unknown = try await Self.start(playback, viewer, "01m81q52cfxsm97j6brmh89je4")
            #expect(unknown.status == .notFound)
            #expect(unknown.headers[.contentType] == "application/problem+json")

            // Not published: hidden from a viewer (404, as the catalog does), a conflict for its publisher.
            let draft = try await Self.publishedTitle(catalog, publisher: publisher, publish: false)
            #expect(try await Self.start(playback, viewer, draft).status == .notFound)
            let own = try await Self.start(playback, publisher, draft)
            #expect(own.status == .conflict)
            #expect(own.detail.contains("not published"))

            // A window that opens tomorrow: the catalog hides it from viewers; its publisher hears why.
            let tomorrow = rfc3339(milliseconds: unixMilliseconds() + 86_400_000)
            let later = try await Self.publishedTitle(catalog, publisher: publisher, extra: ["available_from": tomorrow])
            #expect(try await Self.start(playback, viewer, later).status == .notFound)
            let early = try await Self.start(playback, publisher, later)
            #expect(early.status == .forbidden)
            #expect(early.detail.contains("not available yet"))

            // Geo, decided on the client behind the trusted proxy (X-Forwarded-For).
            let noFrance = try await Self.publishedTitle(catalog, publisher: publisher, extra: ["geo": ["mode": "deny", "countries": ["FR"]]])
            let fromFrance = try await Self.start(playback, viewer, noFrance, from: "2.2.2.2")
            #expect(fromFrance.status == .unavailableForLegalReasons)
            #expect(fromFrance.detail.contains("FR"))
            #expect(try await Self.start(playback, viewer, noFrance, from: "5.9.0.1").status == .created)
            let usOnly = try await Self.publishedTitle(catalog, publisher: publisher, extra: ["geo": ["mode": "allow", "countries": ["US"]]])
            #expect(try await Self.start(playback, viewer, usOnly, from: "8.8.8.8").status == .created)
            #expect(try await Self.start(playback, viewer, usOnly, from: "5.9.0.1").status == .unavailableForLegalReasons)

            // Bad bodies name the field.
            let bad = try await playback.send(.post, "/api/playback/sessions", token: viewer, json: ["title_id": "../etc"])
            #expect(bad.status == .unprocessableContent)
            #expect(bad.text.contains("title_id"))
            let missing = try await playback.send(.post, "/api/playback/sessions", token: viewer, json: [:])
            #expect(missing.status == .unprocessableContent)
        }
    }

    @Test("Each viewer's URLs point at their region's edge: a country first, then its continent, else the default")
    func nearestEdge() async throws {
        try await Self.withPlayback(.sqlite, configure: { settings in
            settings.regions = try! PlaybackRegions(entries: [
                "DE=http://edge-de.example.test:8080", "@EU=https://edge-eu.example.test/", "US,CA=http://edge-us.example.test",
            ])
        }) { services, auth, catalog, playback in
            let publisher = try await services.user(.publisher, "publisher@example.com", client: auth)
            let viewer = try await auth.signUp("viewer@example.com").access
            let id = try await Self.publishedTitle(catalog, publisher: publisher)
            let expected = [
                "5.9.0.1": "http://edge-de.example.test:8080/t/",  // DE: its own entry beats Europe's
                "2.2.2.2": "https://edge-eu.example.test/t/",  // FR: Europe
                "8.8.8.8": "http://edge-us.example.test/t/",  // US
                "10.1.2.3": "http://cdn.example.test:8080/t/",  // private: no place, the default
            ]
            for (address, prefix) in expected {
                let started = try await Self.start(playback, viewer, id, from: address)
                #expect(started.status == .created, "\(started.text)")
                let hls = try #require(started["hls_url"])
                #expect(hls.hasPrefix(prefix), "\(address) got \(hls)")
                let dash = try #require(started["dash_url"])
                #expect(dash.hasPrefix(prefix), "\(address) got \(dash)")
            }
        }
    }

    @Test("playback.regions entries that cannot work are refused, naming the entry and the fault")
    func badRegions() {
        let cases: [([String], String)] = [
            (["DE"], "CODES=URL"),
            (["DE=ftp://x"], "http(s)://HOST"),
            (["DE=http://x/path"], "no path"),
            (["@XX=http://x"], "not a continent"),
            (["DEU=http://x"], "two-letter"),
            (["DE=http://a", "DE=http://b"], "two regions"),
            (["@EU=http://a", "@EU=http://b"], "two regions"),
            ([" =http://x"], "not a two-letter country code"),
            (["=http://x"], "names no country"),
        ]
        for (entries, expected) in cases {
            do {
                _ = try PlaybackRegions(entries: entries)
                Issue.record("\(entries) was accepted")
            } catch {
                #expect(error.description.contains(expected), "\(entries): \(error)")
            }
        }
        #expect((try? PlaybackRegions(entries: ["de, fr ,@eu = http://edge.example/"]))?.base(country: CountryCode("FR")!, continent: .unknown) == "http://edge.example")
        let joined = try? PlaybackRegions(entries: ["DE+AT=http://dach.example", "@EU=http://eu.example"])
        #expect(joined?.base(country: CountryCode("AT")!, continent: CountryCode("EU")!) == "http://dach.example")
        #expect(joined?.base(country: CountryCode("IT")!, continent: CountryCode("EU")!) == "http://eu.example")
        #expect(joined?.base(country: CountryCode("JP")!, continent: CountryCode("AS")!) == nil)
    }

    @Test("Hostile bodies never make a 5xx; every refusal is a problem+json")
    func hostileBodies() async throws {
        try await Self.withPlayback(.sqlite) { services, auth, catalog, playback in
            let viewer = try await auth.signUp("viewer@example.com").access
            var generator = SeededGenerator(seed: 20_261_122)
            let fragments = [
                "{", "}", "[", "]", "\"", ":", ",", "null", "true", "1e999", "-0", "\"title_id\"", "\u{0}", "\\u0000", "💥",
                "\"01m81q52cfxsm97j6brmh89je4\"", String(repeating: "a", count: 300), "\"../..\"", "\"a/b\"", "\"%2F\"",
            ]
            for _ in 0..<200 {
                let body = (0..<Int.random(in: 1...8, using: &generator)).map { _ in fragments.randomElement(using: &generator)! }.joined()
                let reply = try await playback.send(.post, "/api/playback/sessions", token: viewer, raw: body)
                #expect(reply.status.code < 500, "\(body) → \(reply.status) \(reply.text)")
                if reply.status.code >= 400 {
                    #expect(reply.headers[.contentType] == "application/problem+json", "\(body) → \(reply.text)")
                    #expect(!reply.detail.isEmpty)
                }
            }
        }
    }

    @Test("/openapi.yaml documents exactly the routes it serves")
    func contract() async throws {
        var settings = PlaybackSettings()
        settings.database = try DatabaseKind.sqlite.freshURL()
        settings.tokenKey = Self.key
        let playback = try await PlaybackService.open(settings, jwks: LocalTestJWKS())
        let documented = OpenAPIOperations.documented(in: PlaybackService.openAPI)
        let routed = ContractTests.routedOperations(playback.router())
        #expect(!documented.isEmpty)
        #expect(documented == routed, "documented \(documented.sorted()) vs served \(routed.sorted())")
        await playback.close()
    }

    @Test("Without a URL token key the service refuses to start, saying which setting")
    func needsAKey() async throws {
        var settings = PlaybackSettings()
        settings.database = try DatabaseKind.sqlite.freshURL()
        await #expect(throws: ServiceError.self) { try await PlaybackService.open(settings, jwks: LocalTestJWKS()) }
    }
}

/// A JWKS with no keys, for tests that never verify a token.
struct LocalTestJWKS: JWKSSource {
    func fetchJWKS() async throws -> String { #"{"keys":[]}"# }
}
