import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MarqueeAuth
import MarqueeBus
import MarqueeCatalog
@testable import MarqueePlayback
import MarqueeMetering
import MarqueePolicy
import MarqueeRedis
import MarqueeServiceKit
import MarqueeStore
import MarqueeTestSupport
import NIOConcurrencyHelpers
import Testing

@testable import MarqueeBilling

/// Remembers every revocation billing asks for instead of telling a gateway.
final class RecordingRevoker: SessionRevoker, Sendable {
    private let box = NIOLockedValueBox<[(String, RevocationReason)]>([])
    var revoked: [(String, RevocationReason)] { box.withLockedValue { $0 } }
    func revoke(_ session: String, reason: RevocationReason, ttlSeconds: Int64) async throws {
        box.withLockedValue { $0.append((session, reason)) }
    }
}

/// Delivery records from memory: the meter's source in tests, positions are indices.
final class MemoryDeliveries: DeliverySource, Sendable {
    let name = "memory"
    private let box = NIOLockedValueBox<[DeliveryRecord]>([])
    func append(_ records: [DeliveryRecord]) { box.withLockedValue { $0 += records } }
    func read(from position: UInt64, limit: Int) async throws -> DeliveryBatch {
        let all = box.withLockedValue { $0 }
        let start = min(Int(position), all.count)
        let end = min(all.count, start + limit)
        return DeliveryBatch(records: Array(all[start..<end]), next: UInt64(end))
    }
}

@Suite("Billing (SQLite and PostgreSQL)")
struct BillingServiceTests {
    static let playbackCredential = try! ServiceCredential(
        holder: "playback", grant: .openBillingSessions, secret: "billing-playback-secret-0123456789abcdef")
    static let catalogCredential = try! ServiceCredential(holder: "playback", grant: .readTitles, secret: "catalog-playback-secret-0123456789abcdef")

    struct World: Sendable {
        let services: Services
        let auth: Client
        let catalog: Client
        let billing: Client
        let service: BillingService
        let revoker: RecordingRevoker
    }

    /// Auth, catalog and billing on `kind`, over loopback HTTP.
    static func withBilling(
        _ kind: DatabaseKind, configure: @escaping @Sendable (inout BillingSettings) -> Void = { _ in },
        _ body: @escaping @Sendable (World) async throws -> Void
    ) async throws {
        let services = try await Services.open(kind, catalog: { $0.credentials = [catalogCredential] })
        try await services.run { auth, catalog in
            var settings = BillingSettings()
            settings.database = try kind.freshURL()
            settings.credentials = [playbackCredential]
            settings.selfServiceDeposits = true
            settings.maxSessionsPerViewer = 0
            configure(&settings)
            let revoker = RecordingRevoker()
            let service = try await BillingService.open(settings, jwks: services.auth.jwksSource, revoker: revoker)
            do {
                try await Application(router: service.router()).test(.live) { client in
                    try await body(World(services: services, auth: auth, catalog: catalog, billing: Client(client), service: service, revoker: revoker))
                }
            } catch {
                await service.close()
                throw error
            }
            await service.close()
        }
    }

    /// A user with `role`, signed in: (access token, user id).
    static func user(_ world: World, _ role: Role, _ email: String) async throws -> (token: String, id: String) {
        let created = try await world.services.auth.createAccount(email: email, password: "a long enough passphrase", role: role)
        return (try await world.auth.signIn(email).access, created.id)
    }

    static func deposit(_ billing: Client, _ token: String, amount: Int, key: String, currency: String = "EUR", userID: String? = nil)
        async throws -> Client.Reply
    {
        var body: [String: Any] = ["amount": amount, "currency": currency]
        if let userID { body["user_id"] = userID }
        var headers = HTTPFields()
        headers[HTTPField.Name("Idempotency-Key")!] = key
        return try await billing.send(.post, "/api/billing/deposits", token: token, json: body, headers: headers)
    }

    static func open(_ billing: Client, session: String, user: String, price: Int, owner: String = "owner-1", title: String = "title-1")
        async throws -> Client.Reply
    {
        var headers = HTTPFields()
        headers[.authorization] = playbackCredential.authorization
        return try await billing.send(
            .post, "/internal/billing/sessions",
            json: [
                "session_id": session, "user_id": user, "title_id": title, "owner": owner, "package_version": "v1", "price_per_minute": price,
                "currency": "EUR",
            ], headers: headers)
    }

    static func balance(_ billing: Client, _ token: String, currency: String = "EUR") async throws -> Int {
        try #require(try await billing.send(.get, "/api/billing/wallet?currency=\(currency)", token: token).json["balance"] as? Int)
    }

