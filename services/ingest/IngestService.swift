import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import MarqueeServiceKit
import MarqueeStore

/// The ingest service: tus resumable uploads of sources, and the job queue's status for
/// publishers. (The workers that run the jobs use `IngestJobs` directly.)
public struct IngestService: Sendable {
    let settings: IngestSettings
    let database: any Database
    let verifier: AccessTokenVerifier
    /// The queue finished uploads feed.
    public let jobs: IngestJobs
    let uploads: ResumableUploads

    init(settings: IngestSettings, database: any Database, jwks: any JWKSSource, sourceStore: (any ObjectStore)?) throws {
        self.settings = settings
        self.database = database
        verifier = AccessTokenVerifier(source: jwks, issuer: settings.authIssuer)
        jobs = IngestJobs(database: database)
        uploads = try ResumableUploads(
            database: database, folder: URL(fileURLWithPath: settings.dataDirectory).appendingPathComponent("uploads"),
            maxUploadBytes: settings.maxUploadBytes, sourceStore: sourceStore, catalogURL: settings.catalogURL,
            expiry: settings.uploadExpiry, maxBytesInFlightPerPublisher: settings.maxBytesInFlightPerPublisher)
    }

    /// Opens and migrates the database and creates `<data>/uploads`. `jwks` defaults to fetching
    /// from `settings.authURL`. Finished uploads go to `sourceStore` as `sources/<upload id>`, where
    /// any worker can fetch them; without one they stay in `<data>/uploads`, readable only on this
    /// machine.
    public static func open(
        _ settings: IngestSettings, jwks: (any JWKSSource)? = nil, sourceStore: (any ObjectStore)? = nil
    ) async throws -> IngestService {
        let database = try await openDatabase(settings.database)
        do {
            try await IngestJobs.migrate(database)
            return try IngestService(
                settings: settings, database: database, jwks: jwks ?? HTTPJWKSSource(authURL: settings.authURL), sourceStore: sourceStore)
        } catch {
            await database.close()
            throw error
        }
    }

    /// The service as a Hummingbird application on `settings.listen`; `onServerRunning` learns the
    /// bound address (port 0 picks a free one).
    public func application(
        logger: Logger = Logger(label: "marquee.ingest"), onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let listener = try ServiceListener(parsing: settings.listen)
        return Application(
            router: router(), configuration: .init(address: listener.bindAddress, serverName: "marquee-ingest"),
            services: [uploadExpirySweep(logger: logger), DatabaseCloser(database)], onServerRunning: onServerRunning, logger: logger)
    }

    /// Removes expired unfinished uploads and their files, every quarter of `ingest.upload_expiry`
    /// (at most every minute). Part of `application()`; tests that build their own application add it.
    public func uploadExpirySweep(logger: Logger = Logger(label: "marquee.ingest")) -> some Service {
        let uploads = uploads
        let interval = min(.seconds(60), max(.milliseconds(50), settings.uploadExpiry / 4))
        return PeriodicWork("expired upload sweep", every: interval, logger: logger) { try await uploads.sweepExpired() }
    }

    public func close() async { await database.close() }

    public static let openAPI = ServiceRouter.resource("openapi.yaml", in: .module)

    public func router() -> Router<ServiceRequestContext> {
        let router = ServiceRouter.make(name: "ingest", openAPI: Self.openAPI, database: database, verifier: verifier)
        uploads.addRoutes(to: router.group("/api/ingest/uploads"))
        let api = router.group("/api/ingest")
        api.get("/jobs") { request, context in try await listJobs(request, context) }
        api.get("/jobs/:id") { _, context in
            let identity = try context.require(.publisher)
            let id = try context.parameters.require("id")
            // Another publisher's job is answered like a missing one, as uploads are: ids do not leak.
            guard let job = try await jobs.job(id), identity.role >= .admin || job.createdBy == identity.userID else {
                throw ServiceError.notFound("no ingest job \(id)")
            }
            return try jsonResponse(job.view)
        }
        return router
    }

    struct JobCursor: Codable {
        let id: String
    }

    /// A publisher's own jobs; an admin's list holds everyone's.
    func listJobs(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.publisher)
        let query = request.uri.queryParameters
        let limit = try pageLimit(query["limit"].map(String.init))
        var after: String?
        if let cursor = query["cursor"].map(String.init) {
            let decoded = try PageCursor.decode(JobCursor.self, from: cursor)
            guard Identifier.isValid(decoded.id) else { throw ServiceError.invalid("cursor", "is not a cursor this service issued") }
            after = decoded.id
        }
        let (page, more) = try await jobs.list(limit: limit, after: after, createdBy: identity.role >= .admin ? nil : identity.userID)
        let next = more ? page.last.map { PageCursor.encode(JobCursor(id: $0.id)) } : nil
        return try jsonResponse(Page(items: page.map(\.view), next_cursor: next))
    }
}
