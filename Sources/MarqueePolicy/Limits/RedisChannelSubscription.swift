import CLinux
import Glibc
import MarqueeRedis

/// One Redis pub/sub channel followed on a thread of its own, through outages: subscribe, run
/// `whenSubscribed` (a feed loads what it may have missed), then hand each message's text to
/// `onMessage` until the link fails; reconnect with capped backoff. A PING after an idle interval,
/// still unanswered at the next one, drops a dead link. The revocation feed and the gateways'
/// purge feed both follow their channel with it.
public final class RedisChannelSubscription: @unchecked Sendable {
    // @unchecked Sendable: `flags` is raw memory accessed with C11 atomics; `thread` is touched only
    // by start/stop, which the owner calls from one thread; everything else is immutable.

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

    public let endpoint: RedisEndpoint
    public let channel: String
    public let configuration: Configuration
    private let whenSubscribed: @Sendable () throws -> Void
    private let onMessage: @Sendable (String) -> Void
    /// Word 0: subscribed (0/1). Word 1: stopping. Word 2: successful (re)connects.
    private let flags: UnsafeMutablePointer<UInt64>
    private var thread: OSThread?

    public init(
        endpoint: RedisEndpoint, channel: String, configuration: Configuration = Configuration(),
        whenSubscribed: @escaping @Sendable () throws -> Void = {}, onMessage: @escaping @Sendable (String) -> Void
    ) {
        self.endpoint = endpoint
        self.channel = channel
        self.configuration = configuration
        self.whenSubscribed = whenSubscribed
        self.onMessage = onMessage
        flags = .allocate(capacity: 3)
        flags.initialize(repeating: 0, count: 3)
    }

    deinit {
        stop()
        flags.deallocate()
    }

    /// True while subscribed, `whenSubscribed` done. Lock-free.
    public var isSubscribed: Bool { mq_load_acquire(flags) != 0 }
    /// Successful connects (1 after the first, more after outages).
    public var connectCount: UInt64 { mq_load_relaxed(flags + 2) }

    /// Starts the subscriber thread (once).
    public func start() {
        guard thread == nil, !stopping else { return }
        thread = OSThread { [self] in run() }
    }

    /// Stops the subscriber thread and joins it (within about 100 ms plus any I/O in progress).
    public func stop() {
        mq_store_release(flags + 1, 1)
        thread?.join()
        thread = nil
        mq_store_release(flags, 0)
    }

    /// A connection with the configured timeouts (the feeds' snapshot loads use one too).
    public func connect() throws -> RedisConnection {
        try RedisConnection(
            endpoint: endpoint, connectTimeoutMicros: configuration.connectTimeoutMilliseconds * 1000,
            ioTimeoutMicros: configuration.ioTimeoutMilliseconds * 1000)
    }

    private var stopping: Bool { mq_load_acquire(flags + 1) != 0 }

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

    /// One connection's life: subscribe, catch up, hand on messages until error or stop.
    private func session() throws {
        let subscriber = try connect()
        try subscriber.append(["SUBSCRIBE", channel])
        let confirmation = try subscriber.reply()
        guard case .array(let parts) = confirmation, parts.first?.text == "subscribe" else {
            throw RedisConnection.Failure(description: "SUBSCRIBE: \(confirmation)")
        }
        try whenSubscribed()
        mq_fetch_add(flags + 2, 1)
        mq_store_release(flags, 1)

        let pingInterval = configuration.pingIntervalMilliseconds * 1000
        var lastActivity = LimitsClock.monotonicMicros()
        var pingOutstanding = false
        while !stopping {
            while let reply = try subscriber.bufferedReply() {
                lastActivity = LimitsClock.monotonicMicros()
                pingOutstanding = false
                // `message` arrays carry the payload; PING answers and others only prove life.
                if case .array(let parts) = reply, parts.count == 3, parts[0].text == "message", parts[1].text == channel,
                    let payload = parts[2].text
                {
                    onMessage(payload)
                }
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
}
