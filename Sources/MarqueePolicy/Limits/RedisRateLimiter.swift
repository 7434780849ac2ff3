import CHiredis
import CLinux
import Glibc
import MarqueeRedis

/// The shared rate limiter: GCRA evaluated inside Redis so that every gateway charges the same
/// buckets. Event loops never touch the network: they ``submit(_:)`` into a bounded lock-free
/// queue and get the answer later through `deliver`, called on this limiter's own command thread,
/// which owns one blocking hiredis connection.
///
/// The command thread takes whatever is queued (up to `maxBatch`), pipelines one EVALSHA per request,
/// reads the replies in order and delivers each. The script is loaded with SCRIPT LOAD on every
/// connect; a NOSCRIPT reply (Redis restarted or flushed its script cache) reloads it and retries
/// those requests once. Any I/O error or timeout answers the rest of the batch `.unavailable`,
/// drops the connection and reconnects with capped exponential backoff; while disconnected every
/// queued request is answered `.unavailable` at once, so each submission gets exactly one answer
/// within about the I/O (or connect) timeout.
public final class RedisRateLimiter: @unchecked Sendable {
    // @unchecked Sendable: loops share only `queue` (lock-free MPSC), the `state` words (C11
    // atomics) and immutable configuration. Everything else (connection, arena, batch) belongs
    // to the command thread; `thread` is touched by start/stop, which the owner calls from one thread.

    /// Timeouts and sizes; every field has a default suited to a LAN Redis.
    public struct Configuration: Sendable, Hashable {
        /// Bound on connecting, in milliseconds (default 50). While it runs, queued requests wait.
        public var connectTimeoutMilliseconds: Int64 = 50
        /// Bound on each blocking read or write, in milliseconds (default 50).
        public var ioTimeoutMilliseconds: Int64 = 50
        /// Requests the queue holds (rounded up to a power of two; default 4,096). `submit`
        /// returns false beyond it.
        public var queueCapacity: Int = 4096
        /// Requests pipelined per round trip (default 256).
        public var maxBatch: Int = 256
        /// First reconnect delay, in milliseconds (default 25); doubles per failure.
        public var initialBackoffMilliseconds: Int64 = 25
        /// Longest reconnect delay, in milliseconds (default 1,000).
        public var maxBackoffMilliseconds: Int64 = 1000

        public init() {}
    }

    /// The limits; `RateKey.limitIndex` indexes this array.
    public let limits: [RateLimit]
    public let endpoint: RedisEndpoint
    public let configuration: Configuration

    private let deliver: @Sendable (RedisRateAnswer) -> Void
    private let queue: RedisRequestQueue<RedisRateRequest>
    /// Word 0: available (0/1). Word 8: stopping. Word 16: submitters inside `submit`.
    /// Word 24: requests answered `.unavailable` (diagnostics).
    private let state: UnsafeMutablePointer<UInt64>
    private var thread: OSThread?

    // Command-thread data: argv built in place for each request.
    private let constants: ArgvConstants
    private let arena: UnsafeMutableRawPointer
    private let argv: UnsafeMutablePointer<UnsafePointer<CChar>?>
    private let argvLengths: UnsafeMutablePointer<Int>

    /// - Parameters:
    ///   - endpoint: where Redis listens.
    ///   - limits: the limits (at most 256); their names become part of the Redis key names, so
    ///     gateways sharing buckets must configure the same names and numbers.
    ///   - configuration: timeouts and sizes.
    ///   - deliver: receives every answer, on the command thread; must be quick and must not block
    ///     (typically: push into the owning loop's answer queue and wake it).
    public init(
        endpoint: RedisEndpoint, limits: [RateLimit], configuration: Configuration = Configuration(),
        deliver: @escaping @Sendable (RedisRateAnswer) -> Void
    ) {
        precondition(!limits.isEmpty && limits.count <= 256, "between 1 and 256 limits")
        self.endpoint = endpoint
        self.limits = limits
        self.configuration = configuration
        self.deliver = deliver
        queue = RedisRequestQueue(capacity: max(2, configuration.queueCapacity))
        state = .allocate(capacity: 32)
        state.initialize(repeating: 0, count: 32)
        constants = ArgvConstants(limits: limits)
        arena = .allocate(byteCount: constants.arenaBytes, alignment: 8)
        argv = .allocate(capacity: 3 + 4 * RateKeys.capacity)
        argvLengths = .allocate(capacity: 3 + 4 * RateKeys.capacity)
    }

