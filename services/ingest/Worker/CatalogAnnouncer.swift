import AsyncHTTPClient
import Foundation
import HTTPTypes
import MarqueeMedia
import MarqueeServiceKit
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Tells the catalog a package is ready (`PUT /api/catalog/titles/{id}/package`), signed in as a
/// publisher service account: it logs in to the auth service and signs in again shortly before
/// the access token expires.
public final class CatalogAnnouncer: PackageAnnouncer {
    let catalogURL: String
    let authURL: String
    let email: String
    let password: String
    private let token = NIOLockedValueBox<(value: String, expires: Date)?>(nil)

    public init(catalogURL: String, authURL: String, email: String, password: String) {
        self.catalogURL = catalogURL.hasSuffix("/") ? String(catalogURL.dropLast()) : catalogURL
        self.authURL = authURL.hasSuffix("/") ? String(authURL.dropLast()) : authURL
        self.email = email
        self.password = password
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
        request.headers.add(name: "Authorization", value: "Bearer \(try await accessToken())")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status == .ok else { throw ServiceError(.badGateway, "the catalog refused the package: \(response.status.code) \(text)") }
    }

    func accessToken() async throws -> String {
        if let cached = token.withLockedValue({ $0 }), cached.expires.timeIntervalSinceNow > 60 { return cached.value }
        var request = HTTPClientRequest(url: "\(authURL)/api/auth/login")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(["email": email, "password": password])))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let data = Data(try await response.body.collect(upTo: 1 << 20).readableBytesView)
        struct Tokens: Decodable {
            let access_token: String
            let expires_in: Int
        }
        guard response.status == .ok, let tokens = try? JSONDecoder().decode(Tokens.self, from: data) else {
            throw ServiceError(.badGateway, "the ingest service account could not sign in (\(response.status.code))")
        }
        token.withLockedValue { $0 = (tokens.access_token, Date().addingTimeInterval(TimeInterval(tokens.expires_in))) }
        return tokens.access_token
    }
}
