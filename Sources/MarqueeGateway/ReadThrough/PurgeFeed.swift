import CLinux
import Glibc
import MarqueePolicy
import MarqueeRedis

/// Purges shared by every gateway on one Redis (`redis.url`): a purge made on any gateway's admin
/// listener is applied there, then published on the channel `marquee:purges` (message
/// `path <key>` or `prefix <key>`); every gateway's subscriber thread applies what it hears, its
/// own purges included (applying one twice removes nothing more).
///
/// Pub/sub is fire-and-forget: a gateway disconnected from Redis when a purge is published misses
/// it (the feed reconnects with capped backoff and counts its reconnects). The purge's answer says
/// whether it was published, so an operator can repeat it. The channel is followed by the same
/// `RedisChannelSubscription` as session revocations.
final class PurgeFeed: @unchecked Sendable {
    static let channel = "marquee:purges"

    let endpoint: RedisEndpoint
    let cache: ReadThroughCache
    /// Purges applied from the channel (raw memory, relaxed atomics).
    private let applied: UnsafeMutablePointer<UInt64>
    private var subscription: RedisChannelSubscription!

    init(endpoint: RedisEndpoint, cache: ReadThroughCache) {
        self.endpoint = endpoint
        self.cache = cache
        applied = .allocate(capacity: 1)
        applied.initialize(to: 0)
        subscription = RedisChannelSubscription(endpoint: endpoint, channel: Self.channel) { [unowned self] message in
            if let request = Self.parse(message), case .success = cache.purge(request) { mq_add_relaxed(applied, 1) }
        }
    }

    var isSubscribed: Bool { subscription.isSubscribed }
    var appliedCount: UInt64 { mq_load_relaxed(applied) }
    var connectCount: UInt64 { subscription.connectCount }

    /// Starts the subscriber thread, which lives as long as the process.
    func start() { subscription.start() }

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
}
