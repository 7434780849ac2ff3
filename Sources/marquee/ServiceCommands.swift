import ArgumentParser
import Configuration
import Foundation
import Hummingbird
import Logging
import MarqueeAuth
import MarqueeCatalog
import MarqueeConsole
import MarqueeIngest
import MarqueePlayback
import MarqueePolicy
import MarqueeServiceKit
import MarqueeStore
import MarqueeTokens
import ServiceLifecycle
import UnixSignals

/// Flags every service command shares.
struct ServiceOptions: ParsableArguments {
    @Option(help: "YAML configuration file; MARQUEE_* environment variables override it.")
    var config: String?

    @Option(help: "Data folder for the SQLite databases (data; default ./var).")
    var data: String?

    @Option(help: "Database URL: sqlite:///path/file.db (default under the data folder) or postgres://user:password@host:port/db.")
    var database: String?

    func configuration() async throws -> ServiceConfiguration {
        do {
            return try await ServiceConfiguration(configFile: config, dataDirectory: data)
        } catch {
            throw ValidationError("cannot read the configuration: \(error)")
        }
    }
}

struct AuthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth", abstract: "Run the auth service: accounts, sign-in, access and refresh tokens, JWKS.")

    @Option(help: "Listener, HOST:PORT (auth.listen; default 127.0.0.1:8081).")
    var listen: String?

    @Option(
        name: .customLong("key-encryption-key-file"),
        help: "File holding the key the signing keys are encrypted with in the database, 64 hex characters (auth.key_encryption_key_file; required).")
    var keyEncryptionKeyFile: String?

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let settings = try await AuthCommand.settings(options, listen: listen, keyEncryptionKeyFile: keyEncryptionKeyFile)
        let service = try await AuthService.open(settings)
        printLine("auth: listening on http://\(settings.listen) (database \(redacted(settings.database)))")
        try await service.application().runService()
    }

    static func settings(_ options: ServiceOptions, listen: String?, keyEncryptionKeyFile: String? = nil) async throws -> AuthSettings {
        let config = try await options.configuration()
        var settings = AuthSettings()
        settings.listen = config.string("auth.listen", flag: listen, default: settings.listen)
        settings.database = config.databaseURL(flag: options.database, key: "auth.database", defaultName: "auth")
        settings.issuer = config.string("auth.issuer", flag: nil, default: settings.issuer)
        let keyFile = config.string("auth.key_encryption_key_file", flag: keyEncryptionKeyFile, default: "")
        settings.keyEncryptionKeyFile = keyFile.isEmpty ? nil : keyFile
        settings.accessTokenLifetime = TimeInterval(config.int("auth.access_token_ttl_s", default: 900))
        settings.refreshTokenLifetime = TimeInterval(config.int("auth.refresh_token_ttl_s", default: 30 * 24 * 3600))
        let cost = config.int("auth.bcrypt_cost", default: 12)
        guard (10...16).contains(cost) else { throw ValidationError("auth.bcrypt_cost must be 10 to 16 (12 or more in production), got \(cost)") }
        settings.bcryptCost = UInt8(cost)
        settings.setKeyRotation(
            every: TimeInterval(config.int("auth.key_rotation_days", default: 30) * 86400),
            publishLead: TimeInterval(config.int("auth.key_publish_lead_s", default: 600)))
        settings.setAccountThrottle(
            failures: config.int("auth.throttle.account_failures", default: 5), blockSeconds: config.int("auth.throttle.account_block_s", default: 60))
        settings.setAddressThrottle(
            failures: config.int("auth.throttle.address_failures", default: 30), blockSeconds: config.int("auth.throttle.address_block_s", default: 300))
        let registrations = config.int("auth.throttle.registrations", default: 10)
        let registrationWindow = config.int("auth.throttle.registration_window_s", default: 3600)
        guard registrations >= 1, registrationWindow >= 1 else {
            throw ValidationError("auth.throttle.registrations and auth.throttle.registration_window_s must be positive, got \(registrations) and \(registrationWindow)")
        }
        settings.setRegistrationThrottle(perAddress: registrations, windowSeconds: registrationWindow)
        if let proxies = config.reader.stringArray(forKey: "auth.trusted_proxies") { settings.trustedProxies = Set(proxies) }
        return settings
    }
}

struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog", abstract: "Run the catalog service: titles, prices, geo rules, availability, packages.")

    @Option(help: "Listener, HOST:PORT (catalog.listen; default 127.0.0.1:8082).")
    var listen: String?

    @Option(name: .customLong("auth-url"), help: "The auth service, whose JWKS verifies tokens (catalog.auth_url; default http://127.0.0.1:8081).")
    var authURL: String?

    @Option(
        name: .customLong("ingest-credential-file"),
        help: "File holding ingest's service credential, which may attach packages to titles and nothing else (catalog.ingest_credential_file).")
    var ingestCredentialFile: String?

    @Option(
        name: .customLong("gateway-credential-file"),
        help: "File holding the gateways' service credential, which may read the access-rules feed and nothing else (catalog.gateway_credential_file).")
    var gatewayCredentialFile: String?

    @Option(
        name: .customLong("playback-credential-file"),
        help: "File holding playback's service credential, which may read titles with their owner and nothing else (catalog.playback_credential_file).")
    var playbackCredentialFile: String?

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let config = try await options.configuration()
        var settings = CatalogSettings()
        settings.listen = config.string("catalog.listen", flag: listen, default: settings.listen)
        settings.database = config.databaseURL(flag: options.database, key: "catalog.database", defaultName: "catalog")
        settings.authURL = config.string("catalog.auth_url", flag: authURL, default: settings.authURL)
        settings.authIssuer = config.string("catalog.auth_issuer", flag: nil, default: settings.authIssuer)
        for (key, flag, holder, grant) in [
            ("catalog.ingest_credential_file", ingestCredentialFile, "ingest", ServiceGrant.attachPackages),
            ("catalog.gateway_credential_file", gatewayCredentialFile, "gateway", ServiceGrant.readAccessRules),
            ("catalog.playback_credential_file", playbackCredentialFile, "playback", ServiceGrant.readTitles),
        ] {
            let file = config.string(key, flag: flag, default: "")
            guard !file.isEmpty else { continue }
            do throws(ServiceError) {
                settings.credentials.append(try ServiceCredential(holder: holder, grant: grant, secretFile: file))
            } catch {
                throw ValidationError("\(key): \(error.detail)")
            }
        }
        settings.maxWaitingPolls = config.int("catalog.max_waiting_polls", default: settings.maxWaitingPolls)
        guard (1...100_000).contains(settings.maxWaitingPolls) else {
            throw ValidationError("catalog.max_waiting_polls must be 1 to 100000, got \(settings.maxWaitingPolls)")
        }
        settings.rulesRecheckMilliseconds = config.int("catalog.rules_recheck_ms", default: settings.rulesRecheckMilliseconds)
        guard (100...60_000).contains(settings.rulesRecheckMilliseconds) else {
            throw ValidationError("catalog.rules_recheck_ms must be 100 to 60000 ms, got \(settings.rulesRecheckMilliseconds)")
        }
        let service = try await CatalogService.open(settings)
        printLine("catalog: listening on http://\(settings.listen) (database \(redacted(settings.database)), auth \(settings.authURL))")
        try await service.application().runService()
    }
}

struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest", abstract: "Run the ingest service: tus resumable uploads of sources and the ingest job queue's status.")

    @Option(help: "Listener, HOST:PORT (ingest.listen; default 127.0.0.1:8085).")
    var listen: String?

    @Option(name: .customLong("auth-url"), help: "The auth service, whose JWKS verifies tokens (ingest.auth_url; default http://127.0.0.1:8081).")
    var authURL: String?

    @Option(help: "Transcoding workers in this process, 0 for an upload-only node (ingest.workers; default 1).")
    var workers: Int?

    @Option(help: "Where packages are published: a folder or s3://BUCKET?endpoint=URL&region=R (ingest.store; default <data>/media).")
    var store: String?

    @Option(
        name: .customLong("source-store"),
        help: "Where finished uploads are kept for the workers, as sources/<upload id>: a folder or s3://… (ingest.source_store; default: the data folder, as <data>/sources/<upload id>; required with an S3 package store).")
    var sourceStore: String?

    @Option(name: .customLong("catalog-url"), help: "The catalog told about finished packages (ingest.catalog_url; none: packages are only published).")
    var catalogURL: String?

    @Option(
        name: .customLong("catalog-credential-file"),
        help: "File holding ingest's service credential for the catalog, the same secret as its catalog.ingest_credential_file (ingest.catalog_credential_file).")
    var catalogCredentialFile: String?

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let config = try await options.configuration()
        var settings = IngestSettings()
        settings.listen = config.string("ingest.listen", flag: listen, default: settings.listen)
        settings.database = config.databaseURL(flag: options.database, key: "ingest.database", defaultName: "ingest")
        settings.dataDirectory = config.string("ingest.data", flag: options.data, default: config.dataDirectory)
        settings.authURL = config.string("ingest.auth_url", flag: authURL, default: settings.authURL)
        settings.authIssuer = config.string("ingest.auth_issuer", flag: nil, default: settings.authIssuer)
        let maxBytes = config.reader.int(forKey: "ingest.max_upload_bytes") ?? Int(settings.maxUploadBytes)
        guard maxBytes > 0 else { throw ValidationError("ingest.max_upload_bytes must be a positive number of bytes, got \(maxBytes)") }
        settings.maxUploadBytes = Int64(maxBytes)
        let expiry = config.int("ingest.upload_expiry", default: 86400)
        guard expiry >= 1 else { throw ValidationError("ingest.upload_expiry must be a positive number of seconds, got \(expiry)") }
        settings.uploadExpiry = .seconds(expiry)
        let inFlight = config.reader.int(forKey: "ingest.max_bytes_in_flight_per_publisher") ?? Int(settings.maxBytesInFlightPerPublisher)
        guard inFlight >= 0 else {
            throw ValidationError("ingest.max_bytes_in_flight_per_publisher must be a number of bytes (0 for no quota), got \(inFlight)")
        }
        settings.maxBytesInFlightPerPublisher = Int64(inFlight)
        settings.catalogURL = catalogURL ?? config.reader.string(forKey: "ingest.catalog_url")
        let workerCount = workers ?? config.int("ingest.workers", default: 1)
        guard (0...64).contains(workerCount) else { throw ValidationError("ingest.workers must be 0 to 64, got \(workerCount)") }
        let storeLocation = config.string("ingest.store", flag: store, default: settings.dataDirectory + "/media")
        let objectStore = try StoreLocation.open(storeLocation)
        // Sources travel through a store every node shares, so any worker on any machine can take
        // any job.
        // Never where the origin serves packages by default: a folder store keeps sources in the data
        // folder (`<data>/sources/<upload id>`); an S3 package store needs another location named.
        let sourceSetting = config.string("ingest.source_store", flag: sourceStore, default: "")
        let sourceLocation: String
        if !sourceSetting.isEmpty {
            sourceLocation = sourceSetting
        } else if storeLocation.hasPrefix("s3://") {
            throw ValidationError(
                "ingest.source_store is required with an S3 package store (ingest.store): name another bucket, or a folder every node shares, so uploaded sources never sit where the origin serves packages (--source-store)")
        } else {
            sourceLocation = settings.dataDirectory
        }
        let sources = sourceLocation == storeLocation ? objectStore : try StoreLocation.open(sourceLocation)
        let service = try await IngestService.open(settings, sourceStore: sources)
        var announcer: CatalogAnnouncer?
        if let catalog = settings.catalogURL {
            let file = config.string("ingest.catalog_credential_file", flag: catalogCredentialFile, default: "")
            guard !file.isEmpty else {
                throw ValidationError(
                    "ingest.catalog_url needs ingest.catalog_credential_file (--catalog-credential-file): the secret the catalog accepts as catalog.ingest_credential_file")
            }
            do throws(ServiceError) {
                announcer = CatalogAnnouncer(
                    catalogURL: catalog, credential: try ServiceCredential(holder: "ingest", grant: .attachPackages, secretFile: file))
            } catch {
                throw ValidationError("ingest.catalog_credential_file: \(error.detail)")
            }
        }
        let database = try await openDatabase(settings.database)
        let queue = IngestJobs(database: database)
        let host = ProcessInfo.processInfo.hostName
        let work = settings.dataDirectory + "/work"
        let leaseSeconds = config.int("ingest.lease_s", default: 60)
        guard (2...3600).contains(leaseSeconds) else { throw ValidationError("ingest.lease_s must be 2 to 3600 seconds, got \(leaseSeconds)") }
        let workers = IngestWorkers(
            (0..<workerCount).map { index in
                IngestWorker(
                    jobs: queue, store: objectStore, sourceStore: sources, workerID: "\(host)-\(getpid())-\(index)", lease: .seconds(leaseSeconds), workFolder: work,
                    announcer: announcer)
            })
        printLine(
            "ingest: listening on http://\(settings.listen) (database \(redacted(settings.database)), uploads in \(settings.dataDirectory)/uploads, auth \(settings.authURL)); \(workerCount) worker(s) publishing to \(storeLocation), sources kept in \(sourceLocation)"
        )
        let logger = Logger(label: "marquee.ingest")
        // SIGTERM/SIGINT stop the listener and the workers together; a job stopped mid-way goes
        // back to the queue.
        try await ServiceGroup(
            configuration: .init(
                services: [.init(service: try service.application(logger: logger)), .init(service: workers)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        ).run()
        await service.close()
        await database.close()
    }
}

