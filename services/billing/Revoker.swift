import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import MarqueePolicy
import MarqueeRedis
import MarqueeServiceKit
import NIOCore
import NIOHTTP1

/// Tells the gateways to refuse a session from now on: 402 for `funds`, 403 for `other`.
public protocol SessionRevoker: Sendable {
    func revoke(_ session: String, reason: RevocationReason, ttlSeconds: Int64) async throws
}

/// Revokes through each gateway's admin listener: `POST /revocations?session=S&reason=R&ttl=T`
/// with the admin bearer secret (`admin.token_file`), as `marquee revoke` does. Every listed
/// gateway must accept it.
public struct GatewayAdminRevoker: SessionRevoker {
    public let admins: [String]
    let bearer: String?
    /// Longest wait for each gateway's answer.
    let timeout: TimeAmount

    /// `admins`: HOST:PORT of each gateway's admin listener; `bearer`: the secret of its
    /// `admin.token_file`.
    public init(admins: [String], bearer: String?, timeout: TimeAmount = .seconds(5)) {
        self.admins = admins
        self.bearer = bearer
        self.timeout = timeout
    }

    public func revoke(_ session: String, reason: RevocationReason, ttlSeconds: Int64) async throws {
        guard RevocationList.isValidSessionID(session) else { throw ServiceError.badRequest("session id \(session) cannot be revoked") }
        for admin in admins {
            var request = HTTPClientRequest(url: "http://\(admin)/revocations?session=\(session)&reason=\(reason)&ttl=\(ttlSeconds)")
            request.method = .POST
            if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
            let response = try await HTTPClient.shared.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 4096)
            guard response.status == .ok else {
                throw ServiceError(.badGateway, "the gateway admin listener \(admin) answered \(response.status.code): \(String(buffer: body))")
            }
        }
    }
}

/// Revokes through Redis (`redis.url`): every gateway subscribed to it obeys within a second.
public struct RedisSessionRevoker: SessionRevoker {
    public let endpoint: RedisEndpoint

    public init(endpoint: RedisEndpoint) { self.endpoint = endpoint }

    public func revoke(_ session: String, reason: RevocationReason, ttlSeconds: Int64) async throws {
        let endpoint = self.endpoint
        let expires = Int64(Date().timeIntervalSince1970) + ttlSeconds
        // `publish` blocks on its socket: off the cooperative pool.
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread.detachNewThread {
                do {
                    try RedisRevocationFeed.publish(session, reason: reason, expiresAt: expires, endpoint: endpoint)
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}

/// No gateway to tell (a billing instance that only answers reads): revocations are logged.
public struct LoggingRevoker: SessionRevoker {
    let logger: Logger
    public init(logger: Logger = Logger(label: "marquee.billing")) { self.logger = logger }
    public func revoke(_ session: String, reason: RevocationReason, ttlSeconds: Int64) async throws {
        logger.warning("no gateway to revoke session on (configure billing.gateway_admin or redis.url)", metadata: ["session": "\(session)", "reason": "\(reason)"])
    }
}
