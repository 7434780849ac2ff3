import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MarqueeAuth
import MarqueeBus
import MarqueeMetering
import MarqueeRedis
import MarqueeServiceKit
import MarqueeStore
import MarqueeTestSupport
import Testing

@testable import MarqueeAnalytics
@testable import MarqueeBilling

@Suite("Analytics (SQLite and PostgreSQL)")
struct AnalyticsServiceTests {
    static let analyticsCredential = try! ServiceCredential(holder: "analytics", grant: .readBilling, secret: "analytics-billing-secret-0123456789abcdef")

    /// Two titles of 6-second segments in one store (`titles/<title>/v1/`).
    static func packages() throws -> FileSystemStore {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-analytics-\(UUID().uuidString)").path
        for title in ["title-1", "title-2"] {
            let folder = root + "/titles/\(title)/v1/"
            try FileManager.default.createDirectory(atPath: folder + "video/720p", withIntermediateDirectories: true)
            try "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720\nvideo/720p/index.m3u8\n"
                .write(toFile: folder + "master.m3u8", atomically: true, encoding: .utf8)
            var media = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n"
            for n in 0..<20 { media += "#EXTINF:6.000,\nseg_\(n).m4s\n" }
            try (media + "#EXT-X-ENDLIST\n").write(toFile: folder + "video/720p/index.m3u8", atomically: true, encoding: .utf8)
        }
        return try FileSystemStore(root: root)
    }

    static func delivered(_ session: String, title: String, segments: Range<Int>) -> [DeliveryRecord] {
        segments.map { n in
            DeliveryRecord(
                endMicroseconds: Int64(Date().timeIntervalSince1970 * 1_000_000) + Int64(n) * 1_000, durationMicroseconds: 1000, status: 200,
                bytesSent: 1000, objectSize: 1000, country: "DE", sessionID: session, titleID: title, packageVersion: "v1",
                objectPath: "video/720p/seg_\(n).m4s")
        }
    }