    /// The ledger's invariants: every transfer has its two sides in the balances, the balances of
    /// each currency sum to zero, no wallet or hold is negative.
    static func expectBalanced(_ service: BillingService, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let database = service.database
        let accounts = try await database.query("SELECT id, kind, currency, balance FROM billing_accounts", [])
        var byCurrency: [String: Int64] = [:]
        for account in accounts {
            let id = try account.string("id")
            let balance = try account.int("balance")
            byCurrency[try account.string("currency"), default: 0] += balance
            let credits = try await database.first("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS s FROM billing_transfers WHERE credit_account = $1", id)?.int("s") ?? 0
            let debits = try await database.first("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS s FROM billing_transfers WHERE debit_account = $1", id)?.int("s") ?? 0
            #expect(balance == credits - debits, "account \(id): balance \(balance), transfers say \(credits - debits)", sourceLocation: sourceLocation)
            if ["wallet", "hold"].contains(try account.string("kind")) {
                #expect(balance >= 0, "\(id) is negative: \(balance)", sourceLocation: sourceLocation)
            }
        }
        for (currency, sum) in byCurrency {
            #expect(sum == 0, "\(currency) balances sum to \(sum), not 0", sourceLocation: sourceLocation)
        }
    }

    // MARK: - Deposits

    @Test("Deposits: replayed for the same key and body, 422 for another body, one deposit for concurrent duplicates", arguments: DatabaseKind.allCases)
    func idempotentDeposits(kind: DatabaseKind) async throws {
        try await Self.withBilling(kind) { world in
            let viewer = try await Self.user(world, .viewer, "viewer@example.com")
            let first = try await Self.deposit(world.billing, viewer.token, amount: 500, key: "k-1")
            #expect(first.status == .created, "\(first.text)")
            #expect(first.json["balance"] as? Int == 500)
            let replay = try await Self.deposit(world.billing, viewer.token, amount: 500, key: "k-1")
            #expect(replay.status == .created)
            #expect(replay.body == first.body)
            #expect(replay.headers[HTTPField.Name("Idempotency-Replayed")!] == "true")
            let conflicting = try await Self.deposit(world.billing, viewer.token, amount: 501, key: "k-1")
            #expect(conflicting.status == .unprocessableContent)
            #expect(conflicting.headers[.contentType] == "application/problem+json")
            #expect(conflicting.detail.contains("k-1"))
            #expect(try await Self.balance(world.billing, viewer.token) == 500)

            // 20 at once with one key: exactly one deposit, every answer the same.
            let answers = try await withThrowingTaskGroup(of: Client.Reply.self) { group in
                for _ in 0..<20 { group.addTask { try await Self.deposit(world.billing, viewer.token, amount: 300, key: "k-2") } }
                return try await group.reduce(into: [Client.Reply]()) { $0.append($1) }
            }
            #expect(answers.allSatisfy { $0.status == .created }, "\(answers.map(\.status))")
            #expect(Set(answers.map(\.body)).count == 1)
            #expect(try await Self.balance(world.billing, viewer.token) == 800)
            let statement = try await world.billing.send(.get, "/api/billing/statement?currency=EUR", token: viewer.token)
            #expect(statement.items.count == 2)
            #expect(statement.items.compactMap { $0["amount"] as? Int }.sorted() == [300, 500])

            // Validation and who may deposit.
            var noKey = try await world.billing.send(.post, "/api/billing/deposits", token: viewer.token, json: ["amount": 1, "currency": "EUR"])
            #expect(noKey.status == .badRequest)
            noKey = try await Self.deposit(world.billing, viewer.token, amount: 0, key: "k-3")
            #expect(noKey.status == .unprocessableContent)
            #expect(try await Self.deposit(world.billing, viewer.token, amount: 1, key: "k-4", currency: "eur").status == .unprocessableContent)
            let admin = try await Self.user(world, .admin, "admin@example.com")
            let other = try await Self.user(world, .viewer, "other@example.com")
            #expect(try await Self.deposit(world.billing, viewer.token, amount: 1, key: "k-5", userID: other.id).status == .forbidden)
            #expect(try await Self.deposit(world.billing, admin.token, amount: 70, key: "k-5", userID: other.id).status == .created)
            #expect(try await Self.balance(world.billing, other.token) == 70)
            try await Self.expectBalanced(world.service)
        }
    }

    @Test("Without billing.self_service_deposits a viewer cannot deposit to themselves")
    func selfServiceOff() async throws {
        try await Self.withBilling(.sqlite, configure: { $0.selfServiceDeposits = false }) { world in
            let viewer = try await Self.user(world, .viewer, "viewer@example.com")
            let refused = try await Self.deposit(world.billing, viewer.token, amount: 5, key: "a")
            #expect(refused.status == .forbidden)
            #expect(refused.detail.contains("self_service_deposits"))
        }
    }

    // MARK: - Sessions

