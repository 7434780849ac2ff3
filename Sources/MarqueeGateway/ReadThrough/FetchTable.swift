/// A request parked on a cache miss: the loop, connection slot and generation to resume.
public struct FetchWaiter: Equatable, Sendable {
    public var loop: UInt16
    public var slot: Int32
    public var generation: UInt16

    public init(loop: UInt16, slot: Int32, generation: UInt16) {
        self.loop = loop
        self.slot = slot
        self.generation = generation
    }
}

/// How a fetch ended, as the parked requests are answered.
public enum FetchOutcome: Equatable, Sendable {
    /// The object is in the cache now: serve it as a hit.
    case stored
    /// The object is arriving: serve it from its fill (`ObjectFill`), which comes with the answer.
    case streaming
    /// The store has no such object (404, remembered for a short while).
    case notFound
    /// The store refused or failed (502).
    case failed
    /// The store did not answer in time (504).
    case timedOut
    /// Too many fetches are waiting already (503 with Retry-After).
    case busy
}

/// Coalescing of cache misses, without I/O: concurrent misses for one key become one fetch whose
/// outcome answers every waiter; a bounded queue of keys waiting for a fetcher; a short memory of
/// keys the store does not have. The read-through cache holds it under its lock.
public struct FetchTable {
    public enum Admission: Equatable {
        /// The first miss for this key: a fetch was queued; the request waits for it.
        case queued
        /// A fetch for this key is already queued or running; the request waits for it too.
        case joined
        /// The queue is full: answer 503.
        case busy
        /// The store said recently that there is no such object: answer 404 without asking again.
        case notFound
        /// The object's body is arriving: the request streams it from the fill at once.
        case streaming
        /// The first miss for this key, and the caller runs the fetch itself (a loop filling from
        /// upstreams); the request waits for it.
        case claimed
    }

    enum State {
        case queued
        case running
        /// Running, and its body streams to requests as it arrives.
        case streaming
    }

    struct Pending {
        var state: State
        var waiters: [FetchWaiter]
    }

    /// Most keys waiting for a fetcher (not yet running).
    public let queueLimit: Int
    /// How long a 404 from the store is remembered, in ms.
    public let negativeMilliseconds: Int64
    private var pending: [String: Pending] = [:]
    private var queue: [String] = []
    private var queueHead = 0
    private var missing: [String: Int64] = [:]

    public init(queueLimit: Int, negativeMilliseconds: Int64) {
        self.queueLimit = queueLimit
        self.negativeMilliseconds = negativeMilliseconds
    }

    /// Keys waiting for a fetcher.
    public var queuedCount: Int { queue.count - queueHead }
    /// Keys being fetched or waiting to be.
    public var pendingCount: Int { pending.count }

    /// A miss for `key`. With `claim`, a new fetch is not queued for a fetcher: the caller runs it,
    /// and the bound is on fetches pending rather than queued.
    public mutating func request(_ key: String, _ waiter: FetchWaiter, now: Int64, claim: Bool = false) -> Admission {
        if let expiry = missing[key] {
            if now < expiry { return .notFound }
            missing[key] = nil
        }
        if let found = pending[key] {
            if found.state == .streaming { return .streaming }
            pending[key]!.waiters.append(waiter)
            return .joined
        }
        if claim {
            guard pending.count < queueLimit else { return .busy }
            pending[key] = Pending(state: .running, waiters: [waiter])
            return .claimed
        }
        guard queuedCount < queueLimit else { return .busy }
        pending[key] = Pending(state: .queued, waiters: [waiter])
        queue.append(key)
        return .queued
    }

    /// A background refresh of `key` (a stale object served while it runs): queued unless a
    /// fetch of it is already pending or the queue is full. No request waits for it.
    /// With `claim`, the caller runs it (and gets true) instead of a fetcher.
    @discardableResult
    public mutating func requestRefresh(_ key: String, claim: Bool = false) -> Bool {
        guard pending[key] == nil else { return false }
        if claim {
            guard pending.count < queueLimit else { return false }
            pending[key] = Pending(state: .running, waiters: [])
            return true
        }
        guard queuedCount < queueLimit else { return false }
        pending[key] = Pending(state: .queued, waiters: [])
        queue.append(key)
        return true
    }

    /// The next queued key for a fetcher, now marked running.
    public mutating func start() -> String? {
        guard queueHead < queue.count else { return nil }
        let key = queue[queueHead]
        queueHead += 1
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        }
        pending[key]?.state = .running
        return key
    }

    /// The body of `key` started arriving and streams to requests from now on: the waiters so far,
    /// to answer with `.streaming`; later requests are told `.streaming` at once.
    public mutating func beginStreaming(_ key: String) -> [FetchWaiter] {
        guard pending[key] != nil else { return [] }
        pending[key]!.state = .streaming
        defer { pending[key]!.waiters = [] }
        return pending[key]!.waiters
    }

    /// The fetch of `key` ended: every waiter to answer with `outcome`. A 404 is remembered.
    public mutating func finish(_ key: String, _ outcome: FetchOutcome, now: Int64) -> [FetchWaiter] {
        if outcome == .notFound && negativeMilliseconds > 0 {
            if missing.count >= 4096 { missing = missing.filter { $0.value > now } }
            missing[key] = now + negativeMilliseconds
        }
        return pending.removeValue(forKey: key)?.waiters ?? []
    }

    /// Forgets the remembered 404s of `key`, or of every key starting with `prefix` (a purge).
    public mutating func forgetMissing(key: String? = nil, prefix: String? = nil) {
        if let key { missing[key] = nil }
        if let prefix { missing = prefix.isEmpty ? [:] : missing.filter { !$0.key.hasPrefix(prefix) } }
    }

    /// Whether `key` is being fetched (queued or running).
    public func isPending(_ key: String) -> Bool { pending[key] != nil }
}
