import ArgumentParser
import Configuration
import Foundation
import Logging
import MarqueeBilling
import MarqueeMetering
import MarqueeConsole
import MarqueePolicy
import MarqueeRedis
import MarqueeServiceKit
import MarqueeStore
import MarqueeTokens
import ServiceLifecycle
import UnixSignals

struct BillingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billing",
        abstract: "Run the billing service: wallets, deposits, the ledger, billed sessions and the per-minute meter.")

    @Option(help: "Listener, HOST:PORT (billing.listen; default 127.0.0.1:8083).")
    var listen: String?

    @Option(name: .customLong("auth-url"), help: "The auth service, whose JWKS verifies tokens (billing.auth_url; default http://127.0.0.1:8081).")
    var authURL: String?

    @Option(
        name: .customLong("playback-credential-file"),
        help: "File holding playback's service credential, which may open and end billed sessions and nothing else (billing.playback_credential_file).")
    var playbackCredentialFile: String?

    @Option(help: "The gateways' local delivery log folder the meter reads (billing.deliveries; none: no meter in this process).")
    var deliveries: String?

    @Option(
        name: .customLong("package-store"),
        help: "Where the packages' playlists are read: a folder or s3://BUCKET?endpoint=URL&region=R (billing.package_store; default <data>/media).")
    var packageStore: String?

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let config = try await options.configuration()
        var settings = BillingSettings()
        settings.listen = config.string("billing.listen", flag: listen, default: settings.listen)
        settings.database = config.databaseURL(flag: options.database, key: "billing.database", defaultName: "billing")
        settings.authURL = config.string("billing.auth_url", flag: authURL, default: settings.authURL)
        settings.authIssuer = config.string("billing.auth_issuer", flag: nil, default: settings.authIssuer)
        let credentialFile = config.string("billing.playback_credential_file", flag: playbackCredentialFile, default: "")
        if !credentialFile.isEmpty {
            do throws(ServiceError) {
                settings.credentials = [try ServiceCredential(holder: "playback", grant: .openBillingSessions, secretFile: credentialFile)]
            } catch {
                throw ValidationError("billing.playback_credential_file: \(error.detail)")
            }
        }
        let analyticsFile = config.string("billing.analytics_credential_file", flag: nil, default: "")
        if !analyticsFile.isEmpty {
            do throws(ServiceError) {
                settings.credentials.append(try ServiceCredential(holder: "analytics", grant: .readBilling, secretFile: analyticsFile))
            } catch {
                throw ValidationError("billing.analytics_credential_file: \(error.detail)")
            }
        }
        settings.selfServiceDeposits = config.reader.bool(forKey: "billing.self_service_deposits") ?? false
        settings.platformFeePercent = Int64(config.int("billing.platform_fee_percent", default: Int(settings.platformFeePercent)))
        guard (0...100).contains(settings.platformFeePercent) else {
            throw ValidationError("billing.platform_fee_percent must be 0 to 100, got \(settings.platformFeePercent)")
        }
        settings.maxDeposit = Int64(config.int("billing.max_deposit", default: Int(settings.maxDeposit)))
        guard settings.maxDeposit >= 1 else { throw ValidationError("billing.max_deposit must be positive") }
        settings.sessionIdleSeconds = Int64(config.int("billing.session_idle_s", default: Int(settings.sessionIdleSeconds)))
        guard settings.sessionIdleSeconds >= 10 else { throw ValidationError("billing.session_idle_s must be at least 10 seconds") }
        settings.maxSessionsPerViewer = config.int("billing.max_sessions_per_viewer", default: settings.maxSessionsPerViewer)
        guard settings.maxSessionsPerViewer >= 0 else { throw ValidationError("billing.max_sessions_per_viewer must be 0 (no cap) or more") }
        let policy = config.string("billing.session_cap_policy", flag: nil, default: settings.sessionCapPolicy.rawValue)
        guard let capPolicy = BillingSettings.SessionCapPolicy(rawValue: policy) else {
            throw ValidationError("billing.session_cap_policy must be refuse or end_oldest, got \(policy)")
        }
        settings.sessionCapPolicy = capPolicy
        settings.idempotencyTTLSeconds = Int64(config.int("billing.idempotency_ttl_s", default: Int(settings.idempotencyTTLSeconds)))
        guard settings.idempotencyTTLSeconds >= 86_400 else { throw ValidationError("billing.idempotency_ttl_s must be at least 86400 (24 h)") }
        settings.revocationTTLSeconds = Int64(config.int("billing.revocation_ttl_s", default: Int(settings.revocationTTLSeconds)))
        guard settings.revocationTTLSeconds >= 60 else { throw ValidationError("billing.revocation_ttl_s must be at least 60 seconds") }
        let deliveries = config.string("billing.deliveries", flag: deliveries, default: "")
        settings.deliveriesDirectory = deliveries.isEmpty ? nil : deliveries
        settings.packageStore = config.string("billing.package_store", flag: packageStore, default: config.dataDirectory + "/media")
        settings.meterIntervalMilliseconds = config.int("billing.meter_interval_ms", default: settings.meterIntervalMilliseconds)
        guard (10...60_000).contains(settings.meterIntervalMilliseconds) else { throw ValidationError("billing.meter_interval_ms must be 10 to 60000") }
        settings.meterBatch = config.int("billing.meter_batch", default: settings.meterBatch)
        guard (1...100_000).contains(settings.meterBatch) else { throw ValidationError("billing.meter_batch must be 1 to 100000") }

        // How ended and revoked sessions reach the gateways: Redis when there is one, otherwise
        // each gateway's admin listener.
        let revoker: any SessionRevoker
        let redis = config.string("redis.url", flag: nil, default: "")
        let admins = config.reader.stringArray(forKey: "billing.gateway_admin") ?? []
        if !redis.isEmpty {
            do {
                revoker = RedisSessionRevoker(endpoint: try RedisEndpoint(parsing: redis))
            } catch {
                throw ValidationError("redis.url: \(error)")
            }
        } else if !admins.isEmpty {
            let file = config.string("billing.admin_token_file", flag: nil, default: config.string("admin.token_file", flag: nil, default: ""))
            var bearer: String?
            if !file.isEmpty {
                guard let bytes = TokenKeyFiles.readSecret(file) else { throw ValidationError("billing.admin_token_file: cannot read \(file)") }
                bearer = String(decoding: bytes, as: UTF8.self)
            }
            revoker = GatewayAdminRevoker(admins: admins, bearer: bearer)
        } else {
            revoker = LoggingRevoker()
        }

        let logger = Logger(label: "marquee.billing")
        let service = try await BillingService.open(settings, revoker: revoker, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: try service.application(logger: logger))]
        services += service.housekeeping(logger: logger).map { .init(service: $0) }
        // Where the meter reads delivery records: the local log named by billing.deliveries, or
        // else the gateways' Redis stream (bus.stream) through the consumer group
        // billing.stream_group, as billing.stream_consumer (default: the host name), taking over
        // entries another worker left unacknowledged for billing.stream_claim_idle_s.
        var source: (any DeliverySource)?
        var metering = "no meter (billing.deliveries or redis.url)"
        if let folder = settings.deliveriesDirectory {
            source = LocalDeliveryLog(directory: folder)
            metering = "metering \(folder)"
        } else if !redis.isEmpty {
            var stream = RedisDeliveryStream.Settings(
                endpoint: try RedisEndpoint(parsing: redis),
                consumer: config.string("billing.stream_consumer", flag: nil, default: ProcessInfo.processInfo.hostName))
            stream.stream = config.string("bus.stream", flag: nil, default: stream.stream)
            stream.group = config.string("billing.stream_group", flag: nil, default: stream.group)
            let idle = config.int("billing.stream_claim_idle_s", default: 30)
            guard (1...86_400).contains(idle) else { throw ValidationError("billing.stream_claim_idle_s must be 1 to 86400") }
            stream.claimIdle = .seconds(idle)
            guard !stream.consumer.isEmpty, !stream.group.isEmpty, !stream.stream.isEmpty else {
                throw ValidationError("bus.stream, billing.stream_group and billing.stream_consumer must not be empty")
            }
            source = RedisDeliveryStream(settings: stream)
            metering = "metering the Redis stream \(stream.stream) as \(stream.consumer) in group \(stream.group)"
        }
        if let source {
            let store = try StoreLocation.open(settings.packageStore ?? config.dataDirectory + "/media")
            let meter = Meter(service: service, source: source, timelines: PackageTimelines(store: store), batchSize: settings.meterBatch)
            services.append(.init(service: meter.runner(interval: .milliseconds(settings.meterIntervalMilliseconds), logger: logger)))
        }
        printLine(
            "billing: listening on http://\(settings.listen) (database \(redacted(settings.database)), auth \(settings.authURL)); \(metering)")
        try await ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
        await service.close()
    }
}