    @Test("50 concurrent sessions on one wallet: the wallet pays exactly the minutes it holds, never below zero", arguments: DatabaseKind.allCases)
    func concurrentSessions(kind: DatabaseKind) async throws {
        try await Self.withBilling(kind) { world in
            let viewer = try await Self.user(world, .viewer, "viewer@example.com")
            #expect(try await Self.deposit(world.billing, viewer.token, amount: 60, key: "seed").status == .created)
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for n in 0..<50 {
                    group.addTask { try await Self.open(world.billing, session: "s-\(n)", user: viewer.id, price: 3).status }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .created }.count == 20, "\(statuses)")
            #expect(statuses.filter { $0.code == 402 }.count == 30)
            #expect(try await Self.balance(world.billing, viewer.token) == 0)
            let wallet = try await world.billing.send(.get, "/api/billing/wallet?currency=EUR", token: viewer.token)
            #expect(wallet.json["held"] as? Int == 60)
            try await Self.expectBalanced(world.service)
        }
    }

    @Test("A viewer sees their own billed sessions and statements, not another's; the cap refuses or ends the oldest", arguments: DatabaseKind.allCases)
    func permissionsAndCap(kind: DatabaseKind) async throws {
        try await Self.withBilling(kind, configure: { $0.maxSessionsPerViewer = 2 }) { world in
            let viewer = try await Self.user(world, .viewer, "viewer@example.com")
            let other = try await Self.user(world, .viewer, "other@example.com")
            let admin = try await Self.user(world, .admin, "admin@example.com")
            #expect(try await Self.deposit(world.billing, viewer.token, amount: 100, key: "seed").status == .created)
            #expect(try await Self.open(world.billing, session: "a", user: viewer.id, price: 5).status == .created)
            #expect(try await Self.open(world.billing, session: "b", user: viewer.id, price: 5).status == .created)
            let third = try await Self.open(world.billing, session: "c", user: viewer.id, price: 5)
            #expect(third.status == .conflict)
            #expect(third.detail.contains("active sessions"))

            let mine = try await world.billing.send(.get, "/api/billing/sessions/a", token: viewer.token)
            #expect(mine.status == .ok)
            #expect(mine["state"] == "active")
            #expect(mine["currency"] == "EUR")
            #expect(mine.json["billed_minutes"] as? Int == 0)
            #expect(try await world.billing.send(.get, "/api/billing/sessions/a", token: other.token).status == .notFound)
            #expect(try await world.billing.send(.get, "/api/billing/sessions/a", token: admin.token).status == .ok)
            #expect(try await world.billing.send(.get, "/api/billing/sessions/a").status == .unauthorized)
            let theirs = try await world.billing.send(.get, "/api/billing/statement?currency=EUR&user_id=\(viewer.id)", token: other.token)
            #expect(theirs.status == .forbidden)
            #expect(try await world.billing.send(.get, "/api/billing/wallet?currency=EUR&user_id=\(viewer.id)", token: other.token).status == .forbidden)
            #expect(try await world.billing.send(.get, "/api/billing/statement?currency=EUR&user_id=\(viewer.id)", token: admin.token).items.count == 3)
            // Viewers cannot open sessions themselves, nor read revenue.
            let forged = try await world.billing.send(
                .post, "/internal/billing/sessions", token: viewer.token,
                json: ["session_id": "x", "user_id": viewer.id, "title_id": "t", "owner": "o", "package_version": "v1", "price_per_minute": 0, "currency": "EUR"])
            #expect(forged.status == .forbidden)
            #expect(try await world.billing.send(.get, "/api/billing/revenue", token: viewer.token).status == .forbidden)

            // Ending releases the hold and revokes the URLs.
            var headers = HTTPFields()
            headers[.authorization] = Self.playbackCredential.authorization
            let ended = try await world.billing.send(.delete, "/internal/billing/sessions/a", headers: headers)
            #expect(ended["state"] == "ended")
            #expect(world.revoker.revoked.contains { $0.0 == "a" && $0.1 == .other })
            #expect(try await Self.balance(world.billing, viewer.token) == 95)
            #expect(try await Self.open(world.billing, session: "c", user: viewer.id, price: 5).status == .created)
            try await Self.expectBalanced(world.service)
        }
    }

    @Test("end_oldest: one session too many ends the viewer's oldest")
    func endOldest() async throws {
        try await Self.withBilling(.sqlite, configure: { $0.maxSessionsPerViewer = 1; $0.sessionCapPolicy = .endOldest }) { world in
            let viewer = try await Self.user(world, .viewer, "viewer@example.com")
            #expect(try await Self.deposit(world.billing, viewer.token, amount: 10, key: "seed").status == .created)
            #expect(try await Self.open(world.billing, session: "first", user: viewer.id, price: 10).status == .created)
            #expect(try await Self.open(world.billing, session: "second", user: viewer.id, price: 10).status == .created)
            #expect(try await world.billing.send(.get, "/api/billing/sessions/first", token: viewer.token)["state"] == "ended")
            #expect(world.revoker.revoked.map(\.0) == ["first"])
            try await Self.expectBalanced(world.service)
        }
    }

    @Test("Idle sessions end by themselves and give their hold back")
    func idleSessions() async throws {
        try await Self.withBilling(.sqlite, configure: { $0.sessionIdleSeconds = 10 }) { world in
            let viewer = try await Self.user(world, .viewer, "viewer@example.com")
            #expect(try await Self.deposit(world.billing, viewer.token, amount: 10, key: "seed").status == .created)
            #expect(try await Self.open(world.billing, session: "idle", user: viewer.id, price: 4).status == .created)
            try await world.service.housekeep()
            #expect(try await world.billing.send(.get, "/api/billing/sessions/idle", token: viewer.token)["state"] == "active")
            try await world.service.housekeep(now: unixMilliseconds() + 11_000)
            let session = try await world.billing.send(.get, "/api/billing/sessions/idle", token: viewer.token)
            #expect(session["state"] == "ended")
            #expect(session["end_reason"] == "idle")
            #expect(try await Self.balance(world.billing, viewer.token) == 10)
            #expect(world.revoker.revoked.map(\.0) == ["idle"])
        }
    }

    // MARK: - The meter

    /// A package of 6-second segments: `master.m3u8` and one media playlist.
    static func package(segments: Int) throws -> (store: FileSystemStore, folder: String) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-billing-\(UUID().uuidString)").path
        let folder = root + "/titles/title-1/v1/"
        try FileManager.default.createDirectory(atPath: folder + "video/720p", withIntermediateDirectories: true)
        try "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=3000000\nvideo/720p/index.m3u8\n".write(toFile: folder + "master.m3u8", atomically: true, encoding: .utf8)
        var media = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MAP:URI=\"init.mp4\"\n"
        for n in 0..<segments { media += "#EXTINF:6.000,\nseg_\(n).m4s\n" }
        media += "#EXT-X-ENDLIST\n"
        try media.write(toFile: folder + "video/720p/index.m3u8", atomically: true, encoding: .utf8)
        return (try FileSystemStore(root: root), folder)
    }

    static func delivered(_ session: String, segments: Range<Int>) -> [DeliveryRecord] {
        segments.map { n in
            DeliveryRecord(
                endMicroseconds: Int64(Date().timeIntervalSince1970 * 1_000_000), durationMicroseconds: 1000, status: 200, bytesSent: 1000,
                objectSize: 1000, sessionID: session, titleID: "title-1", packageVersion: "v1", objectPath: "video/720p/seg_\(n).m4s")
        }
    }

    static func transferCount(_ service: BillingService) async throws -> Int64 {
        try await service.database.first("SELECT COUNT(*) AS n FROM billing_transfers")?.int("n") ?? 0
    }

    @Test("The meter charges each minute once, however often the same records are replayed", arguments: DatabaseKind.allCases)
    func meterChargesOnce(kind: DatabaseKind) async throws {
        try await Self.withBilling(kind, configure: { $0.platformFeePercent = 20 }) { world in
            let viewer = try await Self.user(world, .viewer, "viewer@example.com")
            let publisher = try await Self.user(world, .publisher, "publisher@example.com")
            #expect(try await Self.deposit(world.billing, viewer.token, amount: 100, key: "seed").status == .created)
            #expect(try await Self.open(world.billing, session: "watch", user: viewer.id, price: 10, owner: publisher.id).status == .created)
            let (store, _) = try Self.package(segments: 40)
            let deliveries = MemoryDeliveries()
            let meter = Meter(service: world.service, source: deliveries, timelines: PackageTimelines(store: store), batchSize: 7)
            // 13 segments of 6 s = 78 s: 2 minutes. Playlists and init segments are not media time.
            var records = Self.delivered("watch", segments: 0..<13)
            records.insert(
                DeliveryRecord(endMicroseconds: 0, durationMicroseconds: 1, status: 200, bytesSent: 1, objectSize: 1, sessionID: "watch", titleID: "title-1",
                    packageVersion: "v1", objectPath: "video/720p/index.m3u8"), at: 0)
            records += Self.delivered("watch", segments: 3..<5)  // re-delivered: no new time
            records += Self.delivered("someone-else", segments: 0..<3)  // no such billed session
            deliveries.append(records)
            while try await meter.runOnce() > 0 {}
            #expect(try await meter.position() == UInt64(records.count))
            var session = try await world.billing.send(.get, "/api/billing/sessions/watch", token: viewer.token)
            #expect(session.json["billed_minutes"] as? Int == 2)
            #expect(session.json["charged"] as? Int == 20)
            #expect((session.json["covered_seconds"] as? NSNumber)?.doubleValue == 78)
            #expect(session["state"] == "active")
            // 100 - 2 minutes - the third held.
            #expect(try await Self.balance(world.billing, viewer.token) == 70)
            let transfers = try await Self.transferCount(world.service)

            // A crash after the charges but before the position was stored would replay: the
            // same batch from the start changes nothing.
            try await world.service.database.execute("UPDATE billing_positions SET position = 0")
            while try await meter.runOnce() > 0 {}
            #expect(try await Self.transferCount(world.service) == transfers)
            // Worse: the session's coverage lost too, and the meter restarted (its memory of the
            // sessions it wrote gone with it). Each minute's transfers keep their ids.
            try await world.service.database.execute("UPDATE billing_positions SET position = 0")
            let empty = String(decoding: try JSONEncoder().encode(SessionCoverage()), as: UTF8.self)
            try await world.service.database.execute(
                "UPDATE billing_sessions SET coverage = $1, billed_minutes = 0, covered_us = 0 WHERE id = 'watch'", empty)
            let restarted = Meter(service: world.service, source: deliveries, timelines: PackageTimelines(store: store), batchSize: 7)
            while try await restarted.runOnce() > 0 {}
            #expect(try await Self.transferCount(world.service) == transfers)
            #expect(try await Self.balance(world.billing, viewer.token) == 70)
            session = try await world.billing.send(.get, "/api/billing/sessions/watch", token: viewer.token)
            #expect(session.json["billed_minutes"] as? Int == 2)

            // Revenue: the publisher's title, split 80/20.
            let revenue = try await world.billing.send(.get, "/api/billing/revenue", token: publisher.token)
            #expect(revenue.status == .ok)
            let line = try #require(revenue.items.first)
            #expect(line["title_id"] as? String == "title-1")
            #expect(line["minutes"] as? Int == 2)
            #expect(line["gross"] as? Int == 20)
            #expect(line["publisher"] as? Int == 16)
            #expect(line["platform_fee"] as? Int == 4)
            #expect(line["currency"] as? String == "EUR")
            let another = try await Self.user(world, .publisher, "another@example.com")
            #expect(try await world.billing.send(.get, "/api/billing/revenue", token: another.token).items.isEmpty)
            let admin = try await Self.user(world, .admin, "admin@example.com")
            #expect(try await world.billing.send(.get, "/api/billing/revenue?from=2000-01-01", token: admin.token).items.count == 1)
            #expect(try await world.billing.send(.get, "/api/billing/revenue?from=yesterday", token: admin.token).status == .unprocessableContent)
            try await Self.expectBalanced(world.service)
        }
    }

    @Test("Two meters take turns on one log, and a session ends through the API between batches: a meter reloads what it did not write",
        arguments: DatabaseKind.allCases)
    func meterMemoryFollowsOtherWriters(kind: DatabaseKind) async throws {
        try await Self.withBilling(kind) { world in
            let viewer = try await Self.user(world, .viewer, "viewer@example.com")
            #expect(try await Self.deposit(world.billing, viewer.token, amount: 100, key: "seed").status == .created)
            #expect(try await Self.open(world.billing, session: "turns", user: viewer.id, price: 10).status == .created)
            let (store, _) = try Self.package(segments: 40)
            let deliveries = MemoryDeliveries()
            let first = Meter(service: world.service, source: deliveries, timelines: PackageTimelines(store: store))
            let second = Meter(service: world.service, source: deliveries, timelines: PackageTimelines(store: store))
            deliveries.append(Self.delivered("turns", segments: 0..<5))  // 0-30 s: minute 1 from the hold, minute 2 held
            try await first.runOnce()
            #expect(try await Self.balance(world.billing, viewer.token) == 80)
            deliveries.append(Self.delivered("turns", segments: 5..<10))  // 30-60 s, metered by the other meter
            try await second.runOnce()
            // 60-90 s: minute 2. A first meter that trusted its memory (0-30 s) would see 60 s.
            deliveries.append(Self.delivered("turns", segments: 10..<15))
            try await first.runOnce()
            var session = try await world.billing.send(.get, "/api/billing/sessions/turns", token: viewer.token)
            #expect(session.json["billed_minutes"] as? Int == 2)
            #expect((session.json["covered_seconds"] as? NSNumber)?.doubleValue == 90)
            #expect(try await Self.balance(world.billing, viewer.token) == 70)  // minute 3 held

            // Ended through the API: the hold goes back to the wallet.
            var headers = HTTPFields()
            headers[.authorization] = Self.playbackCredential.authorization
            #expect(try await world.billing.send(.delete, "/internal/billing/sessions/turns", headers: headers).status == .ok)
            #expect(try await Self.balance(world.billing, viewer.token) == 80)
            // Minute 3, delivered before the end and metered after it, is paid from the wallet: a
            // meter that remembered the session active with a full hold would charge the hold.
            deliveries.append(Self.delivered("turns", segments: 15..<21))
            try await second.runOnce()
            session = try await world.billing.send(.get, "/api/billing/sessions/turns", token: viewer.token)
            #expect(session["state"] == "ended")
            #expect(session.json["billed_minutes"] as? Int == 3)
            #expect(session.json["charged"] as? Int == 30)
            #expect(try await Self.balance(world.billing, viewer.token) == 70)
            try await Self.expectBalanced(world.service)
        }
    }

    @Test("When the wallet cannot pay the next minute, the rest is written off and the session revoked for funds", arguments: DatabaseKind.allCases)
    func fundsExhausted(kind: DatabaseKind) async throws {
        try await Self.withBilling(kind) { world in
            let viewer = try await Self.user(world, .viewer, "viewer@example.com")
            #expect(try await Self.deposit(world.billing, viewer.token, amount: 25, key: "seed").status == .created)
            #expect(try await Self.open(world.billing, session: "short", user: viewer.id, price: 10).status == .created)
            let (store, _) = try Self.package(segments: 40)
            let deliveries = MemoryDeliveries()
            let meter = Meter(service: world.service, source: deliveries, timelines: PackageTimelines(store: store))
            deliveries.append(Self.delivered("short", segments: 0..<5))  // 30 s: minute 1, paid by the hold
            try await meter.runOnce()
            #expect(try await Self.balance(world.billing, viewer.token) == 5)  // minute 2 held
            #expect(world.revoker.revoked.isEmpty)
            deliveries.append(Self.delivered("short", segments: 5..<25))  // to 150 s: minutes 2 and 3
            try await meter.runOnce()
            let session = try await world.billing.send(.get, "/api/billing/sessions/short", token: viewer.token)
            #expect(session["state"] == "revoked")
            #expect(session["end_reason"] == "funds")
            #expect(session.json["billed_minutes"] as? Int == 3)
            #expect(session.json["metered_minutes"] as? Int == 3)
            #expect(session.json["charged"] as? Int == 25)  // all the viewer had
            #expect(session.json["written_off"] as? Int == 5)
            #expect(try await Self.balance(world.billing, viewer.token) == 0)
            #expect(world.revoker.revoked.count == 1)
            #expect(world.revoker.revoked.first?.0 == "short")
            #expect(world.revoker.revoked.first?.1 == .funds)
            try await Self.expectBalanced(world.service)
        }
    }

    @Test("Funds for exactly three minutes: all three play, the first touch of minute four is written off and revokes", arguments: DatabaseKind.allCases)
    func paidMinutesPlayToTheirEnd(kind: DatabaseKind) async throws {
        try await Self.withBilling(kind) { world in
            let viewer = try await Self.user(world, .viewer, "viewer@example.com")
            #expect(try await Self.deposit(world.billing, viewer.token, amount: 30, key: "seed").status == .created)
            #expect(try await Self.open(world.billing, session: "three", user: viewer.id, price: 10).status == .created)
            let (store, _) = try Self.package(segments: 40)
            let deliveries = MemoryDeliveries()
            let meter = Meter(service: world.service, source: deliveries, timelines: PackageTimelines(store: store))
            deliveries.append(Self.delivered("three", segments: 0..<30))  // 180 s: minutes 1 to 3, all paid
            try await meter.runOnce()
            var session = try await world.billing.send(.get, "/api/billing/sessions/three", token: viewer.token)
            #expect(session["state"] == "active", "a viewer who paid for minute three may watch it to its end")
            #expect(session.json["billed_minutes"] as? Int == 3)
            #expect(session.json["charged"] as? Int == 30)
            #expect(try await Self.balance(world.billing, viewer.token) == 0)
            #expect(world.revoker.revoked.isEmpty)
            deliveries.append(Self.delivered("three", segments: 30..<31))  // into minute four
            try await meter.runOnce()
            session = try await world.billing.send(.get, "/api/billing/sessions/three", token: viewer.token)
            #expect(session["state"] == "revoked")
            #expect(session.json["billed_minutes"] as? Int == 3)
            #expect(session.json["metered_minutes"] as? Int == 4)
            #expect(session.json["charged"] as? Int == 30)
            #expect(session.json["written_off"] as? Int == 10)
            #expect(try await Self.balance(world.billing, viewer.token) == 0)
            #expect(world.revoker.revoked.map(\.0) == ["three"])
            try await Self.expectBalanced(world.service)
        }
    }

    @Test("The meter reads the gateways' local log, and notes its position beside it after each commit")
    func meterReadsTheLocalLog() async throws {
        try await Self.withBilling(.sqlite) { world in
            let viewer = try await Self.user(world, .viewer, "viewer@example.com")
            #expect(try await Self.deposit(world.billing, viewer.token, amount: 100, key: "seed").status == .created)
            #expect(try await Self.open(world.billing, session: "logged", user: viewer.id, price: 7).status == .created)
            let (store, _) = try Self.package(segments: 40)
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-deliveries-\(UUID().uuidString)").path
            let writer = try DeliveryLogWriter(
                directory: folder, identity: DeliveryLogIdentity(gatewayID: "edge-1", role: "edge", region: "eu", boot: 1),
                segmentBytes: 256 + 8 * DeliveryRecordLayout.size)
            let records = Self.delivered("logged", segments: 0..<15)  // 90 s: 2 minutes, over two segments
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: records.count * DeliveryRecordLayout.size, alignment: 8)
            defer { buffer.deallocate() }
            for (i, record) in records.enumerated() {
                #expect(!DeliveryRecordLayout.encode(record, into: buffer.baseAddress! + i * DeliveryRecordLayout.size), "truncated")
            }
            try writer.append(UnsafeRawBufferPointer(buffer))
            try writer.sync()
            let meter = Meter(service: world.service, source: LocalDeliveryLog(directory: folder), timelines: PackageTimelines(store: store), batchSize: 4)
            while try await meter.runOnce() > 0 {}
            #expect(try await meter.position() == 15)
            #expect(DeliveryLogConsumers.lowestCommitted(in: folder) == 15)
            let session = try await world.billing.send(.get, "/api/billing/sessions/logged", token: viewer.token)
            #expect(session.json["billed_minutes"] as? Int == 2)
            #expect(session.json["charged"] as? Int == 14)
            try await Self.expectBalanced(world.service)
        }
    }

    @Test("Free titles are never charged, however much is delivered")
    func freeTitles() async throws {
        try await Self.withBilling(.sqlite) { world in
            let viewer = try await Self.user(world, .viewer, "viewer@example.com")
            #expect(try await Self.open(world.billing, session: "free", user: viewer.id, price: 0).status == .created)
            let (store, _) = try Self.package(segments: 40)
            let deliveries = MemoryDeliveries()
            deliveries.append(Self.delivered("free", segments: 0..<40))
            let meter = Meter(service: world.service, source: deliveries, timelines: PackageTimelines(store: store))
            while try await meter.runOnce() > 0 {}
            let session = try await world.billing.send(.get, "/api/billing/sessions/free", token: viewer.token)
            #expect(session["state"] == "active")
            #expect(session.json["billed_minutes"] as? Int == 4)
            #expect(session.json["charged"] as? Int == 0)
            #expect(try await Self.transferCount(world.service) == 0)
            #expect(world.revoker.revoked.isEmpty)
        }
    }

    @Test("Revocations reach a gateway's admin listener as POST /revocations with its bearer secret")
    func adminListenerRevocation() async throws {
        let seen = NIOLockedValueBox<[String]>([])
        let router = Router()
        router.post("/revocations") { request, _ -> Response in
            guard request.headers[.authorization] == "Bearer admin-secret" else { return Response(status: .unauthorized) }
            seen.withLockedValue { $0.append(request.uri.query ?? "") }
            return Response(status: .ok)
        }
        try await Application(router: router).test(.live) { client in
            let port = try #require(client.port)
            // A generous deadline: under the full suite's load two cores may take seconds to answer.
            try await GatewayAdminRevoker(admins: ["127.0.0.1:\(port)"], bearer: "admin-secret", timeout: .seconds(60))
                .revoke("s-1", reason: .funds, ttlSeconds: 600)
            #expect(seen.withLockedValue { $0 } == ["session=s-1&reason=funds&ttl=600"])
            await #expect(throws: ServiceError.self) {
                try await GatewayAdminRevoker(admins: ["127.0.0.1:\(port)"], bearer: "wrong", timeout: .seconds(60)).revoke("s-2", reason: .other, ttlSeconds: 600)
            }
        }
    }

    @Test("With Redis, revocations are published where every gateway's feed finds them")
    func redisRevocation() async throws {
        let server = try RedisServer()
        let endpoint = try RedisEndpoint(parsing: server.url)
        try await RedisSessionRevoker(endpoint: endpoint).revoke("broke-1", reason: .funds, ttlSeconds: 600)
        // A gateway starting now loads it from the sorted set.
        let list = RevocationList()
        let feed = RedisRevocationFeed(endpoint: endpoint, list: list)
        feed.start()
        defer { feed.stop() }
        let now = Int64(Date().timeIntervalSince1970)
        #expect(waitUntil(timeout: .seconds(5), interval: .milliseconds(5)) { list.isRevoked("broke-1", nowSeconds: now) == .funds })
    }

    // MARK: - Through playback

    @Test("Playback: a priced title needs a minute's funds (402 naming the shortfall), free titles none; DELETE ends and revokes", arguments: DatabaseKind.allCases)
    func throughPlayback(kind: DatabaseKind) async throws {
        try await Self.withBilling(kind) { world in
            var settings = PlaybackSettings()
            settings.database = try kind.freshURL()
            settings.catalogURL = "http://127.0.0.1:\(try #require(world.catalog.client.port))"
            settings.tokenKey = PlaybackSessionTests.key
            settings.publicURL = "http://cdn.example.test:8080/"
            settings.billingURL = "http://127.0.0.1:\(try #require(world.billing.client.port))"
            settings.billingCredential = Self.playbackCredential
            settings.catalogCredential = Self.catalogCredential
            let playback = try await PlaybackService.open(settings, jwks: world.services.auth.jwksSource)
            do {
                try await Application(router: playback.router()).test(.live) { client in
                    let playbackClient = Client(client)
                    let publisher = try await Self.user(world, .publisher, "publisher@example.com")
                    let viewer = try await Self.user(world, .viewer, "viewer@example.com")
                    let other = try await Self.user(world, .viewer, "other@example.com")
                    let priced = try await PlaybackSessionTests.publishedTitle(world.catalog, publisher: publisher.token)  // 2 EUR a minute
                    let free = try await PlaybackSessionTests.publishedTitle(world.catalog, publisher: publisher.token, extra: ["price_per_minute": 0])

                    let refused = try await PlaybackSessionTests.start(playbackClient, viewer.token, priced)
                    #expect(refused.status.code == 402, "\(refused.text)")
                    #expect(refused.headers[.contentType] == "application/problem+json")
                    #expect(refused.detail.contains("deposit at least 2"), "\(refused.detail)")
                    #expect(try await PlaybackSessionTests.start(playbackClient, other.token, free).status == .created)

                    #expect(try await Self.deposit(world.billing, viewer.token, amount: 5, key: "top-up").status == .created)
                    let started = try await PlaybackSessionTests.start(playbackClient, viewer.token, priced)
                    #expect(started.status == .created, "\(started.text)")
                    let id = try #require(started["id"])
                    let billed = try await world.billing.send(.get, "/api/billing/sessions/\(id)", token: viewer.token)
                    #expect(billed["state"] == "active")
                    #expect(billed.json["price_per_minute"] as? Int == 2)
                    #expect(try await Self.balance(world.billing, viewer.token) == 3)
                    // Revenue goes to the title's owner, whom playback learned with its own credential.
                    let row = try await world.service.database.first("SELECT owner FROM billing_sessions WHERE id = $1", id)
                    #expect(try row?.string("owner") == publisher.id)

                    #expect(try await playbackClient.send(.delete, "/api/playback/sessions/\(id)", token: other.token).status == .notFound)
                    #expect(try await playbackClient.send(.delete, "/api/playback/sessions/\(id)", token: viewer.token).status == .noContent)
                    #expect(try await world.billing.send(.get, "/api/billing/sessions/\(id)", token: viewer.token)["state"] == "ended")
                    #expect(world.revoker.revoked.contains { $0.0 == id && $0.1 == .other })
                    #expect(try await Self.balance(world.billing, viewer.token) == 5)
                    try await Self.expectBalanced(world.service)

                    // Playback fails after billing opened the session: the session is ended and
                    // its hold given back at once, not when it would go idle.
                    _ = try await playback.database.query("DROP TABLE playback_sessions", [])
                    let failed = try await PlaybackSessionTests.start(playbackClient, viewer.token, priced)
                    #expect(failed.status.code >= 500, "\(failed.text)")
                    let open = try await world.service.database.first(
                        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM billing_sessions WHERE user_id = $1 AND state = 'active'", viewer.id)
                    #expect(try open?.int("n") == 0)
                    #expect(try await Self.balance(world.billing, viewer.token) == 5)
                    try await Self.expectBalanced(world.service)
                }
            } catch {
                await playback.close()
                throw error
            }
            await playback.close()
        }
    }

    @Test("/openapi.yaml documents exactly the routes it serves")
    func contract() async throws {
        var settings = BillingSettings()
        settings.database = try DatabaseKind.sqlite.freshURL()
        let billing = try await BillingService.open(settings, jwks: LocalTestJWKS())
        let documented = OpenAPIOperations.documented(in: BillingService.openAPI)
        let routed = ContractTests.routedOperations(billing.router())
        #expect(!documented.isEmpty)
        #expect(documented == routed, "documented \(documented.sorted()) vs served \(routed.sorted())")
        await billing.close()
    }
}

extension BillingServiceTests {
    @Test("Transfer days: the UTC calendar day, the same through the one-day cache, back and forth across midnight and years")
    func transferDays() {
        let midnight: Int64 = 1_798_761_600_000  // 2027-01-01T00:00:00Z
        #expect(Ledger.day(midnight) == "2027-01-01")
        #expect(Ledger.day(midnight - 1) == "2026-12-31")
        #expect(Ledger.day(0) == "1970-01-01")
        #expect(Ledger.day(-1) == "1969-12-31")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let t = midnight + Int64.random(in: -3 * 86_400_000...3 * 86_400_000, using: &generator)
            #expect(Ledger.day(t) == Ledger.calendarDay(t), "\(t)")
        }
    }
}
