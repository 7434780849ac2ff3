import MarqueeServiceKit

/// The analytics service's settings (documented in `config/README.md`, section `analytics`).
public struct AnalyticsSettings: Sendable {
    /// `analytics.listen`: HOST:PORT (default 127.0.0.1:8087).
    public var listen = "127.0.0.1:8087"
    /// `analytics.database`: a database URL (default `sqlite://<data>/analytics.db`).
    public var database = "sqlite://var/analytics.db"
    /// `analytics.auth_url`, `analytics.auth_issuer`: where access tokens are verified.
    public var authURL = "http://127.0.0.1:8081"
    public var authIssuer = "marquee-auth"
    /// `analytics.billing_url` and `analytics.billing_credential_file`: where analytics learns who
    /// watched each session and the revenue (billing's `read_billing` credential). None: views,
    /// watch time and experience are counted, viewers and revenue are not.
    public var billingURL: String?
    public var billingCredential: ServiceCredential?
    /// `analytics.deliveries`: the gateways' local delivery log folder read on analytics' own
    /// position; none (with `redis.url`): the Redis stream through `analytics.stream_group`.
    public var deliveriesDirectory: String?
    /// `analytics.package_store`: where the packages' playlists are read (as billing's).
    public var packageStore: String?
    /// `analytics.interval_ms`: how often an idle pipeline looks for new records.
    public var intervalMilliseconds = 200
    /// `analytics.batch`: records per transaction at most. A busy backlog is read in large batches:
    /// a session's row is written once per batch however many of its records it holds (the busy
    /// hour's benchmark went from 71,000 to 140,000 records/s on SQLite from 25,000 to 100,000).
    public var batch = 100_000
    /// `analytics.lookup_interval_ms`: how often sessions' viewers and revenue are asked of billing.
    public var lookupIntervalMilliseconds = 1_000

    public init() {}
}