    deinit {
        stop()
        state.deallocate()
        arena.deallocate()
        argv.deallocate()
        argvLengths.deallocate()
    }

    /// True while the command thread holds a working connection. Lock-free; a loop may skip
    /// submitting (and use its local limiter) while it is false.
    public var isAvailable: Bool { mq_load_acquire(state) != 0 }

    /// Requests answered `.unavailable` so far.
    public var unavailableCount: UInt64 { mq_load_relaxed(state + 24) }

    /// Starts the command thread (once). It connects in the background; until it has, answers are
    /// `.unavailable`.
    public func start() {
        guard thread == nil, mq_load_acquire(state + 8) == 0 else { return }
        thread = OSThread { [self] in run() }
    }

    /// Stops the command thread and joins it. Requests still queued, and any submitted while
    /// stopping, are answered `.unavailable`; later submissions return false.
    public func stop() {
        mq_store_release(state + 8, 1)
        // Wait for loops already inside `submit`, so none enqueues after the final drain.
        while mq_fetch_add(state + 16, 0) != 0 { sched_yield() }
        queue.wake()
        thread?.join()
        thread = nil
        drainUnavailable()
        mq_store_release(state, 0)
    }

    /// Queues `request` for Redis.
    /// - Returns: false when the queue is full or the limiter is stopped; no answer will come then.
    ///   True means exactly one answer will be delivered.
    /// Cost: one CAS and a copy of the request; thread-safe, lock-free, allocation-free, no I/O
    /// (a futex wake only when the command thread sleeps).
    public func submit(_ request: RedisRateRequest) -> Bool {
        mq_fetch_add(state + 16, 1)
        defer { mq_fetch_sub(state + 16, 1) }
        if mq_fetch_add(state + 8, 0) != 0 { return false }
        return queue.enqueue(request)
    }

    // MARK: - Command thread

    private func setAvailable(_ up: Bool) { mq_store_release(state, up ? 1 : 0) }

    private var stopping: Bool { mq_load_acquire(state + 8) != 0 }

    private func answerUnavailable(_ request: RedisRateRequest) {
        mq_fetch_add(state + 24, 1)
        deliver(RedisRateAnswer(request, .unavailable))
    }

    private func drainUnavailable() {
        while let request = queue.dequeue() { answerUnavailable(request) }
    }

