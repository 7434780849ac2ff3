import AsyncHTTPClient
import Foundation
import HTTPTypes
import MarqueeServiceKit
import NIOCore
import NIOHTTP1

/// Playback's side of billing: every session is opened with the billing service before its URLs
/// are signed (one minute held for a priced title, or 402), and ended through it (hold released,
/// URLs revoked on the gateways). Calls carry playback's service credential (`open_billing_sessions`).
struct BillingSessions: Sendable {
    let billingURL: String
    let credential: ServiceCredential

    init(billingURL: String, credential: ServiceCredential) {
        self.billingURL = billingURL.hasSuffix("/") ? String(billingURL.dropLast()) : billingURL
        self.credential = credential
    }

    struct Opening: Encodable {
        let session_id: String
        let user_id: String
        let title_id: String
        let owner: String
        let package_version: String
        let price_per_minute: Int64
        let currency: String
    }

    /// Opens the session; billing's refusals (402 insufficient funds, 409 too many sessions) come
    /// back as they are.
    func open(_ opening: Opening) async throws {
        var request = HTTPClientRequest(url: "\(billingURL)/internal/billing/sessions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(opening)))
        try await send(request, what: "opening session \(opening.session_id)")
    }

    /// Ends the session (a session already over stays as it is).
    func end(_ id: String) async throws {
        var request = HTTPClientRequest(url: "\(billingURL)/internal/billing/sessions/\(id)")
        request.method = .DELETE
        try await send(request, what: "ending session \(id)")
    }

    private func send(_ request: HTTPClientRequest, what: String) async throws {
        var request = request
        request.headers.add(name: "Authorization", value: credential.authorization)
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw ServiceError(.badGateway, "the billing service did not answer: \(error)")
        }
        switch response.status.code {
        case 200..<300: return
        case 402, 409:
            struct Problem: Decodable {
                let detail: String
                let type: String?
            }
            let problem = try? JSONDecoder().decode(Problem.self, from: Data(body.readableBytesView))
            throw ServiceError(
                .init(code: Int(response.status.code)), problem?.detail ?? "the billing service refused: \(response.status.code)",
                type: problem?.type ?? "about:blank")
        default:
            throw ServiceError(.badGateway, "the billing service answered \(response.status.code) \(what)")
        }
    }
}
