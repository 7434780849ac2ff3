/// The services behind the gateway (`services.*`): where `/api/<name>/...` goes, how much request
/// body is accepted, how long an upstream may take, how many idle connections are kept. Every
/// field is documented with its default and unit in `config/README.md`.
public struct ServiceSettings: Sendable {
    /// One per service name; `/api/<name>` and `/api/<name>/...` go to the one named so.
    public var upstreams: [ServiceUpstream] = []
    /// Largest request body forwarded (Content-Length or de-chunked); larger gets 413. Bytes.
    public var maxRequestBodyBytes = 1 << 20
    /// Request-body buffers one loop may hold at once (each body reserves its Content-Length, or
    /// `maxRequestBodyBytes` when chunked); a request that would pass it gets 503. Bytes.
    public var maxBodyBufferBytesPerLoop = 64 << 20
    /// Longest wait for an upstream's response head (and for each part of its body), in ms; 504 after.
    public var timeoutMilliseconds: Int64 = 30_000
    /// Idle keep-alive connections kept per loop per upstream.
    public var idleConnectionsPerUpstream = 32
    /// Follow the catalog's per-title access rules when a `catalog` service is configured.
    public var titleRules = true
    /// The `wait` of the catalog's long poll, in seconds.
    public var titleRulesWaitSeconds = 25
    /// The gateways' service credential for the catalog's access-rules feed (the secret of
    /// `services.catalog_credential_file`), sent as `Authorization: Bearer <secret>`; nil: none sent.
    public var catalogCredential: String?

    public init() {}

    public var isEmpty: Bool { upstreams.isEmpty }

    /// The catalog upstream whose rules apply, when title rules are on.
    public var titleRulesUpstream: ServiceUpstream? {
        titleRules ? upstreams.first { $0.name == "catalog" } : nil
    }
}
