import ArgumentParser
import MarqueeConsole
import MarqueeGateway
import MarqueeEdge
import MarqueeGatewaySettings
import MarqueeOrigin

struct MarqueeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "marquee",
        abstract: "Marquee: an edge streaming gateway and CDN origin.",
        subcommands: [
            DevCommand.self, OriginCommand.self, EdgeCommand.self, AuthCommand.self, CatalogCommand.self, IngestCommand.self, PlaybackCommand.self, BillingCommand.self, AnalyticsCommand.self, UsersCommand.self, ProbeCommand.self,
            PackageCommand.self, TestClipCommand.self, SignCommand.self, RevokeCommand.self, LoadtestCommand.self,
        ])
}

struct OriginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "origin",
        abstract: "Serve a folder of packaged titles (HLS, DASH, CMAF) over HTTP/1.1.")

    @Option(help: "Folder whose files are served (origin.root).")
    var root: String?

    @Option(
        help: ArgumentHelp(
            "Serve from an object store through a local cache instead of a folder: s3://BUCKET?endpoint=URL&region=R[&addressing=virtual-host] (origin.store).",
            discussion: "Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, as for marquee ingest --store. Needs --cache-dir."))
    var store: String?

    @Option(name: .customLong("cache-dir"), help: "The read-through cache's folder (cache.dir); it is served from DIR/objects.")
    var cacheDirectory: String?

    @Option(name: .customLong("cache-max-bytes"), help: "Bound on the cached files' bytes; files beyond it are evicted, S3-FIFO (cache.max_bytes; default 10 GiB).")
    var cacheMaxBytes: Int?

    @Option(
        name: .customLong("edge-key-file"),
        help: "The key edges sign their fetches with (origin.edge_key_file; at least 32 bytes): signed fetches are served without a player token.")
    var edgeKeyFile: String?

    @Flag(name: .customLong("shield-only"), help: "Serve media to signed edge fetches only; players get 403 (origin.shield_only; needs --edge-key-file).")
    var shieldOnly = false

    @OptionGroup var gateway: GatewayOptions

    func run() async throws {
        var flags = OriginConfiguration.Flags(root: root)
        flags.gateway = gateway.flags
        flags.store = store
        flags.cacheDirectory = cacheDirectory
        flags.cacheMaxBytes = cacheMaxBytes
        flags.edgeKeyFile = edgeKeyFile
        flags.shieldOnly = shieldOnly ? true : nil
        let configuration: ServerConfiguration
        do {
            configuration = try await OriginConfiguration.load(flags)
        } catch {
            throw ValidationError("\(error)")
        }
        do {
            try OriginRole.run(configuration)
        } catch {
            printError("marquee origin: \(error)")
            throw ExitCode(1)
        }
    }
}

struct EdgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge",
        abstract: "A caching gateway near the players: the same policy as the origin, filled from upstreams on a miss (docs/edge.md).")

    @Option(
        name: .customLong("upstream"),
        help: "An upstream to fill the cache from, http://HOST:PORT or https://HOST:PORT: an origin or a parent edge (repeatable; edge.upstreams). Objects are spread over several by rendezvous hashing, with failover.")
    var upstreams: [String] = []

    @Option(name: .customLong("cache-dir"), help: "The cache's folder (cache.dir); it is served from DIR/objects and survives restarts.")
    var cacheDirectory: String?

    @Option(name: .customLong("cache-max-bytes"), help: "Bound on the cached files' bytes; files beyond it are evicted, S3-FIFO (cache.max_bytes; default 10 GiB).")
    var cacheMaxBytes: Int?

    @Option(
        name: .customLong("memory-cache-bytes"),
        help: "The RAM tier: lock the pages of this many bytes of the objects in demand in memory, S3-FIFO admission (cache.memory_bytes; default 0, none).")
    var memoryCacheBytes: Int?

    @Option(
        name: .customLong("upstream-key-file"),
        help: "The key this edge signs its fetches with (edge.upstream_key_file; the origin's --edge-key-file). Without it fetches go unsigned.")
    var upstreamKeyFile: String?

    @Option(
        name: .customLong("upstream-ca-file"),
        help: "PEM CA certificates that https:// upstreams' certificates must chain to (edge.upstream_ca_file; default: the system's).")
    var upstreamCAFile: String?

    @Option(
        name: .customLong("upstream-pin"),
        help: "A public key (sha256//BASE64 of its SubjectPublicKeyInfo, as curl's --pinnedpubkey) that https:// upstreams' verified chains must carry, on top of the CAs; repeatable, any one matches (edge.upstream_pins).")
    var upstreamPins: [String] = []

    @OptionGroup var gateway: GatewayOptions

    func run() async throws {
        var flags = EdgeConfiguration.Flags()
        flags.gateway = gateway.flags
        flags.upstreams = upstreams
        flags.cacheDirectory = cacheDirectory
        flags.cacheMaxBytes = cacheMaxBytes
        flags.memoryCacheBytes = memoryCacheBytes
        flags.upstreamKeyFile = upstreamKeyFile
        flags.upstreamCAFile = upstreamCAFile
        flags.upstreamPins = upstreamPins
        let configuration: ServerConfiguration
        do {
            configuration = try await EdgeConfiguration.load(flags)
        } catch {
            throw ValidationError("\(error)")
        }
        do {
            try EdgeRole.run(configuration)
        } catch {
            printError("marquee edge: \(error)")
            throw ExitCode(1)
        }
    }
}
