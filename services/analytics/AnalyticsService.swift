import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MarqueeServiceKit
import NIOCore
import ServiceLifecycle

/// The analytics service: what was watched, by whom and where, how playback went, and what it
/// earned, from the gateways' delivery records (rolled up as they arrive, `AnalyticsIngestor`)
/// and billing's sessions and revenue (`SessionDirectory`). Publishers see their own titles,
/// admins every title, viewers their own history.
public struct AnalyticsService: Sendable {
    let settings: AnalyticsSettings
    let database: any Database
    let verifier: AccessTokenVerifier
    let logger: Logger

    init(settings: AnalyticsSettings, database: any Database, jwks: any JWKSSource, logger: Logger) {
        self.settings = settings
        self.database = database
        self.logger = logger
        verifier = AccessTokenVerifier(source: jwks, issuer: settings.authIssuer)
    }

    /// Opens and migrates the database. `jwks` defaults to fetching from `settings.authURL`.
    public static func open(
        _ settings: AnalyticsSettings, jwks: (any JWKSSource)? = nil, logger: Logger = Logger(label: "marquee.analytics")
    ) async throws -> AnalyticsService {
        if settings.billingURL != nil, settings.billingCredential == nil {
            throw ServiceError.badRequest("analytics.billing_url needs analytics.billing_credential_file: the read_billing secret billing accepts")
        }
        let database = try await openDatabase(settings.database)
        do {
            try await Migrator.migrate(database, service: "analytics", AnalyticsMigrations.all)
            return AnalyticsService(settings: settings, database: database, jwks: jwks ?? HTTPJWKSSource(authURL: settings.authURL), logger: logger)
        } catch {
            await database.close()
            throw error
        }
    }

    public func application(
        logger: Logger = Logger(label: "marquee.analytics"), onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let listener = try ServiceListener(parsing: settings.listen)
        return Application(
            router: router(), configuration: .init(address: listener.bindAddress, serverName: "marquee-analytics"),
            services: [DatabaseCloser(database)], onServerRunning: onServerRunning, logger: logger)
    }

    /// Background work besides ingestion: sessions' viewers and revenue learned from billing.
    public func billingLookups(logger: Logger = Logger(label: "marquee.analytics")) -> [any Service] {
        guard let url = settings.billingURL, let credential = settings.billingCredential else { return [] }
        let directory = SessionDirectory(database: database, billing: BillingFacts(billingURL: url, credential: credential))
        let interval = Duration.milliseconds(settings.lookupIntervalMilliseconds)
        return [
            PeriodicWork("analytics session lookups", every: interval, logger: logger) {
                while try await directory.settlePending() >= 500 {}
            },
            PeriodicWork("analytics revenue", every: interval * 5, logger: logger) { try await directory.syncRevenue() },
        ]
    }

    public func close() async { await database.close() }

    public static let openAPI = ServiceRouter.resource("openapi.yaml", in: .module)

    public func router() -> Router<ServiceRequestContext> {
        let router = ServiceRouter.make(name: "analytics", openAPI: Self.openAPI, database: database, verifier: verifier)
        let api = router.group("/api/analytics")
        let queries = AnalyticsQueries(database: database)
        api.get("/titles/:id") { request, context in try await queries.title(request, context) }
        api.get("/top-titles") { request, context in try await queries.topTitles(request, context) }
        api.get("/dashboard") { request, context in try await queries.dashboard(request, context) }
        api.get("/revenue") { request, context in try await queries.revenue(request, context) }
        api.get("/reports/:period") { request, context in try await queries.report(request, context) }
        api.get("/sessions") { request, context in try await queries.sessions(request, context) }
        api.get("/me/history") { request, context in try await queries.history(request, context) }
        return router
    }
}

/// The dashboard's files (HTML, CSS, JavaScript), shipped as package resources. A gateway serves
/// them from its store under `dashboard/` on a public prefix, like the player page, so the page
/// and the APIs come from one origin.
public enum DashboardSite {
    public static let prefix = "dashboard"

    public static func files() throws -> [(name: String, bytes: [UInt8])] {
        guard let folder = Bundle.module.url(forResource: "dashboard", withExtension: nil) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "the dashboard's resources are missing from the bundle"])
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
        return try names.map { name in (name, [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))) }
    }
}
