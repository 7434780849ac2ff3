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
    /// `catalog.ingest_credential_file`: the service credentials accepted besides users' tokens
    /// (ingest's grants attaching packages). None by default: then only a title's publisher or an
    /// admin may attach its package.
    public var credentials: [ServiceCredential] = []

    public init() {}
}
