import CLinux
import Glibc
import MarqueePolicy
import MarqueeRedis
import Synchronization

/// Purges shared by every gateway on one Redis (`redis.url`), including those that were away when
/// a purge was made.
///
/// A purge made on any gateway's admin listener is applied there, then, in one atomic script,
/// appended to the stream `marquee:purge-log` (`MAXLEN ~ 100000`) and published on the channel
/// `marquee:purges` as `<stream id> path <key>` or `<stream id> prefix <key>`. Every gateway's
/// subscriber applies what it hears (its own purges too: applying one twice removes nothing more)
/// and keeps the id of the last purge it applied in `<cache.dir>/purge-position`.
///
/// Catching up: each time the subscriber (re)connects, and so after a restart, it replays the log
/// after its position: purges made while it was disconnected or down reach its cache before it is
/// trusted again. The log has an epoch (`marquee:purge-epoch`, a random value set once), kept
/// with the position. If the position is no longer in the log (trimmed) or the epoch changed
/// (Redis lost its data), the gateway cannot know what it missed, so it makes every cached object
/// stale: each is refreshed with its validators before it is served again (a 304 when
/// unchanged). A cache that never followed the log starts at its end.
final class PurgeFeed: @unchecked Sendable {
    static let channel = "marquee:purges"
    static let log = "marquee:purge-log"
    static let logLength = 100_000
    static let epochKey = "marquee:purge-epoch"
    /// Before the log's first entry: every entry is after it.
    static let start = "0-0"
    /// Appends the purge to the log and announces it with its id, atomically.
    static let publishScript = """
        local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'purge', ARGV[1])
        redis.call('PUBLISH', KEYS[2], id .. ' ' .. ARGV[1])
        return id
        """

    let endpoint: RedisEndpoint
    let cache: ReadThroughCache
    let positionPath: String
    /// Purges applied from the channel or the log (raw memory, relaxed atomics), and catch-ups
    /// that found the position gone and made everything stale.
    private let counters: UnsafeMutablePointer<UInt64>
    /// The log's epoch and the id of the last purge applied from it.
    private let position: Mutex<(epoch: String, id: String)?>
    private var subscription: RedisChannelSubscription!

    init(endpoint: RedisEndpoint, cache: ReadThroughCache) {
        self.endpoint = endpoint
        self.cache = cache
        positionPath = cache.settings.directory + "/purge-position"
        counters = .allocate(capacity: 2)
        counters.initialize(repeating: 0, count: 2)
        position = Mutex(Self.readPosition(positionPath))
        subscription = RedisChannelSubscription(
            endpoint: endpoint, channel: Self.channel,
            whenSubscribed: { [unowned self] in try self.catchUp() },
            onMessage: { [unowned self] message in
                let (id, request) = Self.parse(message)
                if let request { self.apply(request, id: id) }
            })
    }

    var isSubscribed: Bool { subscription.isSubscribed }
    var appliedCount: UInt64 { mq_load_relaxed(counters) }
    var staleAllCount: UInt64 { mq_load_relaxed(counters + 1) }
    var connectCount: UInt64 { subscription.connectCount }
    private let createdAt = ReadThroughCache.monotonicMilliseconds()
    /// How long `/readyz` waits for the first catch-up before saying ready anyway (Redis down at
    /// start must not keep an edge out of service; it catches up when Redis is back).
    static let readinessWaitMilliseconds: Int64 = 10_000

    /// Whether the gateway may say it is ready: it has replayed what it missed while away, or
    /// Redis did not answer within `readinessWaitMilliseconds` of the start.
    var allowsReadiness: Bool {
        connectCount > 0 || ReadThroughCache.monotonicMilliseconds() - createdAt > Self.readinessWaitMilliseconds
    }

    /// Starts the subscriber thread, which lives as long as the process.
    func start() { subscription.start() }

    private func apply(_ request: PurgeRequest, id: String?) {
        if case .success = cache.purge(request) { mq_add_relaxed(counters, 1) }
        if let id, let epoch = position.withLock({ $0?.epoch }) { advance(to: id, epoch: epoch) }
    }

