import Foundation
import HTTPTypes
import MarqueePolicy
import MarqueeServiceKit
import NIOCore

/// What playback needs of a catalog title: its access rule and its current package.
struct PlayableTitle: Sendable {
    let rule: TitleRule
    let packageVersion: String?
    let durationSeconds: Int?
    let name: String
    let pricePerMinute: Int64
    let currency: String
    /// Who owns it; only shown to publishers, admins and services.
    let owner: String?
}

/// A catalog title on the viewer's behalf, read as playback needs it.
struct CatalogTitles: Sendable {
    let lookup: CatalogTitleLookup

    init(catalogURL: String) {
        lookup = CatalogTitleLookup(catalogURL: catalogURL)
    }

    private struct Title: Decodable {
        struct Geo: Decodable {
            let mode: String
            let countries: [String]
        }
        struct Package: Decodable {
            let version: String
        }
        let id: String
        let name: String
        let status: String
        let geo: Geo?
        let available_from: String?
        let available_until: String?
        let duration_seconds: Int?
        let package: Package?
        let price_per_minute: Int64?
        let currency: String?
        let created_by: String?
    }

    /// The title, or nil when the catalog does not show it to this caller (404).
    func title(_ id: String, authorization: String) async throws -> PlayableTitle? {
        guard let body = try await lookup.titleJSON(id, authorization: authorization) else { return nil }
        let title: Title
        do {
            title = try JSONDecoder().decode(Title.self, from: Data(body.readableBytesView))
        } catch {
            throw ServiceError(.badGateway, "the catalog's answer for title \(id) is not a title: \(error)")
        }
        var geo: TitleRule.GeoMode?
        if let g = title.geo {
            let codes = g.countries.compactMap(CountryCode.init)
            geo = g.mode == "allow" ? .allow(codes) : .deny(codes)
        }
        return PlayableTitle(
            rule: TitleRule(
                id: title.id, isPublished: title.status == "published",
                availableFrom: title.available_from.flatMap(parseRFC3339).map { $0 / 1000 },
                availableUntil: title.available_until.flatMap(parseRFC3339).map { $0 / 1000 }, geo: geo),
            packageVersion: title.package?.version, durationSeconds: title.duration_seconds, name: title.name,
            pricePerMinute: title.price_per_minute ?? 0, currency: title.currency ?? "", owner: title.created_by)
    }
}
