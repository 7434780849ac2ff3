import AsyncHTTPClient
import HTTPTypes
import NIOCore
import NIOHTTP1

/// Asks the catalog for one title on a caller's behalf: their bearer token is passed on, so the
/// catalog shows them exactly what it would show them directly (drafts to their publisher,
/// nothing hidden to viewers). Playback reads the title's rules from it; ingest checks that an
/// upload names a title the uploader can see.
public struct CatalogTitleLookup: Sendable {
    public let catalogURL: String

    public init(catalogURL: String) {
        self.catalogURL = catalogURL.hasSuffix("/") ? String(catalogURL.dropLast()) : catalogURL
    }

    /// The title's JSON, or nil when the catalog does not show it to this caller (404).
    /// - Throws: `ServiceError` 401 when the catalog refuses the token, 502 when it cannot be
    ///   reached or answers anything else.
    public func titleJSON(_ id: String, authorization: String?) async throws -> ByteBuffer? {
        var request = HTTPClientRequest(url: "\(catalogURL)/api/catalog/titles/\(id)")
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw ServiceError(.badGateway, "the catalog did not answer: \(error)")
        }
        switch response.status {
        case .ok: return body
        case .notFound: return nil
        case .unauthorized: throw ServiceError.unauthorized("the catalog refused the access token")
        default: throw ServiceError(.badGateway, "the catalog answered \(response.status.code) for title \(id)")
        }
    }
}