    @Test("Publishers see their own titles, admins all, viewers only their history; refusals on every route", arguments: DatabaseKind.allCases)
    func permissions(kind: DatabaseKind) async throws {
        try await BillingServiceTests.withBilling(kind, configure: { $0.credentials.append(Self.analyticsCredential) }) { world in
            let publisherA = try await BillingServiceTests.user(world, .publisher, "a@example.com")
            let publisherB = try await BillingServiceTests.user(world, .publisher, "b@example.com")
            let admin = try await BillingServiceTests.user(world, .admin, "root@example.com")
            let viewer1 = try await BillingServiceTests.user(world, .viewer, "v1@example.com")
            let viewer2 = try await BillingServiceTests.user(world, .viewer, "v2@example.com")
            #expect(try await BillingServiceTests.deposit(world.billing, viewer1.token, amount: 100, key: "seed").status == .created)
            #expect(try await BillingServiceTests.open(world.billing, session: "watch-a", user: viewer1.id, price: 10, owner: publisherA.id).status == .created)
            #expect(
                try await BillingServiceTests.open(world.billing, session: "watch-b", user: viewer2.id, price: 0, owner: publisherB.id, title: "title-2").status
                    == .created)

            // The same records reach billing's meter and analytics' pipeline.
            let store = try Self.packages()
            let records = Self.delivered("watch-a", title: "title-1", segments: 0..<13) + Self.delivered("watch-b", title: "title-2", segments: 0..<5)
            let meterDeliveries = MemoryDeliveries()
            meterDeliveries.append(records)
            let meter = Meter(service: world.service, source: meterDeliveries, timelines: PackageTimelines(store: store))
            while try await meter.runOnce() > 0 {}

            // Billing's side for analytics: its credential only.
            let billingPort = try #require(world.billing.client.port)
            var credential = HTTPFields()
            credential[.authorization] = Self.analyticsCredential.authorization
            #expect(try await world.billing.send(.get, "/internal/billing/sessions?ids=watch-a").status == .unauthorized)
            #expect(try await world.billing.send(.get, "/internal/billing/sessions?ids=watch-a", token: viewer1.token).status == .forbidden)
            #expect(try await world.billing.send(.get, "/internal/billing/revenue?from=2026-01-01", token: publisherA.token).status == .forbidden)
            #expect(try await world.billing.send(.get, "/internal/billing/sessions?ids=", headers: credential).status == .unprocessableContent)
            let facts = try await world.billing.send(.get, "/internal/billing/sessions?ids=watch-a,nobody", headers: credential)
            #expect(facts.items.map { $0["session_id"] as? String } == ["watch-a"])

            var settings = AnalyticsSettings()
            settings.database = try kind.freshURL()
            settings.billingURL = "http://127.0.0.1:\(billingPort)"
            settings.billingCredential = Self.analyticsCredential
            let analytics = try await AnalyticsService.open(settings, jwks: world.services.auth.jwksSource)
            let deliveries = MemoryDeliveries()
            deliveries.append(records)
            let ingestor = AnalyticsIngestor(service: analytics, source: deliveries, timelines: PackageTimelines(store: store), batchSize: 5)
            while try await ingestor.runOnce() > 0 {}
            let directory = SessionDirectory(database: analytics.database, billing: BillingFacts(billingURL: settings.billingURL!, credential: Self.analyticsCredential))
            #expect(try await directory.settlePending() == 2)
            try await directory.syncRevenue()

            try await Application(router: analytics.router()).test(.live) { client in
                let client = Client(client)
                let routes = [
                    "/api/analytics/titles/title-1", "/api/analytics/top-titles", "/api/analytics/dashboard", "/api/analytics/revenue",
                    "/api/analytics/reports/day", "/api/analytics/sessions", "/api/analytics/me/history",
                ]
                for route in routes {
                    let reply = try await client.send(.get, route)
                    #expect(reply.status == .unauthorized, "\(route)")
                    #expect(reply.headers[.contentType] == "application/problem+json")
                }
                for route in routes.dropLast() {
                    #expect(try await client.send(.get, route, token: viewer1.token).status == .forbidden, "\(route)")
                }

                // A viewer's own history: where to resume.
                let history1 = try await client.send(.get, "/api/analytics/me/history", token: viewer1.token)
                #expect(history1.items.map { $0["title_id"] as? String } == ["title-1"])
                #expect(history1.items.first?["position_seconds"] as? Double == 78)
                #expect(history1.items.first?["watched_seconds"] as? Double == 78)
                let history2 = try await client.send(.get, "/api/analytics/me/history", token: viewer2.token)
                #expect(history2.items.map { $0["title_id"] as? String } == ["title-2"])

                // Publisher A: title-1 only.
                let title1 = try await client.send(.get, "/api/analytics/titles/title-1", token: publisherA.token)
                #expect(title1.status == .ok, "\(title1.text)")
                #expect(title1.json["views"] as? Int == 1)
                #expect(title1.json["unique_viewers"] as? Int == 1)
                #expect(title1.json["watch_seconds"] as? Double == 78)
                #expect((title1.json["revenue"] as? [[String: Any]])?.first?["gross"] as? Int == 20)
                #expect(try await client.send(.get, "/api/analytics/titles/title-2", token: publisherA.token).status == .notFound)
                let dashboardA = try await client.send(.get, "/api/analytics/dashboard?range=hour", token: publisherA.token)
                #expect((dashboardA.json["top_titles"] as? [[String: Any]])?.map { $0["title_id"] as? String } == ["title-1"])
                #expect((dashboardA.json["totals"] as? [String: Any])?["watch_seconds"] as? Double == 78)
                // A publisher's dashboard cuts one read of the title table; the cuts match the routes that read them alone.
                let countriesA = dashboardA.json["countries"] as? [[String: Any]] ?? []
                #expect(countriesA.map { $0["country"] as? String } == ["DE"] && countriesA.first?["watch_seconds"] as? Double == 78, "\(countriesA)")
                #expect((dashboardA.json["edges"] as? [[String: Any]] ?? []).compactMap { $0["requests"] as? Int }.reduce(0, +) > 0)
                let topA = try await client.send(.get, "/api/analytics/top-titles?range=hour", token: publisherA.token)
                func figures(_ items: [[String: Any]]) -> [String] {
                    items.map { "\($0["title_id"] ?? "") \($0["views"] ?? "") \($0["unique_viewers"] ?? "") \($0["watch_seconds"] ?? "") \($0["bytes"] ?? "")" }
                }
                #expect(figures(topA.items) == figures(dashboardA.json["top_titles"] as? [[String: Any]] ?? []))
                let revenueA = try await client.send(.get, "/api/analytics/revenue", token: publisherA.token)
                #expect(revenueA.items.map { $0["title_id"] as? String } == ["title-1"])
                #expect(revenueA.items.first?["minutes"] as? Int == 2)

                let sessionsA = try await client.send(.get, "/api/analytics/sessions", token: publisherA.token)
                #expect(sessionsA.items.map { $0["session_id"] as? String } == ["watch-a"])
                #expect(sessionsA.items.first?["user_id"] == nil, "a publisher does not see who watched")
                #expect(sessionsA.items.first?["watch_seconds"] as? Double == 78)
                #expect(sessionsA.items.first?["country"] as? String == "DE")

                // Publisher B: title-2 only, free (no revenue).
                let title2 = try await client.send(.get, "/api/analytics/titles/title-2", token: publisherB.token)
                #expect(title2.json["watch_seconds"] as? Double == 30)
                #expect(try await client.send(.get, "/api/analytics/titles/title-1", token: publisherB.token).status == .notFound)
                #expect(try await client.send(.get, "/api/analytics/revenue", token: publisherB.token).items.isEmpty)

                // An admin: both.
                let top = try await client.send(.get, "/api/analytics/top-titles?range=hour", token: admin.token)
                #expect(Set(top.items.compactMap { $0["title_id"] as? String }) == ["title-1", "title-2"])
                let all = try await client.send(.get, "/api/analytics/sessions?limit=1", token: admin.token)
                #expect(all.items.count == 1 && all.items.first?["user_id"] is String)
                let cursor = try #require(all.json["next_cursor"] as? String)
                let rest = try await client.send(.get, "/api/analytics/sessions?limit=1&cursor=\(cursor)", token: admin.token)
                #expect(Set((all.items + rest.items).compactMap { $0["session_id"] as? String }) == ["watch-a", "watch-b"])
                let report = try await client.send(.get, "/api/analytics/reports/week", token: admin.token)
                #expect(((report.json["report"] as? [String: Any])?["totals"] as? [String: Any])?["views"] as? Int == 2, "\(report.text)")

                // Bad input: a clear 422 or 404.
                for (route, status) in [
                    ("/api/analytics/dashboard?range=year", HTTPResponse.Status.unprocessableContent),
                    ("/api/analytics/titles/title-1?from=2026-13-01", .unprocessableContent),
                    ("/api/analytics/titles/title-1?to=2026-02-30", .unprocessableContent),
                    ("/api/analytics/top-titles?limit=0", .unprocessableContent),
                    ("/api/analytics/reports/year", .notFound),
                    ("/api/analytics/reports/day?date=tomorrow", .unprocessableContent),
                ] {
                    let reply = try await client.send(.get, route, token: admin.token)
                    #expect(reply.status == status, "\(route): \(reply.status) \(reply.text)")
                    #expect(!reply.detail.isEmpty)
                }
                let metrics = try await client.send(.get, "/metrics")
                #expect(metrics.text.contains("marquee_analytics_records_total"))
            }
            await analytics.close()
        }
    }

    @Test("The OpenAPI document lists exactly the routes served")
    func openAPIMatchesRoutes() async throws {
        var settings = AnalyticsSettings()
        settings.database = try DatabaseKind.sqlite.freshURL()
        let analytics = try await AnalyticsService.open(settings, jwks: LocalTestJWKS())
        let documented = OpenAPIOperations.documented(in: AnalyticsService.openAPI)
        let routed = ContractTests.routedOperations(analytics.router())
        #expect(documented == routed, "documented only: \(documented.subtracting(routed).sorted()); routed only: \(routed.subtracting(documented).sorted())")
        await analytics.close()
    }
}

