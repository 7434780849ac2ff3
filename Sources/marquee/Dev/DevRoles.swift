import Foundation
import Hummingbird
import Logging
import MarqueeAnalytics
import MarqueeAuth
import MarqueeBilling
import MarqueeMetering
import MarqueePolicy
import MarqueeCatalog
import MarqueeIngest
import MarqueePlayback
import MarqueeServiceKit
import MarqueeStore
import NIOCore
import ServiceLifecycle

/// One service role `marquee dev` runs in its own process: how to open it on the embedded
/// defaults, given what the roles started before it offer (`DevContext`).
struct DevRole: Sendable {
    let name: String
    /// Opens the role and returns its listener and any background services (workers).
    let open: @Sendable (DevContext) async throws -> DevRoleParts
}

/// What a role hands back: its HTTP application (bound to 127.0.0.1 on a free port) and
/// services that run beside it.
struct DevRoleParts: Sendable {
    let application: @Sendable (_ onServerRunning: @escaping @Sendable (any Channel) async -> Void) throws -> any Service
    var background: [any Service] = []
    /// One line for the banner (what the role holds, where).
    var summary = ""
}

/// The roles in start order; each can reach the ones above it through `DevContext.url(of:)`.
/// Adding a role to `marquee dev` is one line here (and its `DevRole` below).
extension DevRole {
    static let all: [DevRole] = [.auth, .catalog, .ingest, .billing, .playback, .analytics]
}

/// Shared by the roles while they start: the data folder, the auth service's keys (so services
/// verify access tokens without HTTP), and the addresses of the roles already listening.
final class DevContext: @unchecked Sendable {
    let data: String
    let logger: Logger
    let tokenKey: URLTokenKey
    /// Ingest's credential (attaching packages) and the gateway's (reading the access-rules
    /// feed), both accepted by the catalog.
    let ingestCredential: ServiceCredential
    let gatewayCredential: ServiceCredential
    /// `auth.key_encryption_key_file`, made by `DevSecrets`.
    let keyEncryptionKeyFile: String
    /// Playback's credentials for billing and for the catalog.
    let playbackBillingCredential: ServiceCredential
    let playbackCatalogCredential: ServiceCredential
    /// Analytics' credential for billing.
    let analyticsBillingCredential: ServiceCredential
    /// Billing revokes sessions through the gateway's admin listener, which starts after it.
    let revoker = DevGatewayRevoker()
    private let lock = NSLock()
    private var urls: [String: String] = [:]
    private var auth: AuthService?

    init(
        data: String, logger: Logger, tokenKey: URLTokenKey, keyEncryptionKeyFile: String, ingestCredential: ServiceCredential,
        gatewayCredential: ServiceCredential, playbackBillingCredential: ServiceCredential, playbackCatalogCredential: ServiceCredential,
        analyticsBillingCredential: ServiceCredential
    ) {
        self.analyticsBillingCredential = analyticsBillingCredential
        self.playbackBillingCredential = playbackBillingCredential
        self.playbackCatalogCredential = playbackCatalogCredential
        self.data = data
        self.logger = logger
        self.tokenKey = tokenKey
        self.keyEncryptionKeyFile = keyEncryptionKeyFile
        self.ingestCredential = ingestCredential
        self.gatewayCredential = gatewayCredential
    }

    func url(of role: String) -> String {
        lock.withLock { urls[role] } ?? "http://127.0.0.1:0"
    }

    func setURL(_ url: String, of role: String) { lock.withLock { urls[role] = url } }

    var authService: AuthService? {
        get { lock.withLock { auth } }
        set { lock.withLock { auth = newValue } }
    }

    /// The auth service's JWKS read in process (no HTTP round trip, no start-order race).
    var jwks: (any JWKSSource)? { authService?.jwksSource }

    func database(_ name: String) -> String { "sqlite://\(data)/\(name).db" }
}

extension DevRole {
    static let auth = DevRole(name: "auth") { context in
        var settings = AuthSettings()
        settings.listen = "127.0.0.1:0"
        settings.database = context.database("auth")
        settings.keyEncryptionKeyFile = context.keyEncryptionKeyFile
        let service = try await AuthService.open(settings)
        context.authService = service
        return DevRoleParts(
            application: { running in try service.application(logger: context.logger, onServerRunning: running) },
            summary: "accounts and keys in \(context.data)/auth.db")
    }

    static let catalog = DevRole(name: "catalog") { context in
        var settings = CatalogSettings()
        settings.listen = "127.0.0.1:0"
        settings.database = context.database("catalog")
        settings.credentials = [context.ingestCredential, context.gatewayCredential, context.playbackCatalogCredential]
        let service = try await CatalogService.open(settings, jwks: context.jwks)
        return DevRoleParts(
            application: { running in try service.application(logger: context.logger, onServerRunning: running) },
            summary: "titles in \(context.data)/catalog.db")
    }

