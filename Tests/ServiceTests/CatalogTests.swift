import AsyncHTTPClient
import Foundation
import NIOHTTP1
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import MarqueeAuth
import MarqueeCatalog
import MarqueeServiceKit
import MarqueeTestSupport
import Testing

@Suite("Catalog service (SQLite and PostgreSQL)")
struct CatalogTests {
    static var movie: [String: Any] { [
        "name": "The Long Voyage", "description": "A ship crosses the Atlantic in winter.", "genres": ["Drama", "Adventure"],
        "cast": ["Ada Lovelace", "Grace Hopper"], "year": 1987, "price_per_minute": 5, "currency": "EUR",
    ] }

    @Test("Publishers create drafts; validation names the field; viewers never see drafts", arguments: DatabaseKind.allCases)
    func createAndValidate(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind)
        try await services.run { auth, catalog in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let viewer = try await auth.signUp("view@example.com").access
            #expect(try await catalog.send(.post, "/api/catalog/titles", json: Self.movie).status == .unauthorized)
            #expect(try await catalog.send(.post, "/api/catalog/titles", token: viewer, json: Self.movie).status == .forbidden)

            let created = try await catalog.send(.post, "/api/catalog/titles", token: publisher, json: Self.movie)
            #expect(created.status == .created)
            #expect(created["status"] == "draft")
            #expect(created.json["genres"] as? [String] == ["drama", "adventure"])
            let id = try #require(created["id"])
            #expect(created.headers[.location] == "/api/catalog/titles/\(id)")

            let cases: [([String: Any], String)] = [
                (["name": "x", "price_per_minute": 5], "currency"),
                (["name": "x", "price_per_minute": 5, "currency": "EUO"], "currency"),
                (["name": "x", "price_per_minute": -1, "currency": "EUR"], "price_per_minute"),
                (["name": "x", "price_per_minute": 1.5, "currency": "EUR"], "price_per_minute"),
                (["name": "", "price_per_minute": 5, "currency": "EUR"], "name"),
                (["name": "x", "price_per_minute": 5, "currency": "EUR", "geo": ["mode": "deny", "countries": ["gb"]]], "geo.countries[0]"),
                (["name": "x", "price_per_minute": 5, "currency": "EUR", "geo": ["mode": "block", "countries": ["GB"]]], "geo.mode"),
                (["name": "x", "price_per_minute": 5, "currency": "EUR", "available_from": "tomorrow"], "available_from"),
                (
                    ["name": "x", "price_per_minute": 5, "currency": "EUR", "available_from": "2027-01-02T00:00:00Z", "available_until": "2027-01-01T00:00:00Z"],
                    "available_until"
                ),
                (["name": "x", "price_per_minute": 5, "currency": "EUR", "year": 1492], "year"),
                (["name": "x", "price_per_minute": 5, "currency": "EUR", "genres": [String](repeating: "a", count: 11)], "genres"),
            ]
            for (body, field) in cases {
                let reply = try await catalog.send(.post, "/api/catalog/titles", token: publisher, json: body)
                #expect(reply.status == .unprocessableContent, "\(body)")
                #expect((reply.json["errors"] as? [[String: String]])?.first?["field"] == field, "\(reply.text)")
                #expect(reply.headers[.contentType] == "application/problem+json")
            }

            #expect(try await catalog.send(.get, "/api/catalog/titles").items.isEmpty)
            #expect(try await catalog.send(.get, "/api/catalog/titles/\(id)").status == .notFound)
            #expect(try await catalog.send(.get, "/api/catalog/titles?status=draft", token: viewer).status == .forbidden)
            let drafts = try await catalog.send(.get, "/api/catalog/titles?status=draft", token: publisher)
            #expect(drafts.items.map { $0["id"] as? String } == [id])
            #expect(try await catalog.send(.get, "/api/catalog/titles/\(id)", token: publisher).status == .ok)
        }
    }

    @Test("Lifecycle: package → ready → published → withdrawn; conflicts are 409", arguments: DatabaseKind.allCases)
    func lifecycle(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind)
        try await services.run { auth, catalog in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let id = try #require(try await catalog.send(.post, "/api/catalog/titles", token: publisher, json: Self.movie)["id"])
            let early = try await catalog.send(.post, "/api/catalog/titles/\(id)/publish", token: publisher)
            #expect(early.status == .conflict)
            #expect(early.detail.contains("ingest"))
            let package: [String: Any] = [
                "package_version": "v1",
                "renditions": [["name": "720p", "width": 1280, "height": 720, "bandwidth": 3_000_000, "codecs": "avc1.64001f,mp4a.40.2"]],
                "duration_seconds": 60,
            ]
            #expect(try await catalog.send(.put, "/api/catalog/titles/\(id)/package", token: publisher, json: ["package_version": "../x", "renditions": []]).status == .unprocessableContent)
            let ready = try await catalog.send(.put, "/api/catalog/titles/\(id)/package", token: publisher, json: package)
            #expect(ready["status"] == "ready")
            #expect((ready.json["package"] as? [String: Any])?["version"] as? String == "v1")
            let published = try await catalog.send(.post, "/api/catalog/titles/\(id)/publish", token: publisher)
            #expect(published["status"] == "published")
            #expect(try await catalog.send(.get, "/api/catalog/titles").items.count == 1)
            #expect(try await catalog.send(.get, "/api/catalog/titles/\(id)").status == .ok)
            #expect(try await catalog.send(.delete, "/api/catalog/titles/\(id)", token: publisher).status == .conflict)
            #expect(try await catalog.send(.post, "/api/catalog/titles/\(id)/withdraw", token: publisher)["status"] == "withdrawn")
            #expect(try await catalog.send(.get, "/api/catalog/titles/\(id)").status == .notFound)
            #expect(try await catalog.send(.delete, "/api/catalog/titles/\(id)", token: publisher).status == .noContent)
            #expect(try await catalog.send(.get, "/api/catalog/titles/\(id)", token: publisher).status == .notFound)
        }
    }

    @Test("PATCH merges (null clears), If-Match guards against lost updates", arguments: DatabaseKind.allCases)
    func patch(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind)
        try await services.run { auth, catalog in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            var body = Self.movie
            body["geo"] = ["mode": "deny", "countries": ["GB", "FR", "GB"]]
            let created = try await catalog.send(.post, "/api/catalog/titles", token: publisher, json: body)
            let id = try #require(created["id"])
            #expect((created.json["geo"] as? [String: Any])?["countries"] as? [String] == ["FR", "GB"])
            let etag = try #require(created.headers[.eTag])
            let renamed = try await catalog.send(
                .patch, "/api/catalog/titles/\(id)", token: publisher, json: ["name": "The Longer Voyage", "geo": NSNull()],
                headers: [.ifMatch: etag])
            #expect(renamed.status == .ok)
            #expect(renamed["name"] == "The Longer Voyage")
            #expect(renamed.json["geo"] is NSNull)
            #expect(renamed.json["year"] as? Int == 1987, "fields not sent are kept")
            let stale = try await catalog.send(.patch, "/api/catalog/titles/\(id)", token: publisher, json: ["name": "Lost"], headers: [.ifMatch: etag])
            #expect(stale.status == .preconditionFailed)
            let clearName = try await catalog.send(.patch, "/api/catalog/titles/\(id)", token: publisher, json: ["name": NSNull()])
            #expect(clearName.status == .unprocessableContent)
            #expect(try await catalog.send(.patch, "/api/catalog/titles/01aaaaaaaaaaaaaaaaaaaaaaaa", token: publisher, json: ["name": "x"]).status == .notFound)
        }
    }

    @Test(
        "A publisher changes only their own titles: another publisher's PATCH, DELETE, publish, withdraw and package get 403 and change nothing; an admin may do all",
        arguments: DatabaseKind.allCases)
    func ownership(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind)
        try await services.run { auth, catalog in
            let owner = try await services.user(.publisher, "owner@example.com", client: auth)
            let ownerID = try #require(try await auth.send(.get, "/api/auth/me", token: owner)["id"])
            let other = try await services.user(.publisher, "other@example.com", client: auth)
            let admin = try await services.user(.admin, "root@example.com", client: auth)
            let viewer = try await auth.signUp("view@example.com").access
            let created = try await catalog.send(.post, "/api/catalog/titles", token: owner, json: Self.movie)
            let id = try #require(created["id"])
            #expect(created["created_by"] == ownerID)
            let package: [String: Any] = [
                "package_version": "v1", "renditions": [["name": "a", "bandwidth": 1, "codecs": "mp4a.40.2"]],
            ]

            let attempts: [(HTTPRequest.Method, String, [String: Any]?)] = [
                (.patch, "/api/catalog/titles/\(id)", ["name": "Hijacked"]),
                (.put, "/api/catalog/titles/\(id)/package", package),
                (.post, "/api/catalog/titles/\(id)/publish", nil),
                (.post, "/api/catalog/titles/\(id)/withdraw", nil),
                (.delete, "/api/catalog/titles/\(id)", nil),
            ]
            for (method, path, body) in attempts {
                let reply = try await catalog.send(method, path, token: other, json: body)
                #expect(reply.status == .forbidden, "\(method) \(path) by another publisher → \(reply.status) \(reply.text)")
                #expect(reply.detail.contains("another publisher"), "\(reply.text)")
                #expect(reply.headers[.contentType] == "application/problem+json")
            }
            let untouched = try await catalog.send(.get, "/api/catalog/titles/\(id)", token: other)
            #expect(untouched.status == .ok, "publishers still read every title")
            #expect(untouched["name"] == "The Long Voyage" && untouched["status"] == "draft" && untouched.json["revision"] as? Int == 1)
            #expect(untouched["created_by"] == ownerID)

            // The owner and an admin may.
            #expect(try await catalog.send(.patch, "/api/catalog/titles/\(id)", token: owner, json: ["year": 1990]).status == .ok)
            #expect(try await catalog.send(.put, "/api/catalog/titles/\(id)/package", token: admin, json: package)["status"] == "ready")
            #expect(try await catalog.send(.post, "/api/catalog/titles/\(id)/publish", token: admin)["status"] == "published")
            let seenByViewer = try await catalog.send(.get, "/api/catalog/titles/\(id)", token: viewer)
            #expect(seenByViewer.status == .ok && seenByViewer.json["created_by"] is NSNull, "viewers are not shown account ids")
            #expect(try await catalog.send(.patch, "/api/catalog/titles/\(id)", token: admin, json: ["name": "Renamed"])["name"] == "Renamed")
            #expect(try await catalog.send(.post, "/api/catalog/titles/\(id)/withdraw", token: admin)["status"] == "withdrawn")
            #expect(try await catalog.send(.delete, "/api/catalog/titles/\(id)", token: admin).status == .noContent)
        }
    }

    static let ingestSecret = "ingest-secret-0123456789abcdef0123456789abcdef"
    static let gatewaySecret = "gateway-secret-0123456789abcdef0123456789abcdef"

    /// The catalog with ingest's and the gateways' service credentials configured.
    static func withCredentials(_ settings: inout CatalogSettings) {
        settings.credentials = [
            try! ServiceCredential(holder: "ingest", grant: .attachPackages, secret: ingestSecret),
            try! ServiceCredential(holder: "gateway", grant: .readAccessRules, secret: gatewaySecret),
        ]
    }

    @Test(
        "Ingest's service credential attaches a package to any publisher's title and does nothing else; a wrong secret is 401",
        arguments: DatabaseKind.allCases)
    func ingestCredential(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind, catalog: Self.withCredentials)
        try await services.run { auth, catalog in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let id = try #require(try await catalog.send(.post, "/api/catalog/titles", token: publisher, json: Self.movie)["id"])
            let package: [String: Any] = [
                "package_version": "v1", "renditions": [["name": "a", "bandwidth": 1, "codecs": "mp4a.40.2"]], "duration_seconds": 60,
            ]
            let attached = try await catalog.send(.put, "/api/catalog/titles/\(id)/package", token: Self.ingestSecret, json: package)
            #expect(attached.status == .ok, "\(attached.text)")
            #expect(attached["status"] == "ready" && (attached.json["package"] as? [String: Any])?["version"] as? String == "v1")

            // Nothing a publisher could do besides.
            let beyond: [(HTTPRequest.Method, String, [String: Any]?)] = [
                (.post, "/api/catalog/titles", Self.movie),
                (.patch, "/api/catalog/titles/\(id)", ["name": "Renamed by ingest"]),
                (.post, "/api/catalog/titles/\(id)/publish", nil),
                (.post, "/api/catalog/titles/\(id)/withdraw", nil),
                (.delete, "/api/catalog/titles/\(id)", nil),
            ]
            for (method, path, body) in beyond {
                let reply = try await catalog.send(method, path, token: Self.ingestSecret, json: body)
                #expect(reply.status == .forbidden, "\(method) \(path) with ingest's credential → \(reply.status) \(reply.text)")
                #expect(reply.detail.contains("attach_packages"), "\(reply.text)")
            }
            #expect(try await catalog.send(.get, "/api/catalog/titles/\(id)", token: Self.ingestSecret).status == .notFound, "drafts stay hidden")
            let gateway = try await catalog.send(.put, "/api/catalog/titles/\(id)/package", token: Self.gatewaySecret, json: package)
            #expect(gateway.status == .forbidden, "the gateways' credential is for the feed only: \(gateway.text)")
            let wrong = try await catalog.send(.put, "/api/catalog/titles/\(id)/package", token: String(Self.ingestSecret.dropLast()) + "0", json: package)
            #expect(wrong.status == .unauthorized)
            let title = try await catalog.send(.get, "/api/catalog/titles/\(id)", token: publisher)
            #expect(title["name"] == "The Long Voyage" && title["status"] == "ready" && title.json["revision"] as? Int == 2)
        }
    }

    @Test(
        "PATCH takes application/merge-patch+json (RFC 7396): absent kept, null cleared, geo merged member by member; other media types get 415",
        arguments: DatabaseKind.allCases)
    func mergePatch(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind)
        try await services.run { auth, catalog in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            var body = Self.movie
            body["geo"] = ["mode": "deny", "countries": ["GB", "FR"]]
            let created = try await catalog.send(.post, "/api/catalog/titles", token: publisher, json: body)
            let id = try #require(created["id"])
            let path = "/api/catalog/titles/\(id)"
            func mergePatch(_ document: String, type: String = "application/merge-patch+json") async throws -> Client.Reply {
                try await catalog.send(.patch, path, token: publisher, raw: document, headers: [.contentType: type])
            }

            let merged = try await mergePatch(#"{"name": "Merged Voyage", "year": null, "geo": {"countries": ["DE"]}}"#)
            #expect(merged.status == .ok, "\(merged.text)")
            #expect(merged["name"] == "Merged Voyage")
            #expect(merged.json["year"] is NSNull, "null removes the member")
            #expect(merged["description"] == "A ship crosses the Atlantic in winter.", "absent members are kept")
            let geo = merged.json["geo"] as? [String: Any]
            #expect(geo?["mode"] as? String == "deny" && geo?["countries"] as? [String] == ["DE"], "geo merged, its mode kept: \(merged.text)")

            let withCharset = try await mergePatch(#"{"geo": null, "cast": ["Someone"]}"#, type: "application/merge-patch+json; charset=utf-8")
            #expect(withCharset.status == .ok && withCharset.json["geo"] is NSNull)
            #expect(withCharset.json["cast"] as? [String] == ["Someone"], "arrays are replaced whole")
            let fresh = try await mergePatch(#"{"geo": {"countries": ["FR"]}}"#)
            #expect(fresh.status == .unprocessableContent && fresh.detail.contains("geo.mode"), "nothing to merge into: \(fresh.text)")

            for refused in ["[1, 2]", "\"a name\"", "null"] {
                let reply = try await mergePatch(refused)
                #expect(reply.status == .unprocessableContent, "\(refused) → \(reply.status) \(reply.text)")
            }
            #expect(try await mergePatch("{not json").status == .badRequest)
            #expect(try await mergePatch(#"{"name": null}"#).status == .unprocessableContent)
            let plain = try await mergePatch(#"{"name": "x"}"#, type: "text/plain")
            #expect(plain.status == .unsupportedMediaType && plain.detail.contains("application/merge-patch+json"), "\(plain.text)")
            let title = try await catalog.send(.get, path, token: publisher)
            #expect(title["name"] == "Merged Voyage" && title.json["revision"] as? Int == 3, "refused patches changed nothing")
        }
    }

    @Test("Search, genre filter, sort and cursor pagination; hostile search text is just text", arguments: DatabaseKind.allCases)
    func listing(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind)
        try await services.run { auth, catalog in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let names = ["The Long Voyage", "Voyager Returns", "Silent Harbor", "Harbor Lights", "Night Train"]
            var ids: [String] = []
            for (i, name) in names.enumerated() {
                let reply = try await catalog.send(
                    .post, "/api/catalog/titles", token: publisher,
                    json: ["name": name, "price_per_minute": 3, "currency": "USD", "year": 1990 + i, "genres": i % 2 == 0 ? ["drama"] : ["comedy"],
                           "cast": i == 2 ? ["Zoë Saldaña"] : ["Someone Else"]])
                ids.append(try #require(reply["id"]))
            }
            for i in 0..<25 {
                _ = try await catalog.send(.post, "/api/catalog/titles", token: publisher, json: ["name": "Filler \(i)", "price_per_minute": 1, "currency": "USD"])
            }
            func search(_ q: String) async throws -> Set<String> {
                let encoded = q.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? q
                let reply = try await catalog.send(.get, "/api/catalog/titles?limit=100&q=\(encoded)", token: publisher)
                #expect(reply.status == .ok, "\(q): \(reply.text)")
                return Set(reply.items.compactMap { $0["name"] as? String })
            }
            #expect(try await search("voy") == ["The Long Voyage", "Voyager Returns"])
            #expect(try await search("harbor") == ["Silent Harbor", "Harbor Lights"])
            #expect(try await search("silent HARBOR") == ["Silent Harbor"])
            #expect(try await search("saldana") == ["Silent Harbor"], "accents are folded")
            for hostile in [#"" OR 1=1 --"#, "*", "NEAR(a b)", "a:* | b", "');DROP TABLE titles;--", "\\", "^x", "{}[]"] {
                _ = try await search(hostile)
            }
            #expect(try await catalog.send(.get, "/api/catalog/titles?limit=5", token: publisher).items.count == 5)

            let comedies = try await catalog.send(.get, "/api/catalog/titles?genre=Comedy&limit=100", token: publisher)
            #expect(Set(comedies.items.compactMap { $0["name"] as? String }) == ["Voyager Returns", "Harbor Lights"])

            for sort in ["-created_at", "created_at", "name", "-name", "year", "-year"] {
                var seen: [String] = []
                var cursor: String? = nil
                repeat {
                    let page = try await catalog.send(
                        .get, "/api/catalog/titles?limit=7&sort=\(sort)" + (cursor.map { "&cursor=\($0)" } ?? ""), token: publisher)
                    #expect(page.status == .ok, "\(page.text)")
                    seen += page.items.compactMap { $0["id"] as? String }
                    cursor = page.json["next_cursor"] as? String
                } while cursor != nil
                #expect(seen.count == 30 && Set(seen).count == 30, "sort \(sort): every title exactly once")
            }
            let byName = try await catalog.send(.get, "/api/catalog/titles?limit=3&sort=name&q=a", token: publisher)
            let sortedNames = byName.items.compactMap { $0["name"] as? String }
            #expect(sortedNames == sortedNames.sorted())
            #expect(try await catalog.send(.get, "/api/catalog/titles?cursor=garbage", token: publisher).status == .unprocessableContent)
            #expect(try await catalog.send(.get, "/api/catalog/titles?limit=0").status == .unprocessableContent)
            #expect(try await catalog.send(.get, "/api/catalog/titles?sort=price").status == .unprocessableContent)
        }
    }

    @Test("Availability window: viewers see a published title only inside it", arguments: DatabaseKind.allCases)
    func availability(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind)
        try await services.run { auth, catalog in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            var body = Self.movie
            body["available_from"] = "2999-01-01T00:00:00Z"
            let id = try #require(try await catalog.send(.post, "/api/catalog/titles", token: publisher, json: body)["id"])
            _ = try await catalog.send(
                .put, "/api/catalog/titles/\(id)/package", token: publisher,
                json: ["package_version": "v1", "renditions": [["name": "a", "bandwidth": 1, "codecs": "mp4a.40.2"]]])
            #expect(try await catalog.send(.post, "/api/catalog/titles/\(id)/publish", token: publisher)["status"] == "published")
            #expect(try await catalog.send(.get, "/api/catalog/titles").items.isEmpty)
            #expect(try await catalog.send(.get, "/api/catalog/titles/\(id)").status == .notFound)
            _ = try await catalog.send(.patch, "/api/catalog/titles/\(id)", token: publisher, json: ["available_from": NSNull()])
            #expect(try await catalog.send(.get, "/api/catalog/titles/\(id)").status == .ok)
        }
    }

    @Test("The access-rules feed: versioned, long-polls, answers as soon as a title changes", arguments: DatabaseKind.allCases)
    func accessRules(kind: DatabaseKind) async throws {
        // Re-checks for other instances' writes so rare that only this instance's write can end the wait.
        let services = try await Services.open(kind) { _ in } catalog: {
            Self.withCredentials(&$0)
            $0.rulesRecheckMilliseconds = 600_000
        }
        try await services.run { auth, catalog in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let feed = "/internal/access-rules"
            var body = Self.movie
            body["geo"] = ["mode": "deny", "countries": ["GB"]]
            let id = try #require(try await catalog.send(.post, "/api/catalog/titles", token: publisher, json: body)["id"])
            let drafts = try await catalog.send(.get, feed, token: Self.gatewaySecret)
            #expect(drafts.status == .ok, "\(drafts.text)")
            #expect((drafts.json["titles"] as? [Any])?.isEmpty == true, "drafts are not in the feed")
            _ = try await catalog.send(
                .put, "/api/catalog/titles/\(id)/package", token: publisher,
                json: ["package_version": "v1", "renditions": [["name": "a", "bandwidth": 1, "codecs": "mp4a.40.2"]]])
            let first = try await catalog.send(.get, feed, token: Self.gatewaySecret)
            let etag = try #require(first.headers[.eTag])
            let titles = try #require(first.json["titles"] as? [[String: Any]])
            #expect(titles.first?["status"] as? String == "ready")
            #expect((titles.first?["geo"] as? [String: Any])?["countries"] as? [String] == ["GB"])
            let unchanged = try await catalog.send(.get, feed + "?wait=1", token: Self.gatewaySecret, headers: [.ifNoneMatch: etag])
            #expect(unchanged.status == .notModified)
            // The long poll needs its own connection: the test client has one, and requests queue on it.
            let port = try #require(catalog.client.port)
            async let waiting = Self.get("http://127.0.0.1:\(port)\(feed)?wait=30", ifNoneMatch: etag, token: Self.gatewaySecret)
            #expect(await waitUntil(timeout: .seconds(10)) { () async in services.catalog.waitingRulePolls == 1 }, "the poll is waiting")
            _ = try await catalog.send(.post, "/api/catalog/titles/\(id)/publish", token: publisher)
            let (status, changedTag, changed, _) = try await waiting
            #expect(status == 200, "the write woke the poll, long before its 30 s")
            #expect(changedTag != etag)
            let changedTitles = try JSONSerialization.jsonObject(with: changed) as? [String: Any]
            #expect((changedTitles?["titles"] as? [[String: Any]])?.first?["status"] as? String == "published")
            #expect(services.catalog.waitingRulePolls == 0)
            #expect(try await catalog.send(.get, feed + "?wait=600", token: Self.gatewaySecret).status == .unprocessableContent)
        }
    }

    @Test(
        "The access-rules feed is for gateways: outside /api/, refused without the gateways' credential (401) or with any other (403); admins may read it",
        arguments: DatabaseKind.allCases)
    func accessRulesNeedTheGatewayCredential(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind, catalog: Self.withCredentials)
        try await services.run { auth, catalog in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let admin = try await services.user(.admin, "root@example.com", client: auth)
            let feed = "/internal/access-rules"
            #expect(try await catalog.send(.get, "/api/catalog/access-rules", token: Self.gatewaySecret).status == .notFound, "nothing under /api/")
            let anonymous = try await catalog.send(.get, feed)
            #expect(anonymous.status == .unauthorized && anonymous.headers[.wwwAuthenticate] != nil)
            #expect(try await catalog.send(.get, feed, token: String(Self.gatewaySecret.dropLast()) + "x").status == .unauthorized)
            #expect(try await catalog.send(.get, feed, token: publisher).status == .forbidden)
            let ingest = try await catalog.send(.get, feed, token: Self.ingestSecret)
            #expect(ingest.status == .forbidden && ingest.detail.contains("attach_packages"), "\(ingest.text)")
            let gateway = try await catalog.send(.get, feed, token: Self.gatewaySecret)
            #expect(gateway.status == .ok && gateway.json["version"] is Int)
            #expect(try await catalog.send(.get, feed, token: admin).status == .ok)
            // The gateways' credential reads the feed and does nothing else.
            #expect(try await catalog.send(.post, "/api/catalog/titles", token: Self.gatewaySecret, json: Self.movie).status == .forbidden)
        }
    }

    @Test(
        "At most catalog.max_waiting_polls polls wait: one more gets 503 with Retry-After; polls that need not wait are always answered",
        arguments: DatabaseKind.allCases)
    func accessRulesPollCap(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind) { _ in } catalog: {
            Self.withCredentials(&$0)
            $0.maxWaitingPolls = 1
        }
        try await services.run { auth, catalog in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let feed = "/internal/access-rules"
            let etag = try #require(try await catalog.send(.get, feed, token: Self.gatewaySecret).headers[.eTag])
            let port = try #require(catalog.client.port)
            async let waiting = Self.get("http://127.0.0.1:\(port)\(feed)?wait=30", ifNoneMatch: etag, token: Self.gatewaySecret)
            #expect(await waitUntil(timeout: .seconds(10)) { () async in services.catalog.waitingRulePolls == 1 })
            let refused = try await Self.get("http://127.0.0.1:\(port)\(feed)?wait=30", ifNoneMatch: etag, token: Self.gatewaySecret)
            #expect(refused.0 == 503 && refused.3 == "1", "503 with Retry-After: 1, got \(refused.0) \(refused.3 ?? "none")")
            #expect(try await catalog.send(.get, feed, token: Self.gatewaySecret).status == .ok, "a poll without a matching ETag does not wait")
            #expect(try await catalog.send(.get, feed + "?wait=0", token: Self.gatewaySecret, headers: [.ifNoneMatch: etag]).status == .notModified)
            _ = try await catalog.send(.post, "/api/catalog/titles", token: publisher, json: Self.movie)
            let answered = try await waiting
            #expect(answered.0 == 200)
            #expect(services.catalog.waitingRulePolls == 0, "the answered poll left its place")
        }
    }

    @Test(
        "A poll waiting on one catalog instance learns of a write made through another instance on the same database",
        arguments: DatabaseKind.allCases)
    func accessRulesAcrossInstances(kind: DatabaseKind) async throws {
        var database = ""
        let services = try await Services.open(kind) { _ in } catalog: {
            Self.withCredentials(&$0)
            $0.rulesRecheckMilliseconds = 100
            database = $0.database
        }
        var otherSettings = CatalogSettings()
        otherSettings.database = database
        let other = try await CatalogService.open(otherSettings, jwks: services.auth.jwksSource)
        do {
            try await services.run { auth, catalog in
                let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
                let feed = "/internal/access-rules"
                let etag = try #require(try await catalog.send(.get, feed, token: Self.gatewaySecret).headers[.eTag])
                let port = try #require(catalog.client.port)
                async let waiting = Self.get("http://127.0.0.1:\(port)\(feed)?wait=30", ifNoneMatch: etag, token: Self.gatewaySecret)
                #expect(await waitUntil(timeout: .seconds(10)) { () async in services.catalog.waitingRulePolls == 1 })
                try await Application(router: other.router()).test(.live) { otherClient in
                    let created = try await Client(otherClient).send(.post, "/api/catalog/titles", token: publisher, json: Self.movie)
                    #expect(created.status == .created)
                }
                let (status, changedTag, _, _) = try await waiting
                #expect(status == 200 && changedTag != etag, "the other instance's write reached the waiting poll")
            }
        } catch {
            await other.close()
            throw error
        }
        await other.close()
    }

    /// A long poll on a connection of its own: status, ETag, body and Retry-After.
    static func get(_ url: String, ifNoneMatch: String, token: String) async throws -> (Int, String?, Data, String?) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "If-None-Match", value: ifNoneMatch)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), response.headers.first(name: "ETag"), Data(body.readableBytesView), response.headers.first(name: "Retry-After"))
    }
}
