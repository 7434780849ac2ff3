import CLinux
import Glibc
import MarqueeRedis

/// Purges shared by every gateway on one Redis (`redis.url`): a purge made on any gateway's admin
/// listener is applied there, then published on the channel `marquee:purges` (message
/// `path <key>` or `prefix <key>`); every gateway's subscriber thread applies what it hears, its
/// own purges included (applying one twice removes nothing more).
///
/// Pub/sub is fire-and-forget: a gateway disconnected from Redis when a purge is published misses
/// it (the feed reconnects with capped backoff and counts its reconnects). The purge's answer says
/// whether it was published, so an operator can repeat it.
final class PurgeFeed: @unchecked Sendable {
    static let channel = "marquee:purges"

    let endpoint: RedisEndpoint
    let cache: ReadThroughCache
    /// Word 0: subscribed (0/1). Word 1: purges applied from the channel. Word 2: connects.
    private let flags: UnsafeMutablePointer<UInt64>

    init(endpoint: RedisEndpoint, cache: ReadThroughCache) {
        self.endpoint = endpoint
        self.cache = cache
        flags = .allocate(capacity: 3)
        flags.initialize(repeating: 0, count: 3)
    }

    var isSubscribed: Bool { mq_load_acquire(flags) != 0 }
    var appliedCount: UInt64 { mq_load_relaxed(flags + 1) }
    var connectCount: UInt64 { mq_load_relaxed(flags + 2) }

    /// Starts the subscriber thread, which lives as long as the process.
    func start() {
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            Unmanaged<PurgeFeed>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, Unmanaged.passRetained(self).toOpaque())
        precondition(rc == 0, "pthread_create failed")
        pthread_detach(thread)
    }

    /// Announces a purge to every gateway. Blocking (the admin thread); nil when published, else why not.
    static func publish(_ request: PurgeRequest, endpoint: RedisEndpoint, timeoutMilliseconds: Int64 = 1000) -> String? {
        let message: String
        switch request {
        case .path(let path): message = "path " + path
        case .prefix(let prefix): message = "prefix " + prefix
        }
        do {
            let connection = try RedisConnection(
                endpoint: endpoint, connectTimeoutMicros: timeoutMilliseconds * 1000, ioTimeoutMicros: timeoutMilliseconds * 1000)
            if case .error(let refusal) = try connection.command(["PUBLISH", channel, message]) { return "PUBLISH refused: \(refusal)" }
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// The purge a channel message carries; nil when it is not one.
    static func parse(_ message: String) -> PurgeRequest? {
        if message.hasPrefix("path ") { return .path(String(message.dropFirst(5))) }
        if message.hasPrefix("prefix ") { return .prefix(String(message.dropFirst(7))) }
        return nil
    }

    // MARK: - Subscriber thread

    private func run() {
        var backoff: Int64 = 100
        while true {
            do {
                try session()
            } catch {
                mq_store_release(flags, 0)
                usleep(UInt32(backoff * 1000))
                backoff = min(backoff * 2, 5000)
                continue
            }
            backoff = 100
        }
    }

    /// One connection's life: subscribe, then apply messages until an error. A PING after 5 s of
    /// silence, unanswered at the next one, drops a dead link.
    private func session() throws {
        let subscriber = try RedisConnection(endpoint: endpoint, connectTimeoutMicros: 500_000, ioTimeoutMicros: 1_000_000)
        try subscriber.append(["SUBSCRIBE", Self.channel])
        let confirmation = try subscriber.reply()
        guard case .array(let parts) = confirmation, parts.first?.text == "subscribe" else {
            throw RedisConnection.Failure(description: "SUBSCRIBE: \(confirmation)")
        }
        mq_add_relaxed(flags + 2, 1)
        mq_store_release(flags, 1)
        var quietTurns = 0
        var pingOutstanding = false
        while true {
            while let reply = try subscriber.bufferedReply() {
                quietTurns = 0
                pingOutstanding = false
                guard case .array(let parts) = reply, parts.count == 3, parts[0].text == "message", let text = parts[2].text,
                    let request = Self.parse(text)
                else { continue }
                if case .success = cache.purge(request) { mq_add_relaxed(flags + 1, 1) }
            }
            var descriptor = pollfd(fd: subscriber.fileDescriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 100)
            if ready > 0 {
                try subscriber.readAvailable()
                continue
            }
            if ready < 0 && errno != EINTR { throw RedisConnection.Failure(description: "poll: errno \(errno)") }
            quietTurns += 1
            if quietTurns >= 50 {
                if pingOutstanding { throw RedisConnection.Failure(description: "PING unanswered") }
                try subscriber.append(["PING"])
                try subscriber.flush()
                pingOutstanding = true
                quietTurns = 0
            }
        }
    }
}
