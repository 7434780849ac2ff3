import Configuration
import Glibc
import MarqueeConsole
import MarqueeGateway
import MarqueeHTTP
import MarqueePolicy
import MarqueeTokens
import SystemPackage

/// The settings every gateway role shares, read in the engine so each role reads only its own
/// section (`origin.*`, `edge.*`): `http`, `ring`, `files`, `cache_control`, `cors`, `admin`,
/// `services`, `catalog`, `bus`, `gateway`, the access policy (`tokens`, `client`, `geo`,
/// `rate_limits`, `redis`, `revocation`) and the read-through cache (`cache`). Command-line flags win
/// over `MARQUEE_*` environment variables, which win over the YAML file, which wins over the
/// defaults. Every key is documented in `config/README.md`.
public enum GatewaySettings {
    /// The options every role's command takes.
    public struct Flags: Sendable {
        public var listen: String?
        public var admin: String?
        public var configFile: String?
        public var threads: Int?
        /// `ID:SECRET_FILE`, repeatable; added to `tokens.keys`.
        public var tokenKeys: [String] = []
        public var requireToken: Bool?
        /// A folder of `<ID>.key` files (`tokens.key_directory`).
        public var tokenKeyDirectory: String?
        /// `NAME=http://HOST:PORT`, repeatable; added to (and overriding) `services.<name>`.
        public var services: [String] = []
        /// `services.catalog_credential_file`: the file of the gateways' credential for the catalog's feed.
        public var catalogCredentialFile: String?
        /// `--admin-token-file`: the admin listener's bearer secret.
        public var adminTokenFile: String?
        /// `--no-delivery-records` (`bus.records`): false turns delivery records off.
        public var deliveryRecords: Bool?
        /// `--tls-cert FILE --tls-key FILE`, repeatable and paired in order (`tls.cert_file`,
        /// `tls.key_file`, `tls.more_cert_files`, `tls.more_key_files`): HTTPS on the media listener.
        public var tlsCertificateFiles: [String] = []
        public var tlsKeyFiles: [String] = []
        /// `--tls-redirect-listen HOST:PORT` (`tls.redirect_listen`).
        public var tlsRedirectListen: String?
        /// Where `bus.log.dir` defaults to when the key is not set (`marquee dev`: `<data>/deliveries`).
        public var defaultDeliveryLogDirectory: String?

        public init() {}
    }

    /// Keys that moved, refused with their new name rather than silently ignored.
    static let renamedKeys: [(old: String, new: String)] = [
        ("origin.cache_dir", "cache.dir"), ("origin.cache_max_bytes", "cache.max_bytes"), ("origin.cache_fetches", "cache.fetches"),
        ("origin.cache_fetch_queue", "cache.fetch_queue"), ("origin.cache_fetch_timeout_ms", "cache.fetch_timeout_ms"),
        ("origin.cache_negative_ms", "cache.negative_ms"),
    ]

