import AsyncHTTPClient
import Foundation
import MarqueeServiceKit
import NIOCore
import NIOHTTP1
import NIOSSL

/// JSON calls to the platform through the gateway, as any client would make them.
struct DevAPI: Sendable {
    let base: String
    var client: HTTPClient = .shared

    /// A client that trusts the CA in `authority` besides the system's (`marquee dev --tls`).
    static func client(trusting authority: String) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.additionalTrustRoots = [.file(authority)]
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(tlsConfiguration: tls))
    }

    struct Failure: Error, CustomStringConvertible {
        let status: UInt
        let detail: String
        var description: String { "\(status) \(detail)" }
    }

    struct Reply: Sendable {
        let status: HTTPResponseStatus
        let headers: HTTPHeaders
        let body: Data

        func json() -> [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        func string(_ key: String) -> String? { json()[key] as? String }
    }

    /// Sends a request and returns the reply whatever its status.
    func send(
        _ method: HTTPMethod, _ path: String, token: String? = nil, json: [String: Any]? = nil, headers extra: [(String, String)] = [],
        body bytes: [UInt8]? = nil
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: path.hasPrefix("http") ? path : base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
        } else if let bytes {
            request.body = .bytes(ByteBuffer(bytes: bytes))
        }
        let response = try await client.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: response.status, headers: response.headers, body: Data(body.readableBytesView))
    }

    /// Sends a request that must answer `expect`; anything else throws with the problem's detail.
    @discardableResult
    func call(
        _ method: HTTPMethod, _ path: String, token: String? = nil, json: [String: Any]? = nil, headers: [(String, String)] = [],
        body: [UInt8]? = nil, expect: HTTPResponseStatus = .ok
    ) async throws -> Reply {
        let reply = try await send(method, path, token: token, json: json, headers: headers, body: body)
        guard reply.status == expect else {
            let detail = reply.string("detail") ?? String(decoding: reply.body.prefix(300), as: UTF8.self)
            throw Failure(status: reply.status.code, detail: "\(method) \(path): \(detail)")
        }
        return reply
    }

    /// Signs in and returns an access token.
    func signIn(_ email: String, _ password: String) async throws -> String {
        let reply = try await call(.POST, "/api/auth/login", json: ["email": email, "password": password])
        guard let token = reply.string("access_token") else { throw Failure(status: 200, detail: "sign-in answered without an access token") }
        return token
    }
}
