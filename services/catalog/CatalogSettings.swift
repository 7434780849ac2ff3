import MarqueeServiceKit

/// The catalog service's settings (documented in `config/README.md`, section `catalog`).
public struct CatalogSettings: Sendable {
    /// `catalog.listen`: HOST:PORT (default 127.0.0.1:8082).
    public var listen = "127.0.0.1:8082"
    /// `catalog.database`: a database URL (default `sqlite://<data>/catalog.db`).
    public var database = "sqlite://var/catalog.db"
    /// `catalog.auth_url`: the auth service, whose JWKS verifies access tokens.
    public var authURL = "http://127.0.0.1:8081"
    /// `catalog.auth_issuer`: the `iss` access tokens must carry (default `marquee-auth`).
    public var authIssuer = "marquee-auth"
    /// `catalog.ingest_credential_file`, `catalog.gateway_credential_file`: the service credentials
    /// accepted besides users' tokens (ingest's grants attaching packages, the gateways' reading the
    /// access-rules feed). None by default: then only admins may do either.
    public var credentials: [ServiceCredential] = []
    /// `catalog.max_waiting_polls`: access-rules long polls waiting at once; one more gets 503
    /// with `Retry-After` (default 256).
    public var maxWaitingPolls = 256
    /// `catalog.rules_recheck_ms`: while polls wait, how often one shared query looks for rule
    /// changes made by other catalog instances on the same database (this instance's own writes
    /// wake the waiting polls at once). Milliseconds, default 1000.
    public var rulesRecheckMilliseconds = 1000

    public init() {}
}