    private func run() {
        var connection: RedisConnection?
        var sha = ""
        var backoff = configuration.initialBackoffMilliseconds * 1000
        var nextAttempt: Int64 = 0
        var lastTraffic = LimitsClock.monotonicMicros()
        var batch: [RedisRateRequest] = []
        batch.reserveCapacity(configuration.maxBatch)

        while !stopping {
            if connection == nil {
                let now = LimitsClock.monotonicMicros()
                if now >= nextAttempt {
                    do {
                        let fresh = try RedisConnection(
                            endpoint: endpoint, connectTimeoutMicros: configuration.connectTimeoutMilliseconds * 1000,
                            ioTimeoutMicros: configuration.ioTimeoutMilliseconds * 1000)
                        sha = try loadScript(fresh)
                        connection = fresh
                        backoff = configuration.initialBackoffMilliseconds * 1000
                        lastTraffic = LimitsClock.monotonicMicros()
                        setAvailable(true)
                    } catch {
                        setAvailable(false)
                        nextAttempt = LimitsClock.monotonicMicros() + backoff
                        backoff = min(backoff * 2, configuration.maxBackoffMilliseconds * 1000)
                    }
                }
                if connection == nil {
                    drainUnavailable()
                    queue.wait(micros: max(1000, nextAttempt - LimitsClock.monotonicMicros()))
                    continue
                }
            }
            guard let link = connection else { continue }

            batch.removeAll(keepingCapacity: true)
            while batch.count < configuration.maxBatch, let request = queue.dequeue() { batch.append(request) }
            if batch.isEmpty {
                // Idle: a PING a second keeps `isAvailable` honest when nobody submits.
                if LimitsClock.monotonicMicros() - lastTraffic > 1_000_000 {
                    lastTraffic = LimitsClock.monotonicMicros()
                    if (try? link.command(["PING"])) == nil {
                        connection = nil
                        setAvailable(false)
                        nextAttempt = 0
                    }
                    continue
                }
                queue.wait(micros: 100_000)
                continue
            }
            lastTraffic = LimitsClock.monotonicMicros()
            if !process(batch, on: link, sha: &sha) {
                connection = nil
                setAvailable(false)
                nextAttempt = 0  // one immediate retry; backoff applies if it fails
            }
        }
        connection = nil
        setAvailable(false)
        drainUnavailable()
    }

    private func loadScript(_ connection: RedisConnection) throws -> String {
        let reply = try connection.command(["SCRIPT", "LOAD", RedisRateScript.source])
        guard let sha = reply.text, sha.utf8.count == 40 else {
            throw RedisConnection.Failure(description: "SCRIPT LOAD: \(reply)")
        }
        return sha
    }

    /// Pipelines the batch and delivers every answer. - Returns: false if the connection failed
    /// (the unanswered requests have been answered `.unavailable`).
    private func process(_ batch: [RedisRateRequest], on link: RedisConnection, sha: inout String) -> Bool {
        var answered = 0
        var retry: [Int] = []
        do {
            for request in batch { try appendEvalSHA(request, sha: sha, on: link) }
            for (i, request) in batch.enumerated() {
                let outcome = try link.withReply { parse($0, request) }
                answered = i + 1
                switch outcome {
                case .answer(let verdict): deliver(RedisRateAnswer(request, .verdict(verdict)))
                case .noScript: retry.append(i)
                case .failed: answerUnavailable(request)
                }
            }
            if !retry.isEmpty {
                sha = try loadScript(link)
                for i in retry { try appendEvalSHA(batch[i], sha: sha, on: link) }
                for (n, i) in retry.enumerated() {
                    let outcome = try link.withReply { parse($0, batch[i]) }
                    retry[n] = -1
                    if case .answer(let verdict) = outcome {
                        deliver(RedisRateAnswer(batch[i], .verdict(verdict)))
                    } else {
                        answerUnavailable(batch[i])
                    }
                }
            }
            return true
        } catch {
            for i in answered..<batch.count { answerUnavailable(batch[i]) }
            for i in retry where i >= 0 { answerUnavailable(batch[i]) }
            return false
        }
    }

    private enum ParsedReply {
        case answer(RateVerdict)
        case noScript
        case failed
    }

    private func parse(_ reply: UnsafeMutablePointer<redisReply>, _ request: RedisRateRequest) -> ParsedReply {
        let r = reply.pointee
        if r.type == REDIS_REPLY_ERROR {
            if r.len >= 8, let s = r.str, memcmp(s, "NOSCRIPT", 8) == 0 { return .noScript }
            return .failed
        }
        guard r.type == REDIS_REPLY_ARRAY, r.elements >= 3 else { return .failed }
        func integer(_ i: Int) -> Int64? {
            guard let e = r.element[i], e.pointee.type == REDIS_REPLY_INTEGER else { return nil }
            return Int64(e.pointee.integer)
        }
        guard let passed = integer(0), let position = integer(1), position >= 0, position < Int64(request.keys.count),
            let third = integer(2)
        else { return .failed }
        let limitIndex = request.keys[Int(position)].limitIndex
        if passed == 0 {
            return .answer(.limited(limitIndex: limitIndex, retryAfterMicros: UInt64(max(0, third))))
        }
        if passed == 2 {
            return .answer(.delayed(limitIndex: limitIndex, waitMicros: UInt64(max(1, third))))
        }
        guard r.elements >= 4, let reset = integer(3) else { return .failed }
        return .answer(.allowed(limitIndex: limitIndex, remaining: Int(max(0, third)), resetMicros: UInt64(max(0, reset))))
    }

