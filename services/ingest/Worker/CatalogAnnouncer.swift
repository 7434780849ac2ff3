import AsyncHTTPClient
import Foundation
import HTTPTypes
import MarqueeMedia
import MarqueeServiceKit
import NIOCore
import NIOHTTP1

/// Tells the catalog a package is ready (`PUT /api/catalog/titles/{id}/package`) with ingest's
/// service credential (`attach_packages`), which lets it do that and nothing else: no user's
/// account, password or token is involved.
public struct CatalogAnnouncer: PackageAnnouncer {
    let catalogURL: String
    let credential: ServiceCredential

    public init(catalogURL: String, credential: ServiceCredential) {
        self.catalogURL = catalogURL.hasSuffix("/") ? String(catalogURL.dropLast()) : catalogURL
        self.credential = credential
    }

    public func announce(titleID: String, version: String, summary: PackageSummary) async throws {
        struct Body: Encodable {
            struct Rendition: Encodable {
                let name: String
                let width: Int
                let height: Int
                let bandwidth: Int
                let codecs: String
                let frame_rate: Double
            }
            let package_version: String
            let renditions: [Rendition]
            let duration_seconds: Int
        }
        let body = Body(
            package_version: version,
            renditions: summary.renditions.map {
                .init(name: $0.name, width: $0.width, height: $0.height, bandwidth: $0.bandwidth, codecs: $0.codecs, frame_rate: $0.frameRate)
            }, duration_seconds: max(1, Int(summary.durationSeconds.rounded())))
        var request = HTTPClientRequest(url: "\(catalogURL)/api/catalog/titles/\(titleID)/package")
        request.method = .PUT
        request.headers.add(name: "Authorization", value: credential.authorization)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status == .ok else { throw ServiceError(.badGateway, "the catalog refused the package: \(response.status.code) \(text)") }
    }
}
