import Configuration
import MarqueeGateway
import MarqueeGatewaySettings
import MarqueeStore

/// Reads the origin's settings: its own section (`origin.*`: what it serves, where it listens) over
/// the settings every gateway role shares (`GatewaySettings`, the read-through cache's `cache.*`
/// among them). Every key is documented in `config/README.md`; `config/origin.yaml` lists them all
/// with their defaults.
public enum OriginConfiguration {
    public struct Flags: Sendable {
        public var root: String?
        /// `s3://BUCKET?endpoint=URL&region=R` (`origin.store`): serve from the store through the cache.
        public var store: String?
        /// `cache.dir`, `cache.max_bytes`.
        public var cacheDirectory: String?
        public var cacheMaxBytes: Int?
        /// `origin.edge_key_file`: trust fetches edges sign with this key. `origin.shield_only`:
        /// serve media to those only.
        public var edgeKeyFile: String?
        public var shieldOnly: Bool?
        /// The options every gateway role takes.
        public var gateway = GatewaySettings.Flags()

        public init(
            root: String? = nil, listen: String? = nil, admin: String? = nil, configFile: String? = nil, threads: Int? = nil,
            tokenKeys: [String] = [], tokenKeyDirectory: String? = nil, requireToken: Bool? = nil, services: [String] = []
        ) {
            self.root = root
            gateway.listen = listen
            gateway.admin = admin
            gateway.configFile = configFile
            gateway.threads = threads
            gateway.tokenKeys = tokenKeys
            gateway.tokenKeyDirectory = tokenKeyDirectory
            gateway.requireToken = requireToken
            gateway.services = services
        }
    }

    public static func load(_ flags: Flags, environment: [String: String] = GatewaySettings.processEnvironment()) async throws
        -> ServerConfiguration
    {
        let config = try await GatewaySettings.reader(configFile: flags.gateway.configFile, environment: environment)
        let store = flags.store ?? config.string(forKey: "origin.store", default: "")
        if !store.isEmpty && flags.root != nil {
            throw GatewayError.setting(key: "origin.store", message: "give --root (serve a folder) or --store (serve a store through the cache), not both")
        }
        var readThrough: ReadThroughSettings?
        if !store.isEmpty {
            // The store location is read as `marquee ingest --store` reads it (`StoreLocation`), credentials too.
            let objectStore: any ObjectStore
            do {
                objectStore = try StoreLocation.open(store, environment: environment)
            } catch {
                throw GatewayError.invalid("origin.store", ": \(error)")
            }
            readThrough = try GatewaySettings.readThrough(
                config, origin: .store(StoreReadThroughSource(store: objectStore)), directory: flags.cacheDirectory, maxBytes: flags.cacheMaxBytes)
        }
        let root = readThrough?.objectsDirectory ?? flags.root ?? config.string(forKey: "origin.root", default: "media")
        var c = try GatewaySettings.load(config, role: "origin", flags: flags.gateway, root: root)
        c.readThrough = readThrough
        let edgeKeyFile = flags.edgeKeyFile ?? config.string(forKey: "origin.edge_key_file", default: "")
        if !edgeKeyFile.isEmpty { c.edgeSignature = try GatewaySettings.edgeSignature("origin.edge_key_file", file: edgeKeyFile) }
        c.shieldOnly = flags.shieldOnly ?? config.bool(forKey: "origin.shield_only", default: false)
        if c.shieldOnly && c.edgeSignature == nil {
            throw GatewayError.invalid("origin.shield_only", "needs origin.edge_key_file (--edge-key-file): without it no edge could be served")
        }
        return c
    }
}
