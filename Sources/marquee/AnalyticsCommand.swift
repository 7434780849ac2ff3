import ArgumentParser
import Configuration
import Foundation
import Logging
import MarqueeAnalytics
import MarqueeConsole
import MarqueeMetering
import MarqueeRedis
import MarqueeServiceKit
import MarqueeStore
import ServiceLifecycle
import UnixSignals

struct AnalyticsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analytics",
        abstract: "Run the analytics service: views, watch time, experience and revenue rolled up from delivery records, and the dashboard's API.")

    @Option(help: "Listener, HOST:PORT (analytics.listen; default 127.0.0.1:8087).")
    var listen: String?

    @Option(name: .customLong("auth-url"), help: "The auth service, whose JWKS verifies tokens (analytics.auth_url; default http://127.0.0.1:8081).")
    var authURL: String?

    @Option(name: .customLong("billing-url"), help: "The billing service, asked who watched each session and the revenue (analytics.billing_url).")
    var billingURL: String?

    @Option(
        name: .customLong("billing-credential-file"),
        help: "File holding analytics' read_billing credential, which billing accepts (analytics.billing_credential_file).")
    var billingCredentialFile: String?

    @Option(help: "The gateways' local delivery log folder read on analytics' own position (analytics.deliveries; otherwise the Redis stream).")
    var deliveries: String?

    @Option(name: .customLong("package-store"), help: "Where the packages' playlists are read: a folder or s3://... (analytics.package_store; default <data>/media).")
    var packageStore: String?

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let config = try await options.configuration()
        var settings = AnalyticsSettings()
        settings.listen = config.string("analytics.listen", flag: listen, default: settings.listen)
        settings.database = config.databaseURL(flag: options.database, key: "analytics.database", defaultName: "analytics")
        settings.authURL = config.string("analytics.auth_url", flag: authURL, default: settings.authURL)
        settings.authIssuer = config.string("analytics.auth_issuer", flag: nil, default: settings.authIssuer)
        let billing = config.string("analytics.billing_url", flag: billingURL, default: "")
        settings.billingURL = billing.isEmpty ? nil : billing
        let credentialFile = config.string("analytics.billing_credential_file", flag: billingCredentialFile, default: "")
        if !credentialFile.isEmpty {
            do throws(ServiceError) {
                settings.billingCredential = try ServiceCredential(holder: "analytics", grant: .readBilling, secretFile: credentialFile)
            } catch {
                throw ValidationError("analytics.billing_credential_file: \(error.detail)")
            }
        }
        if settings.billingURL != nil, settings.billingCredential == nil {
            throw ValidationError("analytics.billing_url needs analytics.billing_credential_file (the read_billing secret billing accepts)")
        }
        let deliveries = config.string("analytics.deliveries", flag: deliveries, default: "")
        settings.deliveriesDirectory = deliveries.isEmpty ? nil : deliveries
        settings.packageStore = config.string("analytics.package_store", flag: packageStore, default: config.dataDirectory + "/media")
        settings.intervalMilliseconds = config.int("analytics.interval_ms", default: settings.intervalMilliseconds)
        guard (10...60_000).contains(settings.intervalMilliseconds) else { throw ValidationError("analytics.interval_ms must be 10 to 60000") }
        settings.batch = config.int("analytics.batch", default: settings.batch)
        guard (1...250_000).contains(settings.batch) else { throw ValidationError("analytics.batch must be 1 to 250000") }
        settings.lookupIntervalMilliseconds = config.int("analytics.lookup_interval_ms", default: settings.lookupIntervalMilliseconds)
        guard (100...600_000).contains(settings.lookupIntervalMilliseconds) else { throw ValidationError("analytics.lookup_interval_ms must be 100 to 600000") }

        // Where records come from: the local log named by analytics.deliveries, or else the
        // gateways' Redis stream (bus.stream) through analytics' own consumer group.
        var source: (any DeliverySource)?
        var reading = "no delivery records (analytics.deliveries or redis.url)"
        let redis = config.string("redis.url", flag: nil, default: "")
        if let folder = settings.deliveriesDirectory {
            source = LocalDeliveryLog(directory: folder, consumer: "analytics")
            reading = "reading \(folder)"
        } else if !redis.isEmpty {
            var stream = RedisDeliveryStream.Settings(
                endpoint: try RedisEndpoint(parsing: redis),
                consumer: config.string("analytics.stream_consumer", flag: nil, default: ProcessInfo.processInfo.hostName))
            stream.stream = config.string("bus.stream", flag: nil, default: stream.stream)
            stream.group = config.string("analytics.stream_group", flag: nil, default: "analytics")
            let idle = config.int("analytics.stream_claim_idle_s", default: 30)
            guard (1...86_400).contains(idle) else { throw ValidationError("analytics.stream_claim_idle_s must be 1 to 86400") }
            stream.claimIdle = .seconds(idle)
            guard !stream.consumer.isEmpty, !stream.group.isEmpty, !stream.stream.isEmpty else {
                throw ValidationError("bus.stream, analytics.stream_group and analytics.stream_consumer must not be empty")
            }
            source = RedisDeliveryStream(settings: stream)
            reading = "reading the Redis stream \(stream.stream) as \(stream.consumer) in group \(stream.group)"
        }

        let logger = Logger(label: "marquee.analytics")
        let service = try await AnalyticsService.open(settings, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: try service.application(logger: logger))]
        services += service.billingLookups(logger: logger).map { .init(service: $0) }
        if let source {
            let store = try StoreLocation.open(settings.packageStore ?? config.dataDirectory + "/media")
            let ingestor = AnalyticsIngestor(service: service, source: source, timelines: PackageTimelines(store: store), batchSize: settings.batch)
            services.append(.init(service: ingestor.runner(interval: .milliseconds(settings.intervalMilliseconds), logger: logger)))
        }
        printLine(
            "analytics: listening on http://\(settings.listen) (database \(redacted(settings.database)), auth \(settings.authURL), billing \(settings.billingURL ?? "none")); \(reading)")
        try await ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
        await service.close()
    }
}
