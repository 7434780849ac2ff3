import Foundation
import HTTPTypes
import Hummingbird
import MarqueeServiceKit
import ServiceLifecycle

/// `GET /api/catalog/access-rules`: what the gateways need to decide on media requests, for every
/// title past draft: status, geo rules, availability window (Unix seconds). The document carries
/// a version (also its ETag) that every title write increments in the same transaction. A gateway
/// sends `If-None-Match` with `wait=N` (≤ 60 s) and is answered as soon as the version moves, or
/// with 304 when N seconds pass without change: a long poll, so rules reach the edge within about
/// a quarter of a second of the write.
struct AccessRulesFeed: Sendable {
    let database: any Database

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

    func respond(to request: Request) async throws -> Response {
        var wait = 0
        if let text = request.uri.queryParameters["wait"] {
            guard let seconds = Int(text), (0...60).contains(seconds) else { throw ServiceError.invalid("wait", "must be 0 to 60 seconds") }
            wait = seconds
        }
        let known = request.headers[.ifNoneMatch]
        let deadline = ContinuousClock.now + .seconds(wait)
        var current = try await version()
        while known == Self.entityTag(current) {
            // A long poll ends at once when the service shuts down, so it never holds up a drain.
            guard ContinuousClock.now < deadline, !Task.isShuttingDownGracefully else {
                return Response(status: .notModified, headers: [.eTag: Self.entityTag(current), .cacheControl: "no-cache"])
            }
            try await Task.sleep(for: .milliseconds(250))
            current = try await version()
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
