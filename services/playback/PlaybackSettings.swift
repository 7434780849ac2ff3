import MarqueePolicy
import MarqueeServiceKit

/// The playback service's settings (documented in `config/README.md`, section `playback`).
public struct PlaybackSettings: Sendable {
    /// `playback.listen`: HOST:PORT (default 127.0.0.1:8086).
    public var listen = "127.0.0.1:8086"
    /// `playback.database`: a database URL (default `sqlite://<data>/playback.db`).
    public var database = "sqlite://var/playback.db"
    /// `playback.auth_url`: the auth service, whose JWKS verifies access tokens.
    public var authURL = "http://127.0.0.1:8081"
    /// `playback.auth_issuer`: the `iss` access tokens must carry.
    public var authIssuer = "marquee-auth"
    /// `playback.catalog_url`: the catalog asked for a title's status, rules and package.
    public var catalogURL = "http://127.0.0.1:8082"
    /// `playback.token_key`: the URL token key sessions are signed with (the gateways must know it).
    public var tokenKey: URLTokenKey?
    /// `playback.geo_database`: the GeoIP2/GeoLite2 country database the gateways use, so a
    /// session is refused (451) exactly where its segments would be.
    public var geoDatabase: String?
    /// `playback.unknown_country`: what a title with a geo rule does for a client whose country is
    /// unknown (as `geo.unknown_country` on the gateways).
    public var unknownCountry = GeoPolicy.UnknownCountry.allow
    /// `playback.trusted_proxies`: peers whose X-Forwarded-For / X-Forwarded-Proto are believed.
    public var trustedProxies: Set<String> = ["127.0.0.1", "::1"]
    /// `playback.extra_validity_s`: how long a signed URL outlives the title's duration (pauses,
    /// rewinds), and `playback.unknown_duration_validity_s` when the catalog has no duration.
    public var extraValiditySeconds: Int64 = 4 * 3600
    public var unknownDurationValiditySeconds: Int64 = 6 * 3600
    /// `playback.bind_client_address`: tie each URL to the address that started the session.
    /// Off by default: phones move between networks mid-title.
    public var bindClientAddress = false
    /// `playback.public_url`: the gateway's address as players reach it (`https://cdn.example.com`);
    /// default: from the request's Host and X-Forwarded-Proto.
    public var publicURL: String?
    /// `playback.regions`: the edge each country or continent plays from (needs `playback.geo_database`).
    public var regions = PlaybackRegions()
    /// `playback.billing_url`: the billing service every session is opened with (one minute held
    /// for a priced title, or 402) and ended through. None: sessions are not billed.
    public var billingURL: String?
    /// `playback.billing_credential_file`: playback's credential for billing (`open_billing_sessions`).
    public var billingCredential: ServiceCredential?
    /// `playback.catalog_credential_file`: playback's credential for the catalog (`read_titles`), to
    /// learn a priced title's owner, who is credited with its revenue.
    public var catalogCredential: ServiceCredential?

    public init() {}
}

/// A URL token key: the id the gateways know it by and its secret (at least 32 bytes).
public struct URLTokenKey: Sendable {
    public let id: String
    public let secret: [UInt8]

    public init(id: String, secret: [UInt8]) {
        self.id = id
        self.secret = secret
    }
}
