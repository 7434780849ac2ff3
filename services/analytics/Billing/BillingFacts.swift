import AsyncHTTPClient
import Foundation
import HTTPTypes
import MarqueeServiceKit
import NIOCore
import NIOHTTP1

/// What analytics asks billing: who watched each session (billing opens every session playback
/// starts) and the revenue per day and title. Both with analytics' `read_billing` credential.
struct BillingFacts: Sendable {
    let billingURL: String
    let credential: ServiceCredential

    struct SessionFact: Decodable, Sendable {
        let session_id: String
        let user_id: String
        let title_id: String
        let owner: String
        let package_version: String
        let created_at: Int64
    }

    struct RevenueLine: Decodable, Sendable {
        let day: String
        let title_id: String
        let owner: String
        let currency: String
        let minutes: Int64
        let gross: Int64
        let publisher: Int64
        let platform_fee: Int64
    }

    struct Items<T: Decodable>: Decodable {
        let items: [T]
    }

    func sessions(_ ids: [String]) async throws -> [SessionFact] {
        try await get("/internal/billing/sessions?ids=" + ids.joined(separator: ","), as: Items<SessionFact>.self).items
    }

    func revenue(from day: String) async throws -> [RevenueLine] {
        try await get("/internal/billing/revenue?from=" + day, as: Items<RevenueLine>.self).items
    }

    private func get<T: Decodable>(_ path: String, as type: T.Type) async throws -> T {
        let base = billingURL.hasSuffix("/") ? String(billingURL.dropLast()) : billingURL
        var request = HTTPClientRequest(url: base + path)
        request.headers.add(name: "Authorization", value: credential.authorization)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 64 << 20)
        guard response.status == .ok else {
            throw ServiceError(.badGateway, "billing answered \(response.status.code) for \(path.prefix { $0 != "?" }): \(String(buffer: body).prefix(200))")
        }
        return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
    }
}
