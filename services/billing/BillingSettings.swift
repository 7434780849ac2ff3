import MarqueeServiceKit

/// The billing service's settings (documented in `config/README.md`, section `billing`).
public struct BillingSettings: Sendable {
    /// What happens when a viewer starts one session more than `maxSessionsPerViewer`.
    public enum SessionCapPolicy: String, Sendable, CaseIterable {
        /// The new session is refused with 409.
        case refuse
        /// The viewer's oldest active session ends (its URLs are revoked) to make room.
        case endOldest = "end_oldest"
    }

    /// `billing.listen`: HOST:PORT (default 127.0.0.1:8083).
    public var listen = "127.0.0.1:8083"
    /// `billing.database`: a database URL (default `sqlite://<data>/billing.db`).
    public var database = "sqlite://var/billing.db"
    /// `billing.auth_url`, `billing.auth_issuer`: where access tokens are verified.
    public var authURL = "http://127.0.0.1:8081"
    public var authIssuer = "marquee-auth"
    /// `billing.playback_credential_file`: the service credential playback opens and ends billed
    /// sessions with (`open_billing_sessions`). None: only admins may.
    public var credentials: [ServiceCredential] = []
    /// `billing.self_service_deposits`: viewers may deposit to their own wallet (a demo and test
    /// setting; in production deposits come from a payment provider through an admin).
    public var selfServiceDeposits = false
    /// `billing.platform_fee_percent`: the platform's share of every charged minute, 0...100
    /// (rounded down to a minor unit; the publisher gets the rest).
    public var platformFeePercent: Int64 = 20
    /// `billing.max_deposit`: the largest single deposit, in minor units.
    public var maxDeposit: Int64 = 100_000_000
    /// `billing.session_idle_s`: an active session with no delivery for this long ends by itself.
    public var sessionIdleSeconds: Int64 = 900
    /// `billing.max_sessions_per_viewer`: active sessions one viewer may have at once (0: no cap).
    public var maxSessionsPerViewer = 3
    /// `billing.session_cap_policy`: `refuse` (409) or `end_oldest`.
    public var sessionCapPolicy = SessionCapPolicy.refuse
    /// `billing.idempotency_ttl_s`: how long a deposit's answer is kept for replay (at least 24 h).
    public var idempotencyTTLSeconds: Int64 = 86_400
    /// `billing.revocation_ttl_s`: how long the gateways refuse an ended or revoked session
    /// (at least as long as playback's URLs live).
    public var revocationTTLSeconds: Int64 = 2 * 86_400
    /// `billing.deliveries`: the folder of the gateways' local delivery log the meter reads
    /// (`<data>/deliveries` under `marquee dev`); none: no metering in this process.
    public var deliveriesDirectory: String?
    /// `billing.package_store`: where the packages' playlists are read (a folder or `s3://...`,
    /// as `ingest.store`); the meter maps each delivered object to its media time with them.
    public var packageStore: String?
    /// `billing.meter_interval_ms`: how often the meter reads the log when it is idle.
    public var meterIntervalMilliseconds = 200
    /// `billing.meter_batch`: records per metering transaction at most (a batch takes what is there).
    /// A batch's sessions are saved and its transfers written together, so larger batches cost
    /// fewer statements per record (records of one session meet in one batch); 25,000 records
    /// commit in about 0.2 s (Benchmarks/results/metering-throughput.md).
    public var meterBatch = 25_000

    public init() {}
}
