import Foundation
import HTTPTypes
import Hummingbird
import MarqueeServiceKit
import ServiceLifecycle

/// `GET /internal/access-rules`: what the gateways need to decide on media requests, for every
/// title past draft: status, geo rules, availability window (Unix seconds). The document carries
/// a version (also its ETag) that every title write increments in the same transaction. A gateway
/// sends `If-None-Match` with `wait=N` (≤ 60 s) and is answered as soon as the version moves, or
/// with 304 when N seconds pass without change: a long poll, so rules reach the edge as soon as
/// the write commits.
///
/// It is for gateways, not the public: its path is outside `/api/`, so no gateway proxies it,
/// and it needs the gateways' service credential (`read_access_rules`) or an admin's token.
/// A waiting poll makes no query: this instance's writes wake it (`AccessRulesChanges`), and
/// one waiter at a time asks the database every `recheck` for changes made by other instances.
/// At most `maxWaiting` polls wait at once; one more gets 503 with `Retry-After`.
struct AccessRulesFeed: Sendable {
    let database: any Database
    let changes = AccessRulesChanges()
    let maxWaiting: Int
    let recheck: Duration

    struct Document: Encodable {
        struct Title: Encodable {
            let id: String
            let status: TitleStatus
            let geo: GeoRules?
            let available_from: Int64?
            let available_until: Int64?
            let package_version: String?

            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(id, forKey: .id)
                try c.encode(status, forKey: .status)
                try c.encode(geo, forKey: .geo)
                try c.encode(available_from, forKey: .available_from)
                try c.encode(available_until, forKey: .available_until)
                try c.encode(package_version, forKey: .package_version)
            }
            enum CodingKeys: String, CodingKey { case id, status, geo, available_from, available_until, package_version }
        }
        let version: Int64
        let titles: [Title]
    }

    /// Called inside every transaction that changes a title.
    static func bump(_ tx: any SQLExecutor) async throws {
        try await tx.execute("UPDATE catalog_state SET value = value + 1 WHERE key = 'rules_version'")
    }

    func version() async throws -> Int64 {
        guard let row = try await database.first("SELECT value FROM catalog_state WHERE key = 'rules_version'") else { return 0 }
        return try row.int("value")
    }

    /// Titles changed in this instance (after the transaction committed): wakes the waiting polls.
    func changed() { changes.notify() }

    func respond(to request: Request, _ context: ServiceRequestContext) async throws -> Response {
        try context.require(.readAccessRules, or: .admin)
        var wait = 0
        if let text = request.uri.queryParameters["wait"] {
            guard let seconds = Int(text), (0...60).contains(seconds) else { throw ServiceError.invalid("wait", "must be 0 to 60 seconds") }
            wait = seconds
        }
        let known = request.headers[.ifNoneMatch]
        let deadline = ContinuousClock.now + .seconds(wait)
        // The generation is taken before the version is read, so a write committed in between
        // still ends the wait.
        var seen = changes.generation
        var current = try await version()
        if known == Self.entityTag(current) && wait > 0 {
            guard changes.admit(limit: maxWaiting) else {
                var headers = HTTPFields()
                headers[.retryAfter] = "1"
                throw ServiceError(.serviceUnavailable, "\(maxWaiting) access-rules polls are waiting already; retry", headers: headers)
            }
            defer { changes.leave() }
            // A long poll ends at once when the service shuts down, so it never holds up a drain.
            try await withGracefulShutdownHandler {
                while known == Self.entityTag(current) {
                    guard ContinuousClock.now < deadline, !Task.isShuttingDownGracefully, !Task.isCancelled, !changes.isClosed else { return }
                    await changes.wait(after: seen, until: min(deadline, .now + recheck))
                    let rechecking = changes.claimRecheck(every: recheck)
                    guard changes.generation != seen || rechecking else { continue }
                    seen = changes.generation
                    let before = current
                    current = try await version()
                    // Another instance changed the rules: the other polls here learn it too.
                    if rechecking && current != before { changes.notify() }
                }
            } onGracefulShutdown: { [changes] in
                changes.close()
            }
        }
        if known == Self.entityTag(current) {
            return Response(status: .notModified, headers: [.eTag: Self.entityTag(current), .cacheControl: "no-cache"])
        }
        // Read the titles and the version in one transaction so the ETag matches the body.
        let document = try await database.transaction { tx in
            let version = try await tx.first("SELECT value FROM catalog_state WHERE key = 'rules_version'").map { try $0.int("value") } ?? 0
            let rows = try await tx.query("SELECT \(TitleRecord.columns) FROM titles WHERE status <> 'draft' ORDER BY id", [])
            let titles = try rows.map(TitleRecord.init).map {
                Document.Title(
                    id: $0.id, status: $0.status, geo: $0.geo, available_from: $0.availableFrom.map { $0 / 1000 },
                    available_until: $0.availableUntil.map { $0 / 1000 }, package_version: $0.packageVersion)
            }
            return Document(version: version, titles: titles)
        }
        return try jsonResponse(document, headers: [.eTag: Self.entityTag(document.version), .cacheControl: "no-cache"])
    }

    static func entityTag(_ version: Int64) -> String { "\"\(version)\"" }
}
