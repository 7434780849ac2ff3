import ArgumentParser
import MarqueeConsole
import MarqueeGateway
import MarqueeGatewaySettings
import MarqueeOrigin

struct MarqueeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "marquee",
        abstract: "Marquee: an edge streaming gateway and CDN origin.",
        subcommands: [
            DevCommand.self, OriginCommand.self, AuthCommand.self, CatalogCommand.self, IngestCommand.self, PlaybackCommand.self, BillingCommand.self, UsersCommand.self, ProbeCommand.self,
            PackageCommand.self, TestClipCommand.self, SignCommand.self, RevokeCommand.self,
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

    @Option(name: .customLong("cache-max-bytes"), help: "Bound on the cached files' bytes; least recently used files go beyond it (cache.max_bytes; default 10 GiB).")
    var cacheMaxBytes: Int?

    @Option(help: "Media listener, HOST:PORT (origin.listen; default 0.0.0.0:8080).")
    var listen: String?

    @Option(help: "Admin listener for /metrics, /healthz, /readyz, HOST:PORT or 'off' (origin.admin; default 127.0.0.1:9090).")
    var admin: String?

    @Option(help: "YAML configuration file; MARQUEE_* environment variables override it.")
    var config: String?

    @Option(help: "Event loops, one thread and ring each (origin.threads; default one per core).")
    var threads: Int?

    @Option(name: .customLong("token-key"), help: "A URL token key, ID:SECRET_FILE (repeatable; tokens.keys).")
    var tokenKeys: [String] = []

    @Option(name: .customLong("token-key-dir"), help: "A folder of <ID>.key files, re-read on change or SIGHUP (tokens.key_directory).")
    var tokenKeyDirectory: String?

    @Flag(
        name: .customLong("require-token"), inversion: .prefixedNo, exclusivity: .chooseLast,
        help: "Refuse media requests without a valid signed URL (tokens.required, on by default; /api paths are exempt). --no-require-token serves content to anyone.")
    var requireToken: Bool? = nil

    @Option(
        name: .customLong("admin-token-file"),
        help: "The admin listener's bearer secret for POST /revocations (admin.token_file; at least 32 bytes). Without one those routes answer 403.")
    var adminTokenFile: String?

    @Option(
        name: .customLong("service"),
        help: ArgumentHelp(
            "A service upstream, NAME=http://HOST:PORT (repeatable; services.<name>).",
            discussion: "/api/NAME and /api/NAME/... are forwarded to it with path and query unchanged; /.well-known/jwks.json goes to 'auth'. HOST is an IPv4 address, [IPv6] address or localhost. A 'catalog' service also supplies per-title access rules (catalog.title_rules)."))
    var services: [String] = []

    @Flag(
        name: .customLong("delivery-records"), inversion: .prefixedNo, exclusivity: .chooseLast,
        help: "Write a delivery record per media response to the local log (bus.records, on by default; bus.log.dir). --no-delivery-records turns them off.")
    var deliveryRecords: Bool? = nil

    @Option(
        name: .customLong("catalog-credential-file"),
        help: "File holding the gateways' service credential for the catalog's access-rules feed (services.catalog_credential_file; the catalog's catalog.gateway_credential_file).")
    var catalogCredentialFile: String?

    func run() async throws {
        var flags = OriginConfiguration.Flags(root: root, listen: listen, admin: admin, configFile: config, threads: threads, tokenKeys: tokenKeys,
            tokenKeyDirectory: tokenKeyDirectory, requireToken: requireToken, services: services)
        flags.store = store
        flags.cacheDirectory = cacheDirectory
        flags.cacheMaxBytes = cacheMaxBytes
        flags.gateway.catalogCredentialFile = catalogCredentialFile
        flags.gateway.adminTokenFile = adminTokenFile
        flags.gateway.deliveryRecords = deliveryRecords
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
