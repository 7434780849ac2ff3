import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MarqueeAuth
import MarqueeCatalog
import MarqueeServiceKit
import MarqueeTestSupport
import NIOCore

/// Auth and catalog on a fresh database of one kind, served over real loopback HTTP
/// (Hummingbird's live test mode). bcrypt runs at cost 4 here so the suite stays quick; one test
/// checks production settings hash at cost 12.
struct Services {
    let auth: AuthService
    let catalog: CatalogService
    let kind: DatabaseKind
    let authDatabase: String

    static func open(
        _ kind: DatabaseKind, configure: (inout AuthSettings) -> Void = { _ in }, catalog configureCatalog: (inout CatalogSettings) -> Void = { _ in }
    ) async throws -> Services {
        var authSettings = AuthSettings()
        authSettings.database = try kind.freshURL()
        authSettings.bcryptCost = 4
        authSettings.keyEncryptionKeyFile = try KeyEncryptionKeyFile.make()
        configure(&authSettings)
        let auth = try await AuthService.open(authSettings)
        var catalogSettings = CatalogSettings()
        catalogSettings.database = try kind.freshURL()
        configureCatalog(&catalogSettings)
        let catalog = try await CatalogService.open(catalogSettings, jwks: auth.jwksSource)
        return Services(auth: auth, catalog: catalog, kind: kind, authDatabase: authSettings.database)
    }

    /// Runs `body` with clients for both services, then closes the databases.
    func run(_ body: @escaping @Sendable (Client, Client) async throws -> Void) async throws {
        let authApp = Application(router: auth.router())
        let catalogApp = Application(router: catalog.router())
        do {
            try await authApp.test(.live) { authClient in
                try await catalogApp.test(.live) { catalogClient in
                    try await body(Client(authClient), Client(catalogClient))
                }
            }
        } catch {
            await auth.close()
            await catalog.close()
            throw error
        }
        await auth.close()
        await catalog.close()
    }
}

/// A JSON client over a test client.
struct Client: Sendable {
    let client: any TestClientProtocol

    init(_ client: any TestClientProtocol) { self.client = client }

    struct Reply: Sendable {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let body: Data

        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
        subscript(_ key: String) -> String? { json[key] as? String }
        var detail: String { self["detail"] ?? "" }
        var items: [[String: Any]] { json["items"] as? [[String: Any]] ?? [] }
    }

    @discardableResult
    func send(_ method: HTTPRequest.Method, _ uri: String, token: String? = nil, json: Any? = nil, raw: String? = nil, headers extra: HTTPFields = [:])
        async throws -> Reply
    {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            headers[.contentType] = "application/json"
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
        } else if let raw {
            if headers[.contentType] == nil { headers[.contentType] = "application/json" }
            body = ByteBuffer(string: raw)
        }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
            Reply(status: response.status, headers: response.headers, body: Data(response.body.readableBytesView))
        }
    }

    /// Registers (via the API) and signs in; returns the access and refresh tokens.
    func signUp(_ email: String, password: String = "a long enough passphrase") async throws -> (access: String, refresh: String) {
        let created = try await send(.post, "/api/auth/register", json: ["email": email, "password": password])
        precondition(created.status == .created, "register failed: \(created.text)")
        return try await signIn(email, password: password)
    }

    func signIn(_ email: String, password: String = "a long enough passphrase") async throws -> (access: String, refresh: String) {
        let reply = try await send(.post, "/api/auth/login", json: ["email": email, "password": password])
        guard reply.status == .ok, let access = reply["access_token"], let refresh = reply["refresh_token"] else {
            throw TestEnvironmentError("login failed: \(reply.status) \(reply.text)")
        }
        return (access, refresh)
    }
}

extension Services {
    /// The auth service's private signing keys (opened with its key encryption key), so a test
    /// can sign tokens that differ from real ones in exactly one claim.
    func signingKeys() async throws -> [String: Curve25519.Signing.PrivateKey] {
        try await auth.privateSigningKeys()
    }

    /// An account with `role`, created the way an operator would (`marquee users add`), signed in.
    func user(_ role: Role, _ email: String, client: Client) async throws -> String {
        _ = try await auth.createAccount(email: email, password: "a long enough passphrase", role: role)
        return try await client.signIn(email).access
    }
}