    /// Replays the log after the position (see the type's comment). Runs on the subscriber
    /// thread once subscribed, so nothing published from now on is missed either.
    private func catchUp() throws {
        let connection = try subscription.connect()
        _ = try connection.command(["SET", Self.epochKey, Self.randomEpoch(), "NX"])
        guard let epoch = try connection.command(["GET", Self.epochKey]).text else {
            throw RedisConnection.Failure(description: "no \(Self.epochKey) after SET NX")
        }
        let newest = Self.firstID(try connection.command(["XREVRANGE", Self.log, "+", "-", "COUNT", "1"])) ?? Self.start
        guard let stored = position.withLock({ $0 }) else {
            advance(to: newest, epoch: epoch)
            return
        }
        let lost = stored.epoch != epoch
        var trimmed = false
        if !lost && stored.id != Self.start {
            trimmed = Self.firstID(try connection.command(["XRANGE", Self.log, stored.id, stored.id])) == nil
        }
        if lost || trimmed {
            // What was trimmed with the position, or lost with Redis's data, is unknown.
            let why = lost ? "Redis lost \(Self.log) (a new epoch)" : "this cache's position \(stored.id) was trimmed from \(Self.log)"
            mq_add_relaxed(counters + 1, 1)
            if cache.settings.sourceIsUpstream {
                cache.makeEverythingStale()
                GatewayLog.warning("purge log: \(why); every cached object is revalidated before it is served again")
            } else {
                // An origin's store objects have no validators to revalidate with, and package
                // files do not change in place: refetching the whole cache would cost more than
                // the purge it might have missed.
                GatewayLog.warning("purge log: \(why); purges made meanwhile may not have reached this origin's cache: repeat them if any was made")
            }
            advance(to: newest, epoch: epoch, force: true)
            return
        }
        var cursor = stored.id
        while true {
            guard case .array(let entries) = try connection.command(["XRANGE", Self.log, "(" + cursor, "+", "COUNT", "500"]) else { break }
            for entry in entries {
                guard case .array(let parts) = entry, parts.count == 2, let id = parts[0].text, case .array(let fields) = parts[1] else { continue }
                cursor = id
                if fields.count == 2, fields[0].text == "purge", let text = fields[1].text, let request = Self.request(text) {
                    apply(request, id: id)
                }
            }
            advance(to: cursor, epoch: epoch)
            if entries.count < 500 { break }
        }
    }

    /// Remembers `id` of `epoch` as applied, on disk too (written aside and renamed: a crash leaves
    /// the old position or the new, and replaying a purge is harmless). Only forward, unless `force`.
    private func advance(to id: String, epoch: String, force: Bool = false) {
        let changed = position.withLock { current -> Bool in
            if !force, let current, current.epoch == epoch, !Self.isAfter(id, current.id) { return false }
            current = (epoch, id)
            return true
        }
        guard changed else { return }
        let temporary = positionPath + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        var text = epoch + " " + id + "\n"
        let written = text.withUTF8 { write(fd, $0.baseAddress, $0.count) == $0.count }
        close(fd)
        if written { rename(temporary, positionPath) } else { unlink(temporary) }
    }

    // MARK: - Publishing (the admin thread)

    /// Logs and announces a purge to every gateway. Blocking; nil when published, else why not.
    static func publish(_ request: PurgeRequest, endpoint: RedisEndpoint, timeoutMilliseconds: Int64 = 1000) -> String? {
        do {
            let connection = try RedisConnection(
                endpoint: endpoint, connectTimeoutMicros: timeoutMilliseconds * 1000, ioTimeoutMicros: timeoutMilliseconds * 1000)
            let reply = try connection.command(["EVAL", publishScript, "2", log, channel, text(of: request), String(logLength)])
            if case .error(let refusal) = reply { return "the purge script was refused: \(refusal)" }
            return nil
        } catch {
            return "\(error)"
        }
    }

    // MARK: - Messages

    static func text(of request: PurgeRequest) -> String {
        switch request {
        case .path(let path): "path " + path
        case .prefix(let prefix): "prefix " + prefix
        }
    }

    static func request(_ text: String) -> PurgeRequest? {
        if text.hasPrefix("path ") { return .path(String(text.dropFirst(5))) }
        if text.hasPrefix("prefix ") { return .prefix(String(text.dropFirst(7))) }
        return nil
    }

    /// A channel message: `<id> path <key>`, `<id> prefix <key>`, or (from a gateway of an earlier
    /// version) the same without the id.
    static func parse(_ message: String) -> (id: String?, request: PurgeRequest?) {
        if let request = request(message) { return (nil, request) }
        guard let space = message.firstIndex(of: " ") else { return (nil, nil) }
        let id = String(message[..<space])
        guard streamID(id) != nil else { return (nil, nil) }
        return (id, request(String(message[message.index(after: space)...])))
    }

    /// `<ms>-<seq>` as numbers.
    static func streamID(_ text: String) -> (UInt64, UInt64)? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let ms = UInt64(parts[0]), let seq = UInt64(parts[1]) else { return nil }
        return (ms, seq)
    }

    static func isAfter(_ a: String, _ b: String) -> Bool {
        guard let x = streamID(a), let y = streamID(b) else { return false }
        return x.0 > y.0 || (x.0 == y.0 && x.1 > y.1)
    }

    /// The id of the first entry of an XRANGE/XREVRANGE reply.
    static func firstID(_ reply: RedisReply) -> String? {
        guard case .array(let entries) = reply, case .array(let parts)? = entries.first, let id = parts.first?.text else { return nil }
        return id
    }

    /// `<epoch> <id>` from the position file; nil when absent or unreadable.
    static func readPosition(_ path: String) -> (epoch: String, id: String)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        let words = String(decoding: buffer[0..<n], as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard words.count == 2, !words[0].isEmpty, streamID(String(words[1])) != nil else { return nil }
        return (String(words[0]), String(words[1]))
    }

    /// 128 random bits, hex.
    static func randomEpoch() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, 16) }
            close(fd)
        }
        return bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