    static let ingest = DevRole(name: "ingest") { context in
        var settings = IngestSettings()
        settings.listen = "127.0.0.1:0"
        settings.database = context.database("ingest")
        settings.dataDirectory = context.data
        settings.authURL = context.url(of: "auth")
        settings.catalogURL = context.url(of: "catalog")
        // Sources are kept apart from the media the gateway serves: `<data>/sources/<upload id>`.
        let sources = try FileSystemStore(root: context.data)
        let service = try await IngestService.open(settings, jwks: context.jwks, sourceStore: sources)
        let store = try FileSystemStore(root: context.data + "/media")
        let announcer = CatalogAnnouncer(catalogURL: context.url(of: "catalog"), credential: context.ingestCredential)
        let worker = IngestWorker(
            jobs: service.jobs, store: store, sourceStore: sources, workerID: "dev-\(ProcessInfo.processInfo.hostName)-\(getpid())", workFolder: context.data + "/work",
            announcer: announcer)
        return DevRoleParts(
            application: { running in try service.application(logger: context.logger, onServerRunning: running) },
            background: [IngestWorkers([worker])], summary: "uploads in \(context.data)/uploads, then \(context.data)/sources; 1 worker publishing to \(context.data)/media")
    }

    static let playback = DevRole(name: "playback") { context in
        var settings = PlaybackSettings()
        settings.listen = "127.0.0.1:0"
        settings.database = context.database("playback")
        settings.authURL = context.url(of: "auth")
        settings.catalogURL = context.url(of: "catalog")
        settings.tokenKey = context.tokenKey
        settings.billingURL = context.url(of: "billing")
        settings.billingCredential = context.playbackBillingCredential
        settings.catalogCredential = context.playbackCatalogCredential
        let service = try await PlaybackService.open(settings, jwks: context.jwks)
        return DevRoleParts(
            application: { running in try service.application(logger: context.logger, onServerRunning: running) },
            summary: "sessions in \(context.data)/playback.db, URLs signed with key \(context.tokenKey.id)")
    }
}

extension DevRole {
    /// Billing with self-service deposits on, metering the gateway's local delivery log
    /// (`<data>/deliveries`) against the packages in `<data>/media`.
    static let billing = DevRole(name: "billing") { context in
        var settings = BillingSettings()
        settings.listen = "127.0.0.1:0"
        settings.database = context.database("billing")
        settings.authURL = context.url(of: "auth")
        settings.credentials = [context.playbackBillingCredential, context.analyticsBillingCredential]
        settings.selfServiceDeposits = true
        settings.deliveriesDirectory = context.data + "/deliveries"
        settings.packageStore = context.data + "/media"
        let service = try await BillingService.open(settings, jwks: context.jwks, revoker: context.revoker, logger: context.logger)
        let meter = Meter(
            service: service, source: LocalDeliveryLog(directory: context.data + "/deliveries"),
            timelines: PackageTimelines(store: try FileSystemStore(root: context.data + "/media")))
        return DevRoleParts(
            application: { running in try service.application(logger: context.logger, onServerRunning: running) },
            background: service.housekeeping(logger: context.logger)
                + [meter.runner(interval: .milliseconds(settings.meterIntervalMilliseconds), logger: context.logger)],
            summary: "wallets and ledger in \(context.data)/billing.db, metering \(context.data)/deliveries")
    }
}

extension DevRole {
    /// Analytics on its own position in the gateway's local delivery log, learning viewers and
    /// revenue from billing every second.
    static let analytics = DevRole(name: "analytics") { context in
        var settings = AnalyticsSettings()
        settings.listen = "127.0.0.1:0"
        settings.database = context.database("analytics")
        settings.authURL = context.url(of: "auth")
        settings.billingURL = context.url(of: "billing")
        settings.billingCredential = context.analyticsBillingCredential
        settings.deliveriesDirectory = context.data + "/deliveries"
        settings.packageStore = context.data + "/media"
        let service = try await AnalyticsService.open(settings, jwks: context.jwks, logger: context.logger)
        let ingestor = AnalyticsIngestor(
            service: service, source: LocalDeliveryLog(directory: context.data + "/deliveries", consumer: "analytics"),
            timelines: PackageTimelines(store: try FileSystemStore(root: context.data + "/media")), batchSize: settings.batch)
        return DevRoleParts(
            application: { running in try service.application(logger: context.logger, onServerRunning: running) },
            background: service.billingLookups(logger: context.logger)
                + [ingestor.runner(interval: .milliseconds(settings.intervalMilliseconds), logger: context.logger)],
            summary: "rollups in \(context.data)/analytics.db from \(context.data)/deliveries; dashboard at /\(DashboardSite.prefix)/")
    }
}

/// Revokes through the dev gateway's admin listener once it is up (billing starts before it);
/// until then a revocation fails and billing retries it.
final class DevGatewayRevoker: SessionRevoker, @unchecked Sendable {
    private let lock = NSLock()
    private var target: GatewayAdminRevoker?

    func connect(admin: String, bearer: String?) { lock.withLock { target = GatewayAdminRevoker(admins: [admin], bearer: bearer) } }

    func revoke(_ session: String, reason: RevocationReason, ttlSeconds: Int64) async throws {
        guard let target = lock.withLock({ target }) else {
            throw ServiceError(.serviceUnavailable, "the gateway's admin listener is not up yet")
        }
        try await target.revoke(session, reason: reason, ttlSeconds: ttlSeconds)
    }
}
