import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MarqueeAuth
import MarqueeIngest
import MarqueeServiceKit
import MarqueeStore
import MarqueeTestSupport
import NIOCore

/// Auth and ingest on fresh databases of one kind, served over real loopback HTTP, with the
/// ingest data folder in a scratch directory.
struct IngestServices {
    let auth: AuthService
    let ingest: IngestService
    let kind: DatabaseKind
    let data: URL
    let ingestDatabase: String
    /// Whether the expired-upload sweep runs beside the ingest server (as in `marquee ingest`).
    var sweepsExpiredUploads = true

    static func open(
        _ kind: DatabaseKind, sourceStore: (any ObjectStore)? = nil, sweepsExpiredUploads: Bool = true,
        configure: (inout IngestSettings) -> Void = { _ in }
    ) async throws -> IngestServices {
        var authSettings = AuthSettings()
        authSettings.database = try kind.freshURL()
        authSettings.bcryptCost = 4
        authSettings.keyEncryptionKeyFile = try KeyEncryptionKeyFile.make()
        let auth = try await AuthService.open(authSettings)
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-ingest-\(UUID().uuidString)")
        var settings = IngestSettings()
        settings.database = try kind.freshURL()
        settings.dataDirectory = data.path
        configure(&settings)
        let ingest = try await IngestService.open(settings, jwks: auth.jwksSource, sourceStore: sourceStore)
        return IngestServices(
            auth: auth, ingest: ingest, kind: kind, data: data, ingestDatabase: settings.database, sweepsExpiredUploads: sweepsExpiredUploads)
    }

    var uploadsFolder: URL { data.appendingPathComponent("uploads") }

    /// Runs `body` with clients for both services (the ingest client knows its live port), then
    /// closes the databases and removes the data folder.
    func run(_ body: @escaping @Sendable (Client, Client) async throws -> Void) async throws {
        let authApp = Application(router: auth.router())
        let ingestApp = Application(router: ingest.router(), services: sweepsExpiredUploads ? [ingest.uploadExpirySweep()] : [])
        defer { try? FileManager.default.removeItem(at: data) }
        do {
            try await authApp.test(.live) { authClient in
                try await ingestApp.test(.live) { ingestClient in
                    try await body(Client(authClient), Client(ingestClient))
                }
            }
        } catch {
            await auth.close()
            await ingest.close()
            throw error
        }
        await auth.close()
        await ingest.close()
    }

    /// A signed-in account with `role`, created the way an operator would.
    func user(_ role: Role, _ email: String, client: Client) async throws -> String {
        _ = try await auth.createAccount(email: email, password: "a long enough passphrase", role: role)
        let reply = try await client.send(.post, "/api/auth/login", json: ["email": email, "password": "a long enough passphrase"])
        guard reply.status == .ok, let access = reply["access_token"] else { throw TestEnvironmentError("login failed: \(reply.text)") }
        return access
    }
}

/// A client over a test client: JSON or raw bodies, any headers.
struct Client: Sendable {
    let client: any TestClientProtocol

    init(_ client: any TestClientProtocol) { self.client = client }

    /// The live server's loopback port and base URL, for clients outside the process (tuspy, curl).
    var port: Int { client.port ?? 0 }
    var baseURL: String { "http://127.0.0.1:\(port)" }

    struct Reply: Sendable {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let body: Data

        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
        subscript(_ key: String) -> String? { json[key] as? String }
        var detail: String { self["detail"] ?? "" }
        var items: [[String: Any]] { json["items"] as? [[String: Any]] ?? [] }
        func header(_ name: String) -> String? { headers[HTTPField.Name(name)!] }
    }

    @discardableResult
    func send(
        _ method: HTTPRequest.Method, _ uri: String, token: String? = nil, json: Any? = nil, bytes: [UInt8]? = nil,
        headers extra: [String: String] = [:]
    ) async throws -> Reply {
        var headers = HTTPFields()
        for (name, value) in extra { headers[HTTPField.Name(name)!] = value }
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            headers[.contentType] = "application/json"
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
        } else if let bytes {
            body = ByteBuffer(bytes: bytes)
        }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
            Reply(status: response.status, headers: response.headers, body: Data(response.body.readableBytesView))
        }
    }
}

/// Runs a Python script with the test venv (`scripts/install-deps test`), without blocking the
/// concurrency pool while it runs; returns stdout, throws with stderr on failure.
func runPython(_ script: String, arguments: [String]) async throws -> String {
    let python = try PythonEnvironment.python()
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-py-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let file = folder.appendingPathComponent("script.py")
    try script.write(to: file, atomically: true, encoding: .utf8)
    // On a thread of its own: the script talks to servers of this process, which need the
    // cooperative threads free.
    let result = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Subprocess.Result, any Error>) in
        Thread.detachNewThread {
            continuation.resume(with: Result { try Subprocess.run(python.path, [file.path] + arguments, separateErrors: true) })
        }
    }
    guard result.succeeded else { throw TestEnvironmentError("python exited \(result.status): \(result.errors)") }
    return result.output
}
