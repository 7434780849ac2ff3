import MarqueeServiceKit

/// The ingest service's settings (documented in `config/README.md`, section `ingest`).
public struct IngestSettings: Sendable {
    /// `ingest.listen`: HOST:PORT (default 127.0.0.1:8085).
    public var listen = "127.0.0.1:8085"
    /// `ingest.database`: a database URL (default `sqlite://<data>/ingest.db`). The job queue and
    /// the upload state live here, so the workers of every ingest node must share it.
    public var database = "sqlite://var/ingest.db"
    /// `ingest.data`: the folder for uploads (`<data>/uploads/<id>.part`, then `.source`); default `var`.
    public var dataDirectory = "var"
    /// `ingest.max_upload_bytes`: the largest source an upload may declare, in bytes (default 20 GiB).
    public var maxUploadBytes: Int64 = 20 << 30
    /// `ingest.upload_expiry`: how long an unfinished upload lives after its creation or its last
    /// PATCH that stored bytes (default 24 h; the key is in seconds). Then requests for it get 410
    /// and a background sweep removes it and its `.part` file.
    public var uploadExpiry: Duration = .seconds(86400)
    /// `ingest.max_bytes_in_flight_per_publisher`: the most bytes one publisher's unfinished
    /// uploads may declare (sum of their Upload-Length) at once, 0 for no quota (default 100 GiB).
    public var maxBytesInFlightPerPublisher: Int64 = 100 << 30
    /// `ingest.auth_url`: the auth service, whose JWKS verifies access tokens.
    public var authURL = "http://127.0.0.1:8081"
    /// `ingest.auth_issuer`: the `iss` access tokens must carry (default `marquee-auth`).
    public var authIssuer = "marquee-auth"
    /// `ingest.catalog_url`: when set, an upload is created only for a title the uploader can see
    /// there (asked with the uploader's own token); none: title ids are taken on trust.
    public var catalogURL: String?

    public init() {}
}
