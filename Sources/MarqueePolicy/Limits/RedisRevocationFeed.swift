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
    // @unchecked Sendable: `flags` is raw memory accessed with C11 atomics; `thread` is touched only
    // by start/stop, which the owner calls from one thread; everything else is immutable.

    /// The pub/sub channel revocations are announced on.
    public static let channel = "marquee:revocations"
    /// The sorted set holding every unexpired revocation.
    public static let sortedSet = "marquee:revoked"

    /// Timeouts; defaults suit a LAN Redis.
    public struct Configuration: Sendable, Hashable {
        /// Bound on connecting, milliseconds (default 500).
        public var connectTimeoutMilliseconds: Int64 = 500
        /// Bound on each blocking read/write, milliseconds (default 1,000).
        public var ioTimeoutMilliseconds: Int64 = 1000
        /// First reconnect delay, milliseconds (default 100); doubles per failure.
        public var initialBackoffMilliseconds: Int64 = 100
        /// Longest reconnect delay, milliseconds (default 5,000).
        public var maxBackoffMilliseconds: Int64 = 5000
        /// Idle time after which the subscriber PINGs, milliseconds (default 5,000); a PING still
        /// unanswered at the next one drops the connection.
        public var pingIntervalMilliseconds: Int64 = 5000

        public init() {}
    }

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
    public let configuration: Configuration
    /// Word 0: subscribed (0/1). Word 8: stopping. Word 16: entries applied. Word 24: messages
    /// rejected as malformed. Word 32: successful (re)connects.
    private let flags: UnsafeMutablePointer<UInt64>
    private var thread: RedisThread?

    public init(endpoint: RedisEndpoint, list: RevocationList, configuration: Configuration = Configuration()) {
        self.endpoint = endpoint
        self.list = list
        self.configuration = configuration
        flags = .allocate(capacity: 40)
        flags.initialize(repeating: 0, count: 40)
    }

    deinit {
        stop()
        flags.deallocate()
    }

    /// True while subscribed with the snapshot loaded. Lock-free.
    public var isSubscribed: Bool { mq_load_acquire(flags) != 0 }
    /// Revocations written into the list (snapshot entries and messages).
    public var appliedCount: UInt64 { mq_load_relaxed(flags + 16) }
    /// Messages or set members that did not parse and were ignored.
    public var rejectedCount: UInt64 { mq_load_relaxed(flags + 24) }
    /// Successful connects (1 after the first, more after outages).
    public var connectCount: UInt64 { mq_load_relaxed(flags + 32) }

    /// Starts the subscriber thread (once).
    public func start() {
        guard thread == nil, mq_load_acquire(flags + 8) == 0 else { return }
        thread = RedisThread { [self] in run() }
    }

    /// Stops the subscriber thread and joins it (within about 100 ms plus any I/O in progress).
    public func stop() {
        mq_store_release(flags + 8, 1)
        thread?.join()
        thread = nil
        mq_store_release(flags, 0)
    }

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

    // MARK: - Subscriber thread

    private var stopping: Bool { mq_load_acquire(flags + 8) != 0 }

    private func run() {
        var backoff = configuration.initialBackoffMilliseconds * 1000
        while !stopping {
            do {
                try session()
                backoff = configuration.initialBackoffMilliseconds * 1000
            } catch {
                mq_store_release(flags, 0)
                // Sleep in slices so stop() stays prompt.
                let until = LimitsClock.monotonicMicros() + backoff
                while !stopping, LimitsClock.monotonicMicros() < until { LimitsClock.sleep(micros: 20_000) }
                backoff = min(backoff * 2, configuration.maxBackoffMilliseconds * 1000)
            }
        }
        mq_store_release(flags, 0)
    }

    /// One connection's life: subscribe, load the snapshot, apply messages until error or stop.
    private func session() throws {
        let subscriber = try connect()
        try subscriber.append(["SUBSCRIBE", RedisRevocationFeed.channel])
        let confirmation = try subscriber.reply()
        guard case .array(let parts) = confirmation, parts.first?.text == "subscribe" else {
            throw RedisConnection.Failure(description: "SUBSCRIBE: \(confirmation)")
        }
        try loadSnapshot()
        mq_fetch_add(flags + 32, 1)
        mq_store_release(flags, 1)

        let pingInterval = configuration.pingIntervalMilliseconds * 1000
        var lastActivity = LimitsClock.monotonicMicros()
        var pingOutstanding = false
        while !stopping {
            while let reply = try subscriber.bufferedReply() {
                lastActivity = LimitsClock.monotonicMicros()
                pingOutstanding = false
                handle(reply)
            }
            var descriptor = pollfd(fd: subscriber.fileDescriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 100)
            if ready > 0 {
                try subscriber.readAvailable()
                continue
            }
            if ready < 0, errno != EINTR { throw RedisConnection.Failure(description: "poll: errno \(errno)") }
            if LimitsClock.monotonicMicros() - lastActivity > pingInterval {
                if pingOutstanding { throw RedisConnection.Failure(description: "PING unanswered") }
                try subscriber.append(["PING"])
                try subscriber.flush()
                pingOutstanding = true
                lastActivity = LimitsClock.monotonicMicros()
            }
        }
    }

    private func connect() throws -> RedisConnection {
        try RedisConnection(
            endpoint: endpoint, connectTimeoutMicros: configuration.connectTimeoutMilliseconds * 1000,
            ioTimeoutMicros: configuration.ioTimeoutMilliseconds * 1000)
    }

    /// Drops expired members, then applies every remaining one.
    private func loadSnapshot() throws {
        let connection = try connect()
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
                mq_fetch_add(flags + 24, 1)
                continue
            }
            apply(String(member[member.index(after: space)...]), reason, expiresAt)
        }
    }

    /// A pub/sub reply: `message` arrays carry revocations; PING answers and others only prove life.
    private func handle(_ reply: RedisReply) {
        guard case .array(let parts) = reply, parts.count == 3, parts[0].text == "message",
            parts[1].text == RedisRevocationFeed.channel, let payload = parts[2].text
        else { return }
        let fields = payload.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, let reason = RevocationReason(fields[0]),
            let expiresAt = RedisRevocationFeed.parseSeconds(String(fields[1]))
        else {
            mq_fetch_add(flags + 24, 1)
            return
        }
        apply(String(fields[2]), reason, expiresAt)
    }

    private func apply(_ session: String, _ reason: RevocationReason, _ expiresAt: Int64) {
        if list.revoke(session, reason: reason, expiresAt: expiresAt) {
            mq_fetch_add(flags + 16, 1)
        } else {
            mq_fetch_add(flags + 24, 1)
        }
    }

    /// Unix seconds from an integer or a Redis score (which may print as `1.7e9` style or with a fraction).
    static func parseSeconds(_ text: String) -> Int64? {
        if let n = Int64(text) { return n }
        guard let d = Double(text), d.isFinite, d >= 0, d < 9.0e15 else { return nil }
        return Int64(d)
    }
}
