import ArgumentParser
import MarqueeGatewaySettings

/// The options every gateway role's command takes (`marquee origin`, `marquee edge`); ROLE in a
/// key is the role's own section (`origin.listen`, `edge.listen`).
struct GatewayOptions: ParsableArguments {
    @Option(help: "Media listener, HOST:PORT (ROLE.listen; default 0.0.0.0:8080).")
    var listen: String?

    @Option(help: "Admin listener for /metrics, /healthz, /readyz, HOST:PORT or 'off' (ROLE.admin; default 127.0.0.1:9090).")
    var admin: String?

    @Option(help: "YAML configuration file; MARQUEE_* environment variables override it.")
    var config: String?

    @Option(help: "Event loops, one thread and ring each (ROLE.threads; default one per core).")
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
        help: "The admin listener's bearer secret for POST /revocations and POST /purge (admin.token_file; at least 32 bytes). Without one those routes answer 403.")
    var adminTokenFile: String?

    @Option(
        name: .customLong("service"),
        help: ArgumentHelp(
            "A service upstream, NAME=http://HOST:PORT (repeatable; services.<name>).",
            discussion: "/api/NAME and /api/NAME/... are forwarded to it with path and query unchanged; /.well-known/jwks.json goes to 'auth'. HOST is an IPv4 address, [IPv6] address, localhost or a host name (resolved once at start). A 'catalog' service also supplies per-title access rules (catalog.title_rules)."))
    var services: [String] = []

    @Flag(
        name: .customLong("delivery-records"), inversion: .prefixedNo, exclusivity: .chooseLast,
        help: "Write a delivery record per media response to the local log (bus.records, on by default; bus.log.dir). --no-delivery-records turns them off.")
    var deliveryRecords: Bool? = nil

    @Option(
        name: .customLong("catalog-credential-file"),
        help: "File holding the gateways' service credential for the catalog's access-rules feed (services.catalog_credential_file; the catalog's catalog.gateway_credential_file).")
    var catalogCredentialFile: String?

    @Option(
        name: .customLong("tls-cert"),
        help: ArgumentHelp(
            "Serve HTTPS: a PEM certificate chain, leaf first (tls.cert_file; each with a --tls-key).",
            discussion: "Repeat --tls-cert/--tls-key pairs to serve several names: a client's SNI name picks the certificate that covers it, the first serves the rest. Certificates are re-read when their files change or on SIGHUP; open connections keep theirs."))
    var tlsCertificateFiles: [String] = []

    @Option(name: .customLong("tls-key"), help: "The PEM private key of the --tls-cert before it, ECDSA or RSA (tls.key_file).")
    var tlsKeyFiles: [String] = []

    @Option(
        name: .customLong("tls-redirect-listen"),
        help: "A plain-HTTP listener, HOST:PORT, that answers every request with a redirect to HTTPS (tls.redirect_listen).")
    var tlsRedirectListen: String?

    var flags: GatewaySettings.Flags {
        var f = GatewaySettings.Flags()
        f.listen = listen
        f.admin = admin
        f.configFile = config
        f.threads = threads
        f.tokenKeys = tokenKeys
        f.tokenKeyDirectory = tokenKeyDirectory
        f.requireToken = requireToken
        f.services = services
        f.catalogCredentialFile = catalogCredentialFile
        f.adminTokenFile = adminTokenFile
        f.deliveryRecords = deliveryRecords
        f.tlsCertificateFiles = tlsCertificateFiles
        f.tlsKeyFiles = tlsKeyFiles
        f.tlsRedirectListen = tlsRedirectListen
        return f
    }
}
