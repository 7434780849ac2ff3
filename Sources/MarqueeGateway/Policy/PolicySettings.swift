import MarqueeHTTP
import MarqueePolicy
import MarqueeTokens

/// The access policy as configured: plain values, validated by the role's configuration reader and
/// turned into live objects (key rings, databases, limiters, the Redis link) by `AccessPolicy`.
/// Every field is documented with its default in `config/README.md`.
public struct PolicySettings: Sendable {
    // Signed URLs
    public var tokenKeys: [TokenKeyFiles.KeyFile] = []
    /// A folder of `<ID>.key` files, re-read when it changes (rotation without restarts).
    public var tokenKeyDirectory: String?
    /// Refuse requests without a valid token (403). Without it, a token is still checked when sent.
    public var requireToken = true
    /// Path prefixes served without a token even when one is required (`/player/`: a web app's
    /// pages and scripts). Each starts and ends with `/`; a token that is sent is still checked.
    public var publicPrefixes: [String] = []

    /// Whether the absolute decoded path `path` lies under a public prefix.
    public func isPublic(_ path: UnsafeRawBufferPointer) -> Bool {
        for prefix in publicPrefixes where prefix.utf8.count <= path.count {
            if prefix.utf8.elementsEqual(UnsafeRawBufferPointer(rebasing: path[0..<prefix.utf8.count])) { return true }
        }
        return false
    }

    // Client address
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers are believed.
    public var trustedProxies: [CIDR] = []

    // Geo
    public var geoDatabase: String?
    public var geoAnonymousDatabase: String?
    public var geoRules: [GeoRule] = []
    public var geoOverrides: [GeoOverride] = []
    public var geoUnknownCountry = GeoPolicy.UnknownCountry.allow

    // Rate limits
    public var rateLimits: [RateDescriptor] = []
    /// Slots in the in-process limiter table (a power of two).
    public var rateLimitTableSlots = 65_536
    public var rateLimitHeaders = RateLimitHeaders.whenLimited
    /// `redis://host:port/db`: limits and revocations shared by every gateway using it.
    public var redisURL: String?
    public var redisTimeoutMilliseconds = 50
    public var redisFailMode = RedisFailMode.local

    // Revocation and connections
    public var revocationSlots = 16_384
    /// Concurrent connections one address may hold; 0 for no cap. Trusted proxies are exempt.
    /// The default leaves room for a household or an office behind one NAT, and stops one host
    /// from taking every slot.
    public var maxConnectionsPerAddress = 256

    public init() {}

    public enum RateLimitHeaders: String, Sendable {
        /// `RateLimit` and `RateLimit-Policy` on 429 responses only.
        case whenLimited = "limited"
        /// On every response a limit applied to.
        case always
    }

    /// What the limits do while Redis cannot answer.
    public enum RedisFailMode: String, Sendable {
        /// Each gateway enforces the limits alone, in process.
        case local
        /// Let requests through.
        case open
        /// Refuse with 429.
        case closed
    }

    public var isEmpty: Bool {
        tokenKeys.isEmpty && tokenKeyDirectory == nil && !requireToken && geoDatabase == nil && geoRules.isEmpty && geoOverrides.isEmpty && rateLimits.isEmpty
            && redisURL == nil && maxConnectionsPerAddress == 0
    }
}

/// One rate limit and what it counts by: `limit` requests per `period` for each client address,
/// each session (or token), or the whole route class.
public struct RateDescriptor: Sendable {
    public enum Key: String, Sendable, CaseIterable {
        case client, session, route
    }

    public enum Route: String, Sendable, CaseIterable {
        case media, api, any
    }

    public var limit: RateLimit
    public var key: Key
    public var route: Route

    public init(limit: RateLimit, key: Key, route: Route) {
        self.limit = limit
        self.key = key
        self.route = route
    }
}
