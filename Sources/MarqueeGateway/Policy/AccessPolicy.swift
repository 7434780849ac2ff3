import Glibc
import MarqueeHTTP
import MarqueePolicy
import MarqueeRedis
import MarqueeTokens

/// The live access policy every loop consults before serving: token keys, trusted proxies, geo
/// database and rules, rate limiters, revocations, the per-address connection cap. Built once at
/// start-up from `PolicySettings`; what can change at run time (key files, the geo database,
/// revocations) changes behind lock-free references.
public final class AccessPolicy: @unchecked Sendable {
    public let settings: PolicySettings
    let tokenKeys: TokenKeyFiles?
    let trustedProxies: TrustedProxies
    let geo: GeoDatabaseHandle?
    let geoPolicy: GeoPolicy?
    let descriptors: [RateDescriptor]
    /// The in-process limiter: the only one without Redis, the fallback with it.
    let localLimiter: LocalRateLimiter?
    /// `RateLimit-Policy: ...\r\n` per descriptor, written once.
    let rateLimitPolicyLines: [[UInt8]]
    /// The shared limiter, when `redis.url` is set; its answers reach each loop through
    /// `rateAnswers` and a write to the loop's wake-up descriptor.
    let redis: RedisRateLimiter?
    /// Per loop, the shared (Redis) limiter's answers: each connection waits for at most one, and a
    /// ring holds a loop's slots, so it never overflows.
    private(set) var rateAnswers: [SingleProducerRing<RedisRateAnswer>] = []
    private var wakeFDs: [Int32] = []
    let revocations: RevocationList
    /// With Redis: revocations published by any gateway (or billing) reach this one.
    let revocationFeed: RedisRevocationFeed?
    let redisEndpoint: RedisEndpoint?
    let connectionCounts: AddressConnectionCounts?

    public init(_ settings: PolicySettings) throws(GatewayError) {
        self.settings = settings
        do {
            let none = settings.tokenKeys.isEmpty && settings.tokenKeyDirectory == nil
            tokenKeys = none ? nil : try TokenKeyFiles(settings.tokenKeys, directory: settings.tokenKeyDirectory)
        } catch {
            throw .setting(key: "tokens.keys", message: error.description)
        }
        if settings.requireToken && tokenKeys == nil {
            throw .setting(
                key: "tokens.required",
                message:
                    "tokens.required is on (the default) but no token key is configured: pass --token-key ID:SECRET_FILE or --token-key-dir DIR, or --no-require-token (tokens.required: false) to serve the content to anyone")
        }
        trustedProxies = TrustedProxies(settings.trustedProxies)
        if let path = settings.geoDatabase {
            do {
                geo = try GeoDatabaseHandle(path: path, anonymousPath: settings.geoAnonymousDatabase)
            } catch {
                throw .invalid("geo.database", ": \(error)")
            }
        } else if !settings.geoRules.isEmpty {
            throw .invalid("geo.rules", "need geo.database (a GeoIP2/GeoLite2 .mmdb file)")
        } else {
            geo = nil
        }
        geoPolicy =
            settings.geoRules.isEmpty && settings.geoOverrides.isEmpty
            ? nil : GeoPolicy(rules: settings.geoRules, overrides: settings.geoOverrides, unknownCountry: settings.geoUnknownCountry)
        descriptors = settings.rateLimits
        guard descriptors.count <= RateKeys.capacity else {
            throw .setting(key: "rate_limits.limits", message: "at most \(RateKeys.capacity) rate limits may be declared, got \(descriptors.count)")
        }
        localLimiter = descriptors.isEmpty ? nil : LocalRateLimiter(limits: descriptors.map(\.limit), capacity: settings.rateLimitTableSlots)
        let revocations = RevocationList(capacity: settings.revocationSlots)
        self.revocations = revocations
        if let url = settings.redisURL {
            let endpoint: RedisEndpoint
            do {
                endpoint = try RedisEndpoint(parsing: url)
            } catch {
                throw .invalid("redis.url", ": \(error)")
            }
            redisEndpoint = endpoint
            revocationFeed = RedisRevocationFeed(endpoint: endpoint, list: revocations)
            var redisConfiguration = RedisRateLimiter.Configuration()
            redisConfiguration.ioTimeoutMilliseconds = Int64(settings.redisTimeoutMilliseconds)
            redisConfiguration.connectTimeoutMilliseconds = Int64(settings.redisTimeoutMilliseconds)
            if descriptors.isEmpty {
                redis = nil
            } else {
                let box = AnswerSink()
                redis = RedisRateLimiter(endpoint: endpoint, limits: descriptors.map(\.limit), configuration: redisConfiguration) {
                    box.policy?.deliver($0)
                }
                sink = box
            }
        } else {
            redis = nil
            redisEndpoint = nil
            revocationFeed = nil
        }
        rateLimitPolicyLines = descriptors.map { Array("RateLimit-Policy: \($0.limit.policyHeaderValue)\r\n".utf8) }
        connectionCounts =
            settings.maxConnectionsPerAddress > 0
            ? AddressConnectionCounts(limit: settings.maxConnectionsPerAddress, slots: 65_536) : nil
    }

    private var sink: AnswerSink?

    /// Connects the policy to the loops: with Redis, each gets an answer queue sized to its
    /// connection slots.
    /// Starts the threads that talk to Redis.
    func start(wakeFDs: [Int32], slotsPerLoop: Int) {
        self.wakeFDs = wakeFDs
        if redis != nil { rateAnswers = wakeFDs.map { _ in
                SingleProducerRing(capacity: slotsPerLoop, filler: RedisRateAnswer(loop: 0, slot: -1, generation: 0, result: .unavailable))
            } }
        sink?.policy = self
        redis?.start()
        revocationFeed?.start()
    }

    func stop() {
        redis?.stop()
        revocationFeed?.stop()
    }

    /// Revokes a playback session until `expiresAt` (Unix seconds): here at once, and on every
    /// gateway sharing the Redis, within a second. Blocking (Redis I/O): admin thread only.
    public func revoke(session: String, reason: RevocationReason, expiresAt: Int64) throws(GatewayError) {
        guard RevocationList.isValidSessionID(session) else {
            throw .revocation(session: session, message: "session id must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        }
        if let endpoint = redisEndpoint {
            do {
                try RedisRevocationFeed.publish(session, reason: reason, expiresAt: expiresAt, endpoint: endpoint)
            } catch {
                throw .revocation(session: session, message: "could not publish the revocation to Redis: \(error)")
            }
        }
        guard revocations.revoke(session, reason: reason, expiresAt: expiresAt) else {
            throw .revocation(session: session, message: "the revocation table is full (revocation.slots)")
        }
    }

    /// On the limiter's thread: hand the answer to its loop and wake it.
    private func deliver(_ answer: RedisRateAnswer) {
        let loop = Int(answer.loop)
        guard loop < rateAnswers.count, rateAnswers[loop].push(answer) else { return }
        var one: UInt64 = 1
        _ = write(wakeFDs[loop], &one, 8)
    }

    /// Reloads what changed on disk (key files, geo databases); with `force`, reloads everything
    /// (SIGHUP). Returns lines for the log.
    public func reload(force: Bool) -> [String] {
        var messages: [String] = []
        if let message = tokenKeys?.reloadIfChanged(force: force) { messages.append(message) }
        if let geo {
            let report = geo.reloadIfChanged()
            messages.append(contentsOf: report.messages)
        }
        return messages
    }
}

/// Lets the limiter's answer callback, created before the policy finishes initialising, reach it.
private final class AnswerSink: @unchecked Sendable {
    weak var policy: AccessPolicy?
}
