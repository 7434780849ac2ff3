import AsyncHTTPClient
import Foundation
import HTTPTypes
import MarqueePolicy
import MarqueeServiceKit
import NIOCore
import NIOHTTP1

/// What playback needs of a catalog title: its access rule and its current package.
struct PlayableTitle: Sendable {
    let rule: TitleRule
    let packageVersion: String?
    let durationSeconds: Int?
    let name: String
}

/// Asks the catalog for one title on the viewer's behalf (their bearer token is passed on, so
/// the catalog shows them exactly what it would show them directly).
struct CatalogTitles: Sendable {
    let catalogURL: String

    init(catalogURL: String) {
        self.catalogURL = catalogURL.hasSuffix("/") ? String(catalogURL.dropLast()) : catalogURL
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
    }

    /// The title, or nil when the catalog does not show it to this caller (404).
    func title(_ id: String, authorization: String) async throws -> PlayableTitle? {
        var request = HTTPClientRequest(url: "\(catalogURL)/api/catalog/titles/\(id)")
        request.headers.add(name: "Authorization", value: authorization)
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw ServiceError(.badGateway, "the catalog did not answer: \(error)")
        }
        switch response.status {
        case .ok: break
        case .notFound: return nil
        case .unauthorized: throw ServiceError.unauthorized("the catalog refused the access token")
        default: throw ServiceError(.badGateway, "the catalog answered \(response.status.code) for title \(id)")
        }
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
            packageVersion: title.package?.version, durationSeconds: title.duration_seconds, name: title.name)
    }
}
