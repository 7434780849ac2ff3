import CLinux
import MarqueeHTTP
import MarqueeTLS
import MarqueeTokens

/// Everything the gateway engine needs to run. Roles fill it from their configuration files;
/// every field is documented with its default and unit in `config/README.md`.
public struct ServerConfiguration: Sendable {
    /// Folder whose files are served.
    public var root: String
    /// Media listener, `HOST:PORT` (`[::1]:8080` for IPv6; port 0 picks a free one).
    public var listen: String
    /// Admin listener for `/metrics`, `/healthz`, `/readyz`; nil disables it.
    public var admin: String?
    /// Who may change state through the admin listener, and how much (`admin.*`).
    public var adminAccess = AdminAccess()
    /// Event loops, one ring and one thread each. Default: one per core.
    public var threads: Int
    /// Most open media connections across all loops; more are refused with 503.
    public var maxConnections = 16384
    public var requestLimits = RequestLimits()
    /// Time to receive a whole request head, from the first byte (or from accept), in ms.
    public var headerTimeoutMilliseconds: Int64 = 10_000
    /// Time to receive a whole request body for a service, from the end of its head, in ms
    /// (`408` after). Not restarted as bytes arrive.
    public var bodyTimeoutMilliseconds: Int64 = 30_000
    /// Time a keep-alive connection may sit between requests, in ms.
    public var idleTimeoutMilliseconds: Int64 = 60_000
    /// Time a response may make no progress because the client does not read, in ms.
    public var sendTimeoutMilliseconds: Int64 = 60_000
    /// Time spent discarding a client's bytes after a final response before closing, in ms.
    public var lingerTimeoutMilliseconds: Int64 = 2_000
    /// Longest wait for responses in flight after SIGTERM, in ms.
    public var shutdownGraceMilliseconds: Int64 = 10_000
    /// Submission queue entries per ring.
    public var ringEntries: UInt32 = 4096
    /// Provided receive buffers per ring (a power of two) and their size in bytes.
    public var receiveBufferCount: UInt32 = 4096
    public var receiveBufferBytes: UInt32 = 4096
    /// Longest decoded request path in bytes; longer gets 414.
    public var maxPathBytes = 1024
    /// Open files (descriptor and metadata) cached per loop.
    public var fileCacheEntries = 8192
    /// How old cached metadata may be before a request re-checks the file, in ms.
    public var fileCacheRevalidateMilliseconds: Int64 = 1_000
    /// Files up to this size are held in memory and sent with the response head in one send;
    /// larger ones go out as `largeFileTransfer` says. Bytes.
    public var memoryFileMaxBytes = 64 * 1024
    /// How files larger than `memoryFileMaxBytes` are sent.
    public enum LargeFileTransfer: String, Sendable {
        /// Mapped read-only and sent with sendmsg from the page cache: one copy into the socket,
        /// inline in the loop. Measured fastest and cheapest on loopback (Benchmarks/README.md).
        case send
        /// Page cache → pipe → socket by linked splice chains: no copy at all, but each splice
        /// runs on an io_uring worker thread. May win with NICs that scatter-gather page references.
        case splice
    }
    public var largeFileTransfer = LargeFileTransfer.send
    /// Bytes moved per splice (the pipe size asked of the kernel).
    public var spliceChunkBytes = 1 << 20
    /// Pipes per loop for splicing; connections wait for one when all are busy.
    public var maxPipesPerLoop = 64
    /// Cache-Control for playlists and manifests, for segments (immutable), for everything else.
    public var cacheControlManifest = "public, max-age=2"
    public var cacheControlSegment = "public, max-age=31536000, immutable"
    public var cacheControlOther = "public, max-age=300"
    /// Origins allowed to read responses from a browser; `["*"]` allows any, empty disables CORS.
    public var corsAllowedOrigins = ["*"]
    /// How long a browser may cache a preflight answer, in seconds.
    public var corsMaxAgeSeconds = 86400

    /// Signed URLs, geo rules, rate limits, revocation (`PolicySettings`); empty serves everyone.
    public var policy = PolicySettings()

    /// Service upstreams for `/api/<name>/...` and the catalog's per-title rules (`ServiceSettings`).
    public var services = ServiceSettings()

    /// Serve from an object store through a bounded local cache (`origin.store`, `cache.*`); `root` is then the
    /// cache's `objects` folder. Nil serves `root` as it is.
    public var readThrough: ReadThroughSettings?

    /// Verifies the `Marquee-Edge` signature edges put on their fetches (`origin.edge_key_file`):
    /// a signed fetch is served without a player's token or the player policy (the edge applied
    /// both). Nil: no edge is trusted.
    public var edgeSignature: EdgeSignature?
    /// Serve media to signed edge fetches only; players get 403 (`origin.shield_only`).
    public var shieldOnly = false

    /// HTTPS on the media listener (`tls.*`); nil serves plain HTTP.
    public var tls: TLSListenerSettings?

    /// How an edge verifies its `https://` upstreams (`edge.upstream_ca_file`, or the system's
    /// CAs); nil when none is https.
    public var upstreamTLS: TLSContext?

    /// Delivery records of media responses and where they are shipped (`bus.*`); nil turns them off.
    public var deliveryRecords: DeliveryRecordSettings?

    public init(root: String, listen: String, admin: String? = nil, threads: Int) {
        self.root = root
        self.listen = listen
        self.admin = admin
        self.threads = threads
    }
}

/// The media listener's TLS: every connection on it speaks HTTPS (TLS 1.2 or 1.3, ALPN http/1.1).
public struct TLSListenerSettings: Sendable, Equatable {
    /// A PEM certificate chain (leaf first) and its PEM private key, ECDSA or RSA.
    public struct Certificate: Sendable, Equatable {
        public var chainFile: String
        public var keyFile: String

        public init(chainFile: String, keyFile: String) {
            self.chainFile = chainFile
            self.keyFile = keyFile
        }
    }

    /// The first serves clients that send no SNI name or one no certificate covers; the others
    /// serve the names they cover (`tls.cert_file`/`tls.key_file`, `--tls-cert`/`--tls-key`,
    /// repeatable). Re-read on change or SIGHUP.
    public var certificates: [Certificate]
    /// A Strict-Transport-Security value sent with every response (`tls.hsts`), or nil.
    public var strictTransportSecurity: String?
    /// A plain-HTTP listener that only redirects to HTTPS (`tls.redirect_listen`), or nil.
    public var redirectListen: String?
    /// How long a session ticket key seals new tickets before the next takes over
    /// (`tls.ticket_key_rotation_s`); a ticket resumes for one to two of these.
    public var ticketKeyRotationSeconds = 3600

    public init(certificates: [Certificate], strictTransportSecurity: String? = nil, redirectListen: String? = nil) {
        self.certificates = certificates
        self.strictTransportSecurity = strictTransportSecurity
        self.redirectListen = redirectListen
    }
}
