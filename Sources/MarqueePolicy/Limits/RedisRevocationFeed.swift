import CLinux
import Glibc
import MarqueeRedis

/// Keeps a ``RevocationList`` in step with Redis, so a session revoked through any gateway (or the
/// `marquee revoke` command) is refused by every gateway within a second.
///
/// Redis holds the truth twice: the sorted set `marquee:revoked` (member `<reason> <session>`,
/// score = expiry in Unix seconds) for gateways that start later, and the channel
/// `marquee:revocations` (message `<reason> <expiresAt> <session>`) for those already running. On
/// every (re)connect the feed subscribes first and only then loads the set (after dropping expired
/// members), so a revocation published in between is seen at least once; applying one twice is
/// harmless. While Redis is down the feed retries with capped backoff and the list keeps what it
/// had. The subscriber PINGs when idle to notice a dead link.
public final class RedisRevocationFeed: @unchecked Sendable {
    // @unchecked Sendable: `counts` is raw memory accessed with C11 atomics; the subscription is
    // its own; everything else is immutable.

    /// The pub/sub channel revocations are announced on.
    public static let channel = "marquee:revocations"
    /// The sorted set holding every unexpired revocation.
    public static let sortedSet = "marquee:revoked"

    /// Timeouts and backoff of the subscriber (`RedisChannelSubscription`).
    public typealias Configuration = RedisChannelSubscription.Configuration

    /// Why ``publish(_:reason:expiresAt:endpoint:timeoutMilliseconds:)`` failed.
    public enum PublishError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The id is not 1...128 characters of `[A-Za-z0-9._:-]`.
        case invalidSession
        /// Redis could not be reached or refused a command.
        case redis(String)

        public var description: String {
            switch self {
            case .invalidSession: return "session id must be 1-128 characters of A-Z a-z 0-9 . _ : -"
            case .redis(let message): return "Redis: \(message)"
            }
        }
    }

    public let endpoint: RedisEndpoint
    public let list: RevocationList
    public var configuration: Configuration { subscription.configuration }
    /// Word 0: entries applied. Word 1: messages or members rejected as malformed.
    private let counts: UnsafeMutablePointer<UInt64>
    private var subscription: RedisChannelSubscription!

    public init(endpoint: RedisEndpoint, list: RevocationList, configuration: Configuration = Configuration()) {
        self.endpoint = endpoint
        self.list = list
        counts = .allocate(capacity: 2)
        counts.initialize(repeating: 0, count: 2)
        // On every (re)connect the snapshot is loaded after subscribing, so nothing published in
        // between is missed.
        subscription = RedisChannelSubscription(
            endpoint: endpoint, channel: Self.channel, configuration: configuration,
            whenSubscribed: { [unowned self] in try loadSnapshot() }, onMessage: { [unowned self] in handle($0) })
    }

    deinit {
        subscription.stop()
        counts.deallocate()
    }

    /// True while subscribed with the snapshot loaded. Lock-free.
    public var isSubscribed: Bool { subscription.isSubscribed }
    /// Revocations written into the list (snapshot entries and messages).
    public var appliedCount: UInt64 { mq_load_relaxed(counts) }
    /// Messages or set members that did not parse and were ignored.
    public var rejectedCount: UInt64 { mq_load_relaxed(counts + 1) }
    /// Successful connects (1 after the first, more after outages).
    public var connectCount: UInt64 { subscription.connectCount }

    /// Starts the subscriber thread (once).
    public func start() { subscription.start() }

    /// Stops the subscriber thread and joins it (within about 100 ms plus any I/O in progress).
    public func stop() { subscription.stop() }

    /// Records a revocation in Redis and announces it: ZADD to the set (replacing the same session
    /// under the other reason) and PUBLISH on the channel, in one MULTI/EXEC.
    /// - Parameters:
    ///   - session: 1...128 characters of `[A-Za-z0-9._:-]`.
    ///   - reason: why; decides 402 or 403.
    ///   - expiresAt: Unix seconds; the revocation lapses then (usually the session's own expiry).
    ///   - endpoint: the Redis the gateways' feeds watch.
    ///   - timeoutMilliseconds: bound on connecting and on each reply (default 1,000).
    /// - Throws: ``PublishError``.
    /// Blocking network I/O: for the CLI and the admin endpoint's worker, never an event loop.
    public static func publish(
        _ session: String, reason: RevocationReason, expiresAt: Int64, endpoint: RedisEndpoint,
        timeoutMilliseconds: Int64 = 1000
    ) throws(PublishError) {
        guard RevocationList.isValidSessionID(session) else { throw .invalidSession }
        let other: RevocationReason = reason == .funds ? .other : .funds
        do {
            let connection = try RedisConnection(
                endpoint: endpoint, connectTimeoutMicros: timeoutMilliseconds * 1000, ioTimeoutMicros: timeoutMilliseconds * 1000)
            let commands: [[String]] = [
                ["MULTI"],
                ["ZREM", sortedSet, "\(other) \(session)"],
                ["ZADD", sortedSet, String(expiresAt), "\(reason) \(session)"],
                ["PUBLISH", channel, "\(reason) \(expiresAt) \(session)"],
                ["EXEC"],
            ]
            for command in commands { try connection.append(command) }
            for command in commands {
                if case .error(let message) = try connection.reply() {
                    throw PublishError.redis("\(command[0]) refused: \(message)")
                }
            }
        } catch let error as PublishError {
            throw error
        } catch {
            throw .redis("\(error)")
        }
    }

    // MARK: - Applying

    /// Drops expired members, then applies every remaining one.
    private func loadSnapshot() throws {
        let connection = try subscription.connect()
        let now = LimitsClock.wallSeconds()
        _ = try connection.command(["ZREMRANGEBYSCORE", RedisRevocationFeed.sortedSet, "-inf", String(now)])
        let reply = try connection.command(["ZRANGE", RedisRevocationFeed.sortedSet, "0", "-1", "WITHSCORES"])
        guard case .array(let items) = reply else { throw RedisConnection.Failure(description: "ZRANGE: \(reply)") }
        var i = 0
        while i + 1 < items.count {
            defer { i += 2 }
            guard let member = items[i].text, let scoreText = items[i + 1].text,
                let expiresAt = RedisRevocationFeed.parseSeconds(scoreText),
                let space = member.firstIndex(of: " "),
                let reason = RevocationReason(member[..<space])
            else {
                mq_fetch_add(counts + 1, 1)
                continue
            }
            apply(String(member[member.index(after: space)...]), reason, expiresAt)
        }
    }

    /// A message on the channel: `<reason> <expiresAt> <session>`.
    private func handle(_ payload: String) {
        let fields = payload.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, let reason = RevocationReason(fields[0]),
            let expiresAt = RedisRevocationFeed.parseSeconds(String(fields[1]))
        else {
            mq_fetch_add(counts + 1, 1)
            return
        }
        apply(String(fields[2]), reason, expiresAt)
    }

    private func apply(_ session: String, _ reason: RevocationReason, _ expiresAt: Int64) {
        if list.revoke(session, reason: reason, expiresAt: expiresAt) {
            mq_fetch_add(counts, 1)
        } else {
            mq_fetch_add(counts + 1, 1)
        }
    }

    /// Unix seconds from an integer or a Redis score (which may print as `1.7e9` style or with a fraction).
    static func parseSeconds(_ text: String) -> Int64? {
        if let n = Int64(text) { return n }
        guard let d = Double(text), d.isFinite, d >= 0, d < 9.0e15 else { return nil }
        return Int64(d)
    }
}
