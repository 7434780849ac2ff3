import Configuration
import MarqueeGateway
import MarqueeGatewaySettings
import MarqueeHTTP
import MarqueeTLS
import MarqueeTokens

/// Reads an edge's settings: its own section (`edge.*`: its upstreams, the key it signs its
/// fetches with, where it listens) over the settings every gateway role shares
/// (`GatewaySettings`, the read-through cache's `cache.*` among them). Every key is documented in
/// `config/README.md`; `config/edge.yaml` lists them with their defaults.
public enum EdgeConfiguration {
    public struct Flags: Sendable {
        /// `http://HOST:PORT` of each upstream (`edge.upstreams`): origins or parent edges.
        public var upstreams: [String] = []
        /// `cache.dir`, `cache.max_bytes`.
        public var cacheDirectory: String?
        public var cacheMaxBytes: Int?
        /// `cache.memory_bytes`: the RAM tier's bound.
        public var memoryCacheBytes: Int?
        /// `edge.upstream_key_file`: the key shared with the origin (its `origin.edge_key_file`).
        public var upstreamKeyFile: String?
        /// `edge.upstream_ca_file`: the CAs https upstreams' certificates must chain to.
        public var upstreamCAFile: String?
        /// `edge.upstream_pins`: public keys (`sha256//BASE64`) one of which https upstreams'
        /// verified chains must carry.
        public var upstreamPins: [String] = []
        /// The options every gateway role takes.
        public var gateway = GatewaySettings.Flags()

        public init() {}
    }

    public static func load(_ flags: Flags, environment: [String: String] = GatewaySettings.processEnvironment()) async throws
        -> ServerConfiguration
    {
        let config = try await GatewaySettings.reader(configFile: flags.gateway.configFile, environment: environment)
        let urls = try flags.upstreams.isEmpty ? config.stringArray(forKey: "edge.upstreams", default: []) : flags.upstreams
        guard !urls.isEmpty else {
            throw GatewayError.setting(key: "edge.upstreams", message: "an edge needs at least one upstream: --upstream http://HOST:PORT (edge.upstreams)")
        }
        var upstreams: [ServiceUpstream] = []
        for url in urls {
            do {
                upstreams.append(try ServiceUpstream(name: "upstream", url: url, allowTLS: true))
            } catch {
                throw GatewayError.invalid("edge.upstreams", ": \(url.debugDescription): \(error.message)")
            }
        }
        guard Set(upstreams.map(\.authority)).count == upstreams.count else {
            throw GatewayError.invalid("edge.upstreams", "names an upstream twice")
        }
        // https upstreams are verified against these CAs (or the system's), for the name in their URL.
        let caFile = (flags.upstreamCAFile ?? config.string(forKey: "edge.upstream_ca_file")).flatMap { $0.isEmpty ? nil : $0 }
        // Pinning adds to the CAs: the verified chain must also carry one of these keys.
        let pinTexts = try flags.upstreamPins.isEmpty ? config.stringArray(forKey: "edge.upstream_pins", default: []) : flags.upstreamPins
        var pins: [TLSKeyPin] = []
        for text in pinTexts {
            guard let pin = TLSKeyPin(text) else {
                throw GatewayError.invalid("edge.upstream_pins", ": \(text.debugDescription) is not sha256//BASE64 of a 32-byte digest (curl --pinnedpubkey's form)")
            }
            pins.append(pin)
        }
        var upstreamTLS: TLSContext?
        if upstreams.contains(where: { $0.tlsServerName != nil }) {
            do throws(TLSError) {
                upstreamTLS = try TLSContext(clientTrusting: caFile, pinnedKeys: pins)
            } catch {
                throw GatewayError.invalid("edge.upstream_ca_file", ": \(error)")
            }
        } else if caFile != nil {
            throw GatewayError.invalid("edge.upstream_ca_file", "is for https:// upstreams, and edge.upstreams has none")
        } else if !pins.isEmpty {
            throw GatewayError.invalid("edge.upstream_pins", "are for https:// upstreams, and edge.upstreams has none")
        }
        let edgeID = GatewaySettings.gatewayID(config)
        let keyFile = flags.upstreamKeyFile ?? config.string(forKey: "edge.upstream_key_file", default: "")
        var signer: (EdgeSignature, String)?
        if !keyFile.isEmpty {
            guard EdgeSignature.isValidEdgeID(Array(edgeID.utf8)) else {
                throw GatewayError.invalid("gateway.id", "must be 1-64 characters of A-Z a-z 0-9 - _ . to sign edge fetches, got \(edgeID.debugDescription)")
            }
            signer = (try GatewaySettings.edgeSignature("edge.upstream_key_file", file: keyFile), edgeID)
        }
        let downMilliseconds = config.int(forKey: "edge.upstream_down_ms", default: 5_000)
        guard downMilliseconds >= 0 else { throw GatewayError.invalid("edge.upstream_down_ms", "must not be negative") }
        let healthMilliseconds = config.int(forKey: "edge.health_check_ms", default: 1_000)
        guard healthMilliseconds >= 0 else { throw GatewayError.invalid("edge.health_check_ms", "must not be negative (0 turns probes off)") }

        var defaults = ResponseFacts.Defaults()
        for (key, value) in [
            ("edge.default_ttl_s", \ResponseFacts.Defaults.ttlSeconds), ("edge.stale_while_revalidate_s", \.staleWhileRevalidateSeconds),
            ("edge.stale_if_error_s", \.staleIfErrorSeconds),
        ] {
            let seconds = config.int(forKey: ConfigKey(key), default: Int(defaults[keyPath: value]))
            guard seconds >= 0 && Int64(seconds) <= CacheControl.maxSeconds else {
                throw GatewayError.invalid(key, "must be between 0 and \(CacheControl.maxSeconds) seconds, got \(seconds)")
            }
            defaults[keyPath: value] = Int64(seconds)
        }

        let source = HTTPUpstreamSource(
            upstreams: upstreams, signer: signer, edgeID: edgeID, downMilliseconds: Int64(downMilliseconds), defaults: defaults,
            healthCheckMilliseconds: Int64(healthMilliseconds), tls: upstreamTLS)
        let readThrough = try GatewaySettings.readThrough(
            config, origin: .upstreams(source), directory: flags.cacheDirectory, maxBytes: flags.cacheMaxBytes, memoryBytes: flags.memoryCacheBytes)
        var c = try GatewaySettings.load(config, role: "edge", flags: flags.gateway, root: readThrough.objectsDirectory)
        c.readThrough = readThrough
        c.upstreamTLS = upstreamTLS
        return c
    }
}