struct PlaybackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "playback", abstract: "Run the playback service: sessions that check a title's rules and hand out signed URLs.")

    @Option(help: "Listener, HOST:PORT (playback.listen; default 127.0.0.1:8086).")
    var listen: String?

    @Option(name: .customLong("auth-url"), help: "The auth service, whose JWKS verifies tokens (playback.auth_url; default http://127.0.0.1:8081).")
    var authURL: String?

    @Option(name: .customLong("catalog-url"), help: "The catalog asked for titles (playback.catalog_url; default http://127.0.0.1:8082).")
    var catalogURL: String?

    @Option(name: .customLong("token-key"), help: "The URL token key sessions are signed with, ID:SECRET_FILE (playback.token_key); the gateways must know it.")
    var tokenKey: String?

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let config = try await options.configuration()
        var settings = PlaybackSettings()
        settings.listen = config.string("playback.listen", flag: listen, default: settings.listen)
        settings.database = config.databaseURL(flag: options.database, key: "playback.database", defaultName: "playback")
        settings.authURL = config.string("playback.auth_url", flag: authURL, default: settings.authURL)
        settings.authIssuer = config.string("playback.auth_issuer", flag: nil, default: settings.authIssuer)
        settings.catalogURL = config.string("playback.catalog_url", flag: catalogURL, default: settings.catalogURL)
        // The same `ID:SECRET_FILE` form and file reading as the gateways' `tokens.keys`.
        let key: TokenKeyFiles.KeyFile
        do {
            key = try TokenKeyFiles.KeyFile(parsing: config.string("playback.token_key", flag: tokenKey, default: ""))
        } catch {
            throw ValidationError("playback.token_key (--token-key), the key the gateways verify: \(error)")
        }
        guard let secret = TokenKeyFiles.readSecret(key.path) else { throw ValidationError("cannot read the token key secret \(key.path)") }
        settings.tokenKey = URLTokenKey(id: key.id, secret: secret)
        let geo = config.string("playback.geo_database", flag: nil, default: "")
        settings.geoDatabase = geo.isEmpty ? nil : geo
        switch config.string("playback.unknown_country", flag: nil, default: "allow") {
        case "allow": settings.unknownCountry = .allow
        case "deny": settings.unknownCountry = .deny
        case let other: throw ValidationError("playback.unknown_country must be allow or deny, got \(other)")
        }
        if let proxies = config.reader.stringArray(forKey: "playback.trusted_proxies") { settings.trustedProxies = Set(proxies) }
        settings.extraValiditySeconds = Int64(config.int("playback.extra_validity_s", default: Int(settings.extraValiditySeconds)))
        settings.unknownDurationValiditySeconds = Int64(
            config.int("playback.unknown_duration_validity_s", default: Int(settings.unknownDurationValiditySeconds)))
        guard settings.extraValiditySeconds >= 0, settings.unknownDurationValiditySeconds > 0 else {
            throw ValidationError("playback.extra_validity_s must not be negative and playback.unknown_duration_validity_s must be positive")
        }
        settings.bindClientAddress = config.reader.bool(forKey: "playback.bind_client_address") ?? false
        settings.publicURL = config.reader.string(forKey: "playback.public_url")
        do {
            settings.regions = try PlaybackRegions(entries: config.reader.stringArray(forKey: "playback.regions") ?? [])
        } catch {
            throw ValidationError("\(error)")
        }
        if !settings.regions.regions.isEmpty && settings.geoDatabase == nil {
            throw ValidationError("playback.regions needs playback.geo_database: without it no viewer's country is known")
        }
        settings.billingURL = config.reader.string(forKey: "playback.billing_url")
        for (key, grant) in [("playback.billing_credential_file", ServiceGrant.openBillingSessions), ("playback.catalog_credential_file", .readTitles)] {
            let file = config.string(key, flag: nil, default: "")
            guard !file.isEmpty else { continue }
            do throws(ServiceError) {
                let credential = try ServiceCredential(holder: "playback", grant: grant, secretFile: file)
                if grant == .openBillingSessions { settings.billingCredential = credential } else { settings.catalogCredential = credential }
            } catch {
                throw ValidationError("\(key): \(error.detail)")
            }
        }
        let service = try await PlaybackService.open(settings)
        printLine("playback: listening on http://\(settings.listen) (database \(redacted(settings.database)), catalog \(settings.catalogURL), auth \(settings.authURL), key \(key.id))")
        try await service.application().runService()
    }
}

struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "Manage accounts directly in the auth database.", subcommands: [Add.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an account (the way to make the first admin).")

        @Option(help: "Email address.")
        var email: String

        @Option(help: "viewer, publisher or admin.")
        var role: String

        @Option(name: .customLong("password-file"), help: "File holding the password (one line; '-' reads standard input).")
        var passwordFile: String

        @OptionGroup var options: ServiceOptions

        func run() async throws {
            guard let role = Role(rawValue: role) else { throw ValidationError("--role must be viewer, publisher or admin") }
            let text: String
            if passwordFile == "-" {
                text = readLine(strippingNewline: true) ?? ""
            } else {
                guard let contents = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                    throw ValidationError("cannot read --password-file \(passwordFile)")
                }
                text = contents
            }
            let password = text.hasSuffix("\n") ? String(text.dropLast()) : text
            let settings = try await AuthCommand.settings(options, listen: nil)
            let service = try await AuthService.openForAccounts(settings)
            do {
                let user = try await service.createAccount(email: email, password: password, role: role)
                await service.close()
                print("created \(user.role.rawValue) \(user.email) (id \(user.id))")
            } catch let error as ServiceError {
                await service.close()
                printError("marquee users add: \(error.detail)")
                throw ExitCode(1)
            }
        }
    }
}

/// A database URL without its password, for logs.
func redacted(_ url: String) -> String {
    guard let at = url.firstIndex(of: "@"), let scheme = url.range(of: "://"), let colon = url[scheme.upperBound..<at].firstIndex(of: ":") else {
        return url
    }
    return String(url[..<colon]) + ":***" + String(url[at...])
}