    /// The layered sources: `MARQUEE_*` variables over the YAML file.
    public static func reader(configFile: String?, environment: [String: String] = processEnvironment()) async throws -> ConfigReader {
        var providers: [any ConfigProvider] = [EnvironmentVariablesProvider(environmentVariables: marqueeVariables(environment))]
        if let configFile {
            providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(configFile)))
        }
        let config = ConfigReader(providers: providers)
        for key in renamedKeys where config.string(forKey: ConfigKey(key.old)) != nil || config.int(forKey: ConfigKey(key.old)) != nil {
            throw GatewayError.invalid("\(key.old)", "was renamed \(key.new) (config/README.md)")
        }
        return config
    }

    /// Everything but the content source: `role` names the section whose `listen`, `admin` and
    /// `threads` keys apply (`origin`, `edge`), `root` the folder served.
    public static func load(_ config: ConfigReader, role: String, flags: Flags, root: String, defaultListen: String = "0.0.0.0:8080") throws
        -> ServerConfiguration
    {
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let listen = flags.listen ?? config.string(forKey: ConfigKey("\(role).listen"), default: defaultListen)
        let adminSetting = flags.admin ?? config.string(forKey: ConfigKey("\(role).admin"), default: "127.0.0.1:9090")
        let threadSetting = flags.threads ?? config.int(forKey: ConfigKey("\(role).threads"), default: 0)
        guard threadSetting >= 0 && threadSetting <= 256 else {
            throw GatewayError.invalid("\(role).threads", "must be between 0 (one per core) and 256, got \(threadSetting)")
        }
        var c = ServerConfiguration(
            root: root, listen: listen, admin: adminSetting.isEmpty || adminSetting == "off" ? nil : adminSetting,
            threads: threadSetting == 0 ? max(1, cores) : threadSetting)

        func positive(_ key: String, _ value: Int) throws -> Int {
            guard value > 0 else { throw GatewayError.invalid("\(key)", "must be positive, got \(value)") }
            return value
        }
        func int(_ key: String, _ fallback: Int) throws -> Int { try positive(key, config.int(forKey: ConfigKey(key), default: fallback)) }
        func ms(_ key: String, _ fallback: Int64) throws -> Int64 { Int64(try int(key, Int(fallback))) }

        c.maxConnections = try int("http.max_connections", c.maxConnections)
        c.requestLimits = RequestLimits(
            maxRequestLineBytes: try int("http.max_request_line_bytes", c.requestLimits.maxRequestLineBytes),
            maxHeadBytes: try int("http.max_head_bytes", c.requestLimits.maxHeadBytes),
            maxHeaderCount: try int("http.max_header_count", c.requestLimits.maxHeaderCount))
        c.maxPathBytes = try int("http.max_path_bytes", c.maxPathBytes)
        c.headerTimeoutMilliseconds = try ms("http.header_timeout_ms", c.headerTimeoutMilliseconds)
        c.idleTimeoutMilliseconds = try ms("http.idle_timeout_ms", c.idleTimeoutMilliseconds)
        c.bodyTimeoutMilliseconds = try ms("http.body_timeout_ms", c.bodyTimeoutMilliseconds)
        c.sendTimeoutMilliseconds = try ms("http.send_timeout_ms", c.sendTimeoutMilliseconds)
        c.lingerTimeoutMilliseconds = try ms("http.linger_timeout_ms", c.lingerTimeoutMilliseconds)
        c.shutdownGraceMilliseconds = try ms("http.shutdown_grace_ms", c.shutdownGraceMilliseconds)
        c.ringEntries = UInt32(try int("ring.entries", Int(c.ringEntries)))
        let buffers = try int("ring.receive_buffers", Int(c.receiveBufferCount))
        guard buffers.nonzeroBitCount == 1 else {
            throw GatewayError.invalid("ring.receive_buffers", "must be a power of two, got \(buffers)")
        }
        c.receiveBufferCount = UInt32(buffers)
        c.receiveBufferBytes = UInt32(try int("ring.receive_buffer_bytes", Int(c.receiveBufferBytes)))
        c.fileCacheEntries = try int("files.cache_entries", c.fileCacheEntries)
        c.fileCacheRevalidateMilliseconds = Int64(config.int(forKey: "files.revalidate_ms", default: Int(c.fileCacheRevalidateMilliseconds)))
        c.memoryFileMaxBytes = config.int(forKey: "files.memory_max_bytes", default: c.memoryFileMaxBytes)
        let transfer = config.string(forKey: "files.large_files", default: c.largeFileTransfer.rawValue)
        guard let largeFileTransfer = ServerConfiguration.LargeFileTransfer(rawValue: transfer) else {
            throw GatewayError.invalid("files.large_files", "must be \"send\" or \"splice\", got \"\(transfer)\"")
        }
        c.largeFileTransfer = largeFileTransfer
        c.spliceChunkBytes = try int("files.splice_chunk_bytes", c.spliceChunkBytes)
        c.maxPipesPerLoop = try int("files.pipes_per_loop", c.maxPipesPerLoop)
        c.cacheControlManifest = try headerValue("cache_control.manifest", config.string(forKey: "cache_control.manifest", default: c.cacheControlManifest))
        c.cacheControlSegment = try headerValue("cache_control.segment", config.string(forKey: "cache_control.segment", default: c.cacheControlSegment))
        c.cacheControlOther = try headerValue("cache_control.other", config.string(forKey: "cache_control.other", default: c.cacheControlOther))
        c.corsAllowedOrigins = try config.stringArray(forKey: "cors.allowed_origins", default: c.corsAllowedOrigins).map {
            try headerValue("cors.allowed_origins", $0)
        }
        c.corsMaxAgeSeconds = config.int(forKey: "cors.max_age_seconds", default: c.corsMaxAgeSeconds)
        guard c.memoryFileMaxBytes >= 0, c.fileCacheRevalidateMilliseconds >= 0, c.corsMaxAgeSeconds >= 0 else {
            throw GatewayError.setting(key: "files.memory_max_bytes", message: "files.memory_max_bytes, files.revalidate_ms and cors.max_age_seconds must not be negative")
        }
        c.adminAccess = try adminAccess(config, tokenFile: flags.adminTokenFile)
        c.policy = try PolicyConfiguration.load(
            config, tokenKeys: flags.tokenKeys, tokenKeyDirectory: flags.tokenKeyDirectory, requireToken: flags.requireToken)
        c.services = try services(config, flags: flags.services, catalogCredentialFile: flags.catalogCredentialFile)
        c.deliveryRecords = try deliveryRecords(config, flags: flags)
        c.deliveryRecords?.role = role
        c.tls = try tls(config, flags: flags)
        if c.services.titleRulesUpstream != nil && c.policy.geoDatabase == nil {
            printError("marquee: warning: per-title geo rules from the catalog cannot be enforced without geo.database; every client's country is unknown (geo.unknown_country decides)")
        }
        return c
    }

    /// `tls.*`: certificates paired with their keys in order (`--tls-cert`/`--tls-key`, or
    /// `tls.cert_file`/`tls.key_file` then `tls.more_cert_files`/`tls.more_key_files` for SNI),
    /// and `tls.hsts`. No certificate: plain HTTP.
    static func tls(_ config: ConfigReader, flags: Flags) throws -> TLSListenerSettings? {
        var certificates = flags.tlsCertificateFiles
        var keys = flags.tlsKeyFiles
        if certificates.isEmpty && keys.isEmpty {
            // Empty values (config/origin.yaml's defaults) mean unset.
            certificates = ([config.string(forKey: "tls.cert_file")].compactMap { $0 } + config.stringArray(forKey: "tls.more_cert_files", default: []))
                .filter { !$0.isEmpty }
            keys = ([config.string(forKey: "tls.key_file")].compactMap { $0 } + config.stringArray(forKey: "tls.more_key_files", default: []))
                .filter { !$0.isEmpty }
        }
        let hsts = config.string(forKey: "tls.hsts").flatMap { $0.isEmpty ? nil : $0 }
        let redirect = (flags.tlsRedirectListen ?? config.string(forKey: "tls.redirect_listen")).flatMap { $0.isEmpty ? nil : $0 }
        guard !certificates.isEmpty || !keys.isEmpty else {
            if hsts != nil { throw GatewayError.invalid("tls.hsts", "needs HTTPS: set tls.cert_file and tls.key_file (--tls-cert, --tls-key)") }
            if redirect != nil {
                throw GatewayError.invalid("tls.redirect_listen", "needs HTTPS: set tls.cert_file and tls.key_file (--tls-cert, --tls-key)")
            }
            return nil
        }
        guard certificates.count == keys.count else {
            throw GatewayError.invalid(
                "tls.key_file", "must come with each certificate: \(certificates.count) certificate(s) and \(keys.count) key(s) given (--tls-cert with --tls-key, in pairs)")
        }
        var settings = TLSListenerSettings(
            certificates: zip(certificates, keys).map { TLSListenerSettings.Certificate(chainFile: $0, keyFile: $1) },
            strictTransportSecurity: try hsts.map { try headerValue("tls.hsts", $0) }, redirectListen: redirect)
        settings.ticketKeyRotationSeconds = config.int(forKey: "tls.ticket_key_rotation_s", default: settings.ticketKeyRotationSeconds)
        guard settings.ticketKeyRotationSeconds >= 1 && settings.ticketKeyRotationSeconds <= 7 * 86400 else {
            throw GatewayError.invalid("tls.ticket_key_rotation_s", "must be 1 to 604800 seconds, got \(settings.ticketKeyRotationSeconds)")
        }
        return settings
    }

    /// `cache.*`: the read-through cache in front of `origin` (the origin's object store, an
    /// edge's upstreams). `--cache-dir` and `--cache-max-bytes` win over the keys.
    public static func readThrough(
        _ config: ConfigReader, origin: ReadThroughSettings.Origin, directory flagDirectory: String?, maxBytes flagMaxBytes: Int?,
        memoryBytes flagMemoryBytes: Int? = nil
    ) throws -> ReadThroughSettings {
        let directory = flagDirectory ?? config.string(forKey: "cache.dir", default: "")
        guard !directory.isEmpty else {
            throw GatewayError.setting(key: "cache.dir", message: "the read-through cache needs a folder: --cache-dir DIR (cache.dir)")
        }
        let maxBytes = flagMaxBytes ?? config.int(forKey: "cache.max_bytes", default: 10 << 30)
        guard maxBytes > 0 else { throw GatewayError.invalid("cache.max_bytes", "must be positive, got \(maxBytes)") }
        var s = ReadThroughSettings(origin: origin, directory: directory, maxBytes: Int64(maxBytes))
        s.fetchers = config.int(forKey: "cache.fetches", default: s.fetchers)
        guard (1...256).contains(s.fetchers) else { throw GatewayError.invalid("cache.fetches", "must be between 1 and 256") }
        s.queueLimit = config.int(forKey: "cache.fetch_queue", default: s.queueLimit)
        guard s.queueLimit >= 1 else { throw GatewayError.invalid("cache.fetch_queue", "must be positive") }
        s.timeoutMilliseconds = Int64(config.int(forKey: "cache.fetch_timeout_ms", default: Int(s.timeoutMilliseconds)))
        guard s.timeoutMilliseconds > 0 else { throw GatewayError.invalid("cache.fetch_timeout_ms", "must be positive") }
        s.negativeMilliseconds = Int64(config.int(forKey: "cache.negative_ms", default: Int(s.negativeMilliseconds)))
        guard s.negativeMilliseconds >= 0 else { throw GatewayError.invalid("cache.negative_ms", "must not be negative") }
        let memoryBytes = flagMemoryBytes ?? config.int(forKey: "cache.memory_bytes", default: 0)
        guard memoryBytes >= 0 else { throw GatewayError.invalid("cache.memory_bytes", "must not be negative (0: no RAM tier), got \(memoryBytes)") }
        guard memoryBytes <= maxBytes else {
            throw GatewayError.invalid("cache.memory_bytes", "must not exceed cache.max_bytes (\(maxBytes)), got \(memoryBytes)")
        }
        s.memoryBytes = Int64(memoryBytes)
        return s
    }

    /// `bus.*` and `gateway.*`: delivery records and where they go (docs/delivery-records.md).
    /// - `bus.records` (bool, default true): emit a record per media response; `--no-delivery-records`.
    /// - `bus.batch_ms` (int, ms, default 20): longest a record waits in its loop's ring.
    /// - `bus.ring_records` (int, records, default 8192, a power of two): each loop's ring; more are dropped and counted.
    /// - `bus.log.dir` (string, default `<cwd>/deliveries`): the local log's folder.
    /// - `bus.log.fsync_ms` (int, ms, default 100): fsync interval of the log.
    /// - `bus.log.segment_bytes` (int, bytes, default 67108864): segment size bound.
    /// - `bus.stream` (string, default `marquee:deliveries`), `bus.stream_maxlen` (int, entries, default 1000000,
    ///   `MAXLEN ~`; 0 unbounded): with `redis.url`, records go to this Redis stream, the log being their spill.
    /// - `gateway.id` (string, default (or empty) the host name), `gateway.region` (string, default `local`).
    static func deliveryRecords(_ config: ConfigReader, flags: Flags) throws -> DeliveryRecordSettings? {
        guard flags.deliveryRecords ?? config.bool(forKey: "bus.records", default: true) else { return nil }
        var cwd = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let here = getcwd(&cwd, cwd.count).map { String(cString: $0) } ?? "."
        let directory = config.string(forKey: "bus.log.dir", default: flags.defaultDeliveryLogDirectory ?? here + "/deliveries")
        guard !directory.isEmpty else { throw GatewayError.invalid("bus.log.dir", "must name a folder") }
        var s = DeliveryRecordSettings(logDirectory: directory, gatewayID: gatewayID(config))
        s.region = config.string(forKey: "gateway.region", default: s.region)
        for (key, value) in [("gateway.id", s.gatewayID), ("gateway.region", s.region)] {
            guard !value.isEmpty, value.utf8.count <= 64, value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw GatewayError.invalid("\(key)", "must be 1 to 64 visible ASCII characters, got \(value.debugDescription)")
            }
        }
        s.batchMilliseconds = config.int(forKey: "bus.batch_ms", default: s.batchMilliseconds)
        guard (1...10_000).contains(s.batchMilliseconds) else { throw GatewayError.invalid("bus.batch_ms", "must be between 1 and 10000") }
        s.ringRecords = config.int(forKey: "bus.ring_records", default: s.ringRecords)
        guard s.ringRecords >= 2, s.ringRecords <= 1 << 20, s.ringRecords.nonzeroBitCount == 1 else {
            throw GatewayError.invalid("bus.ring_records", "must be a power of two between 2 and 1048576, got \(s.ringRecords)")
        }
        s.logFsyncMilliseconds = config.int(forKey: "bus.log.fsync_ms", default: s.logFsyncMilliseconds)
        guard s.logFsyncMilliseconds >= 0 else { throw GatewayError.invalid("bus.log.fsync_ms", "must not be negative") }
        let redis = config.string(forKey: "redis.url", default: "")
        s.redisURL = redis.isEmpty ? nil : redis
        s.stream = config.string(forKey: "bus.stream", default: s.stream)
        guard !s.stream.isEmpty else { throw GatewayError.invalid("bus.stream", "must name a stream") }
        s.streamMaxLength = config.int(forKey: "bus.stream_maxlen", default: s.streamMaxLength)
        guard s.streamMaxLength >= 0 else { throw GatewayError.invalid("bus.stream_maxlen", "must not be negative (0: unbounded)") }
        s.logSegmentBytes = config.int(forKey: "bus.log.segment_bytes", default: s.logSegmentBytes)
        guard s.logSegmentBytes >= 1 << 16 else { throw GatewayError.invalid("bus.log.segment_bytes", "must be at least 65536") }
        return s
    }

    /// `gateway.id`: this gateway's name in delivery records and in its edge signature; the
    /// host name when not set.
    public static func gatewayID(_ config: ConfigReader) -> String {
        let id = config.string(forKey: "gateway.id", default: "")
        return id.isEmpty ? hostName() : id
    }

    static func hostName() -> String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "gateway" }
        let text = String(cString: name)
        return text.isEmpty ? "gateway" : text
    }

    /// Service names read from `services.<name>` (and `MARQUEE_SERVICES_<NAME>`); any other name
    /// is given with `--service NAME=URL`.
    static let knownServiceNames = ["auth", "catalog", "billing", "analytics", "ingest", "playback"]

    /// `services.*`: upstream URLs, body limit, timeout, idle pool, catalog title rules.
    static func services(_ config: ConfigReader, flags: [String], catalogCredentialFile: String? = nil) throws -> ServiceSettings {
        var s = ServiceSettings()
        var byName: [String: ServiceUpstream] = [:]
        var order: [String] = []
        func add(_ upstream: ServiceUpstream) {
            if byName[upstream.name] == nil { order.append(upstream.name) }
            byName[upstream.name] = upstream
        }
        do throws(GatewayError) {
            for name in knownServiceNames {
                let url = config.string(forKey: ConfigKey("services.\(name)"), default: "")
                if !url.isEmpty { add(try ServiceUpstream(name: name, url: url)) }
            }
            for assignment in flags { add(try ServiceUpstream(assignment: assignment)) }
        } catch {
            throw GatewayError.invalid("services", ": \(error.description)")
        }
        s.upstreams = order.map { byName[$0]! }
        s.maxRequestBodyBytes = config.int(forKey: "services.max_request_body_bytes", default: s.maxRequestBodyBytes)
        guard s.maxRequestBodyBytes >= 0, s.maxRequestBodyBytes <= 1 << 30 else {
            throw GatewayError.invalid("services.max_request_body_bytes", "must be between 0 and 1073741824")
        }
        s.maxBodyBufferBytesPerLoop = config.int(forKey: "services.body_buffer_bytes_per_loop", default: s.maxBodyBufferBytesPerLoop)
        guard s.maxBodyBufferBytesPerLoop >= s.maxRequestBodyBytes else {
            throw GatewayError.invalid("services.body_buffer_bytes_per_loop", "must be at least services.max_request_body_bytes")
        }
        s.timeoutMilliseconds = Int64(config.int(forKey: "services.timeout_ms", default: Int(s.timeoutMilliseconds)))
        guard s.timeoutMilliseconds > 0 else { throw GatewayError.invalid("services.timeout_ms", "must be positive") }
        s.idleConnectionsPerUpstream = config.int(forKey: "services.idle_connections", default: s.idleConnectionsPerUpstream)
        guard s.idleConnectionsPerUpstream >= 0, s.idleConnectionsPerUpstream <= 4096 else {
            throw GatewayError.invalid("services.idle_connections", "must be between 0 and 4096")
        }
        let credentialFile = catalogCredentialFile ?? config.string(forKey: "services.catalog_credential_file", default: "")
        if !credentialFile.isEmpty {
            s.catalogCredential = String(decoding: try bearerSecret("services.catalog_credential_file", file: credentialFile), as: UTF8.self)
        }
        s.titleRules = config.bool(forKey: "catalog.title_rules", default: s.titleRules)
        s.titleRulesWaitSeconds = config.int(forKey: "catalog.wait_seconds", default: s.titleRulesWaitSeconds)
        guard s.titleRulesWaitSeconds >= 1, s.titleRulesWaitSeconds <= 300 else {
            throw GatewayError.invalid("catalog.wait_seconds", "must be between 1 and 300")
        }
        return s
    }

    /// The key edges and the origin share to sign and check edge fetches (`origin.edge_key_file`,
    /// `edge.upstream_key_file`): at least 32 bytes.
    public static func edgeSignature(_ key: String, file: String) throws -> EdgeSignature {
        guard let secret = TokenKeyFiles.readSecret(file) else {
            throw GatewayError.invalid(key, ": cannot read \(file): \(String(cString: strerror(errno)))")
        }
        do {
            return try EdgeSignature(secrets: [secret])
        } catch {
            throw GatewayError.invalid(key, ": \(file): \(error)")
        }
    }

    /// A secret sent as `Authorization: Bearer` (the admin listener's, the catalog feed's): one line
    /// of 32 to 1024 visible ASCII bytes, so it can travel in a header.
    static func bearerSecret(_ key: String, file: String) throws -> [UInt8] {
        guard let secret = TokenKeyFiles.readSecret(file) else {
            throw GatewayError.invalid("\(key)", ": cannot read \(file): \(String(cString: strerror(errno)))")
        }
        let lengths = AdminAccess.minimumSecretBytes...1024
        guard lengths.contains(secret.count) else {
            throw GatewayError.invalid("\(key)", ": \(file) holds \(secret.count) bytes; \(lengths.lowerBound) to \(lengths.upperBound) are required")
        }
        guard secret.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw GatewayError.invalid("\(key)", ": \(file) must hold visible ASCII without spaces (it is sent in a header)")
        }
        return secret
    }

    /// `admin.*`: the bearer secret for state-changing admin routes, the accepted `Host` names,
    /// and the revocation route's bounds.
    static func adminAccess(_ config: ConfigReader, tokenFile flag: String?) throws -> AdminAccess {
        var a = AdminAccess()
        let tokenFile = flag ?? config.string(forKey: "admin.token_file", default: "")
        if !tokenFile.isEmpty { a.bearerSecret = try bearerSecret("admin.token_file", file: tokenFile) }
        a.allowedHosts = try config.stringArray(forKey: "admin.allowed_hosts", default: []).map { name in
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
                throw GatewayError.invalid("admin.allowed_hosts", ": \(name.debugDescription) is not a host name")
            }
            return name.lowercased()
        }
        a.maxRevocationSeconds = Int64(config.int(forKey: "admin.max_revocation_ttl_s", default: Int(a.maxRevocationSeconds)))
        guard a.maxRevocationSeconds >= 1, a.maxRevocationSeconds <= 366 * 86400 else {
            throw GatewayError.invalid("admin.max_revocation_ttl_s", "must be between 1 and 31622400")
        }
        a.revocationsPerSecond = config.int(forKey: "admin.revocations_per_second", default: a.revocationsPerSecond)
        guard a.revocationsPerSecond >= 1 else { throw GatewayError.invalid("admin.revocations_per_second", "must be positive") }
        return a
    }

    /// A header value must not be able to break the response framing.
    static func headerValue(_ key: String, _ value: String) throws -> String {
        guard !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw GatewayError.invalid("\(key)", "must not contain control characters")
        }
        return value
    }

    /// `MARQUEE_HTTP_IDLE_TIMEOUT_MS=5000` overrides `http.idle_timeout_ms`.
    static func marqueeVariables(_ environment: [String: String]) -> [String: String] {
        var result: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix("MARQUEE_") {
            result[String(name.dropFirst("MARQUEE_".count))] = value
        }
        return result
    }

    public static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            cursor += 1
        }
        return result
    }
}