    /// Builds `EVALSHA sha n key… T τ D …` in the arena and appends it to the connection's buffer.
    private func appendEvalSHA(_ request: RedisRateRequest, sha: String, on link: RedisConnection) throws {
        var sha = sha
        try sha.withUTF8 { shaBytes in
            let keys = request.keys
            let n = keys.count
            var cursor = arena
            func put(_ index: Int, _ pointer: UnsafeRawPointer, _ count: Int) {
                argv[index] = pointer.assumingMemoryBound(to: CChar.self)
                argvLengths[index] = count
            }
            put(0, constants.evalsha.baseAddress!, constants.evalsha.count)
            put(1, shaBytes.baseAddress!, shaBytes.count)
            put(2, constants.digits.baseAddress! + n, 1)
            for i in 0..<n {
                let key = keys[i]
                let limit = Int(key.limitIndex)
                precondition(limit < constants.prefixes.count, "limitIndex out of range")
                let prefix = constants.prefixes[limit]
                cursor.copyMemory(from: prefix.baseAddress!, byteCount: prefix.count)
                let hexStart = cursor + prefix.count
                var value = key.keyHash
                for d in stride(from: 15, through: 0, by: -1) {
                    hexStart.storeBytes(of: constants.hex[Int(value & 0xF)], toByteOffset: d, as: UInt8.self)
                    value >>= 4
                }
                put(3 + i, cursor, prefix.count + 16)
                cursor += prefix.count + 16
                let interval = constants.intervals[limit]
                let tolerance = constants.tolerances[limit]
                let delay = constants.delays[limit]
                put(3 + n + 3 * i, interval.baseAddress!, interval.count)
                put(3 + n + 3 * i + 1, tolerance.baseAddress!, tolerance.count)
                put(3 + n + 3 * i + 2, delay.baseAddress!, delay.count)
            }
            try link.append(argc: Int32(3 + 4 * n), argv: argv, lengths: argvLengths)
        }
    }

    /// The bytes every command reuses, allocated once: key prefixes and the decimal T, τ and D per limit.
    private final class ArgvConstants {
        let evalsha: UnsafeRawBufferPointer
        let digits: UnsafeRawBufferPointer
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        let prefixes: [UnsafeRawBufferPointer]
        let intervals: [UnsafeRawBufferPointer]
        let tolerances: [UnsafeRawBufferPointer]
        let delays: [UnsafeRawBufferPointer]
        let arenaBytes: Int

        init(limits: [RateLimit]) {
            evalsha = ArgvConstants.copy("EVALSHA")
            digits = ArgvConstants.copy("01234")
            prefixes = limits.map { ArgvConstants.copy(RedisRateScript.keyPrefix($0)) }
            intervals = limits.map { ArgvConstants.copy(String($0.emissionIntervalMicros)) }
            tolerances = limits.map { ArgvConstants.copy(String($0.toleranceMicros)) }
            delays = limits.map { ArgvConstants.copy(String($0.delayMicros)) }
            arenaBytes = RateKeys.capacity * ((prefixes.map(\.count).max() ?? 0) + 16) + 64
        }

        deinit {
            for buffer in [evalsha, digits] + prefixes + intervals + tolerances + delays { buffer.deallocate() }
        }

        private static func copy(_ text: String) -> UnsafeRawBufferPointer {
            let bytes = Array(text.utf8)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
            buffer.copyBytes(from: bytes)
            return UnsafeRawBufferPointer(rebasing: buffer[0..<bytes.count])
        }
    }
}