/// Analytics on the gateways' Redis stream, beside billing: its own consumer group, each record
/// counted once however often it is replayed.
@Suite("Analytics on the Redis stream (its own consumer group, real redis-server)", .serialized)
struct AnalyticsStreamTests {
    @Test("Analytics and billing each read every entry; replays with the same gateway and sequence count once", arguments: DatabaseKind.allCases)
    func ownGroupAndReplays(kind: DatabaseKind) async throws {
        let redis = try RedisServer()
        try redis.start()
        defer { redis.stop() }
        let name = "deliveries-\(UUID().uuidString)"
        let records = AnalyticsServiceTests.delivered("s1", title: "title-1", segments: 0..<10) + AnalyticsServiceTests.delivered("s2", title: "title-2", segments: 0..<4)
        let origins = records.indices.map { (gateway: $0 % 2 == 0 ? "edge-a" : "edge-b", sequence: UInt64($0 / 2)) }
        try BillingStreamTests.xadd(redis, stream: name, records, origins: origins)
        // A spill replayed after an outage: the last 6 records again, same gateways and sequences.
        try BillingStreamTests.xadd(redis, stream: name, Array(records.suffix(6)), origins: Array(origins.suffix(6)))

        var settings = AnalyticsSettings()
        settings.database = try kind.freshURL()
        let analytics = try await AnalyticsService.open(settings, jwks: LocalTestJWKS())
        let store = try AnalyticsServiceTests.packages()
        let ingestor = AnalyticsIngestor(
            service: analytics, source: try BillingStreamTests.stream(redis, name, consumer: "a1", group: "analytics"), timelines: PackageTimelines(store: store),
            batchSize: 4)
        while try await ingestor.runOnce() > 0 {}
        let scope = RollupScope(grain: .day, from: 0, to: Int64.max / 2)
        let totals = try await RollupQuery.grouped(analytics.database, scope, by: "title_id")
        let byTitle = Dictionary(uniqueKeysWithValues: totals.map { ($0.key, $0.counters) })
        #expect(byTitle["title-1"]?.requests == 10)
        #expect(byTitle["title-1"]?.watchMicroseconds == 60_000_000)
        #expect(byTitle["title-2"]?.requests == 4)
        #expect(byTitle["title-1"]?.views == 1 && byTitle["title-2"]?.views == 1)
        let edges = try await RollupQuery.grouped(analytics.database, scope, by: "edge")
        #expect(Dictionary(uniqueKeysWithValues: edges.map { ($0.key, $0.counters.requests) }) == ["edge-a": 7, "edge-b": 7])
        // Every entry acknowledged by analytics' group; billing's group has read none of them yet.
        let connection = try RedisConnection(endpoint: try RedisEndpoint(parsing: redis.url), connectTimeoutMicros: 2_000_000, ioTimeoutMicros: 2_000_000)
        guard case .array(let summary) = try connection.command(["XPENDING", name, "analytics"]) else { throw TestEnvironmentError("XPENDING failed") }
        #expect(summary.first?.integerValue == 0)
        let billing = try BillingStreamTests.stream(redis, name, consumer: "b1")
        let batch = try await billing.read(from: 0, limit: 100)
        #expect(batch.records.count == 20)
        let gateways = try await analytics.database.first("SELECT COUNT(*) AS n FROM analytics_seen")?.int("n")
        #expect(gateways == 2)
        await analytics.close()
    }
}
