import Foundation
import Hummingbird
import HummingbirdTesting
import MarqueeAuth
import MarqueeCatalog
import MarqueeIngest
import MarqueeServiceKit
import MarqueeTestSupport
import Testing

/// A publisher's uploads and jobs are theirs: other publishers neither see nor touch them (404,
/// as for ids that do not exist), and nobody uploads a source for another publisher's title.
@Suite("Ingest ownership (SQLite and PostgreSQL)")
struct IngestOwnershipTests {
    static let tus = TusUploadTests.tus

    /// Uploads `bytes` whole for `title` as `token`; returns the upload's path.
    static func upload(_ ingest: Client, token: String, title: String, bytes: [UInt8]) async throws -> String {
        let location = try await TusUploadTests.create(ingest, token: token, length: bytes.count, title: title)
        let done = try await TusUploadTests.patch(ingest, location, token: token, offset: 0, bytes: bytes)
        #expect(done.status == .noContent, "\(done.text)")
        return location
    }

    @Test(
        "Another publisher gets 404 for an upload's HEAD, PATCH and DELETE and for its job; each job list holds only its publisher's jobs; an admin sees all",
        arguments: DatabaseKind.allCases)
    func uploadsAndJobs(kind: DatabaseKind) async throws {
        let services = try await IngestServices.open(kind)
        try await services.run { auth, ingest in
            let alice = try await services.user(.publisher, "alice@example.com", client: auth)
            let bob = try await services.user(.publisher, "bob@example.com", client: auth)
            let admin = try await services.user(.admin, "root@example.com", client: auth)

            let pending = try await TusUploadTests.create(ingest, token: alice, length: 10)
            #expect(try await ingest.send(.head, pending, token: bob, headers: Self.tus).status == .notFound)
            #expect(try await TusUploadTests.patch(ingest, pending, token: bob, offset: 0, bytes: [1, 2, 3]).status == .notFound)
            #expect(try await ingest.send(.delete, pending, token: bob, headers: Self.tus).status == .notFound)
            let head = try await ingest.send(.head, pending, token: alice, headers: Self.tus)
            #expect(head.status == .ok && head.header("Upload-Offset") == "0", "Bob's attempts changed nothing")

            let aliceTitle = Identifier.make()
            let bobTitle = Identifier.make()
            _ = try await Self.upload(ingest, token: alice, title: aliceTitle, bytes: TusUploadTests.randomBytes(1000))
            _ = try await Self.upload(ingest, token: bob, title: bobTitle, bytes: TusUploadTests.randomBytes(1000))

            let alicesJobs = try await ingest.send(.get, "/api/ingest/jobs", token: alice).items
            #expect(alicesJobs.map { $0["title_id"] as? String } == [aliceTitle])
            let bobsJobs = try await ingest.send(.get, "/api/ingest/jobs", token: bob).items
            #expect(bobsJobs.map { $0["title_id"] as? String } == [bobTitle])
            let aliceJob = try #require(alicesJobs.first?["id"] as? String)
            let bobJob = try #require(bobsJobs.first?["id"] as? String)
            let hidden = try await ingest.send(.get, "/api/ingest/jobs/\(aliceJob)", token: bob)
            #expect(hidden.status == .notFound && hidden.detail == "no ingest job \(aliceJob)", "as if it did not exist: \(hidden.text)")
            #expect(try await ingest.send(.get, "/api/ingest/jobs/\(aliceJob)", token: alice).status == .ok)

            let everyone = try await ingest.send(.get, "/api/ingest/jobs?limit=100", token: admin).items.compactMap { $0["id"] as? String }
            #expect(Set(everyone) == [aliceJob, bobJob])
            #expect(try await ingest.send(.get, "/api/ingest/jobs/\(bobJob)", token: admin).status == .ok)
            #expect(try await ingest.send(.head, pending, token: admin, headers: Self.tus).status == .ok)
        }
    }

    @Test(
        "A tus creation for another publisher's title is refused with 403 before anything is stored; the owner and an admin may upload",
        arguments: DatabaseKind.allCases)
    func creationNeedsTheTitlesOwner(kind: DatabaseKind) async throws {
        var authSettings = AuthSettings()
        authSettings.database = try kind.freshURL()
        authSettings.keyEncryptionKeyFile = try KeyEncryptionKeyFile.make()
        authSettings.bcryptCost = 4
        let auth = try await AuthService.open(authSettings)
        var catalogSettings = CatalogSettings()
        catalogSettings.database = try kind.freshURL()
        let catalog = try await CatalogService.open(catalogSettings, jwks: auth.jwksSource)
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-ingest-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        do {
            try await Application(router: auth.router()).test(.live) { authClient in
                try await Application(router: catalog.router()).test(.live) { catalogClient in
                    var settings = IngestSettings()
                    settings.database = try kind.freshURL()
                    settings.dataDirectory = data.path
                    settings.catalogURL = "http://127.0.0.1:\(catalogClient.port ?? 0)"
                    let ingest = try await IngestService.open(settings, jwks: auth.jwksSource)
                    do {
                        try await Self.creations(auth: auth, Client(authClient), Client(catalogClient), ingest, data: data)
                    } catch {
                        await ingest.close()
                        throw error
                    }
                    await ingest.close()
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

    static func creations(auth: AuthService, _ authAPI: Client, _ catalogAPI: Client, _ ingest: IngestService, data: URL) async throws {
        try await Application(router: ingest.router()).test(.live) { ingestClient in
            let ingestAPI = Client(ingestClient)
            func user(_ role: Role, _ email: String) async throws -> String {
                _ = try await auth.createAccount(email: email, password: "a long enough passphrase", role: role)
                let reply = try await authAPI.send(.post, "/api/auth/login", json: ["email": email, "password": "a long enough passphrase"])
                return try #require(reply["access_token"])
            }
            let alice = try await user(.publisher, "alice@example.com")
            let bob = try await user(.publisher, "bob@example.com")
            let admin = try await user(.admin, "root@example.com")
            let title = try await catalogAPI.send(
                .post, "/api/catalog/titles", token: alice, json: ["name": "Alice's film", "price_per_minute": 1, "currency": "EUR"])
            let id = try #require(title["id"])

            let refused = try await ingestAPI.send(
                .post, "/api/ingest/uploads", token: bob,
                headers: Self.tus.merging(["Upload-Length": "1000", "Upload-Metadata": TusUploadTests.metadata(title: id)]) { $1 })
            #expect(refused.status == .forbidden, "\(refused.text)")
            #expect(refused.detail.contains("another publisher"), "\(refused.text)")
            #expect(refused.header("Location") == nil)
            let stored = try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent("uploads").path)
            #expect(stored.isEmpty, "nothing kept for a refused creation: \(stored)")

            _ = try await TusUploadTests.create(ingestAPI, token: alice, length: 1000, title: id)
            _ = try await TusUploadTests.create(ingestAPI, token: admin, length: 1000, title: id)
        }
    }
}
