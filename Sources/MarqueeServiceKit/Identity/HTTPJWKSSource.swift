import HTTPTypes
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Fetches the JWKS from the auth service over HTTP (`<auth URL>/.well-known/jwks.json`).
public struct HTTPJWKSSource: JWKSSource {
    public let url: String

    /// `authURL` is the auth service's base URL, e.g. `http://127.0.0.1:8081`.
    public init(authURL: String) {
        var base = authURL
        while base.hasSuffix("/") { base.removeLast() }
        url = base + "/.well-known/jwks.json"
    }

    public func fetchJWKS() async throws -> String {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        guard response.status == .ok else { throw ServiceError(.badGateway, "GET \(url) answered \(response.status.code)") }
        let body = try await response.body.collect(upTo: 1 << 20)
        return String(buffer: body)
    }
}
