import CLinux
import MarqueeHTTP

/// Counters of one event loop in plain memory: the loop adds to them without atomics or locks
/// (it is their only writer) and the admin thread reads them for `/metrics`.
struct LoopMetrics: @unchecked Sendable {
    enum Counter: Int, CaseIterable {
        case bytesSent
        case connectionsAccepted
        case connectionsRefused
        case connectionsOpen
        case headerTimeouts
        case bodyTimeouts
        case idleTimeouts
        case sendTimeouts
        case loopTurns
        case completions
        case submissions
        case receiveBuffersExhausted
        case acceptErrors
        case fileCacheHits
        case fileCacheMisses
        case splicedBytes
        case pipeWaits
        case latencyCount
        case latencyMicrosecondsSum
        /// Read-through cache (origin serving from a store): files found, misses parked for a
        /// fetch, and misses that joined a fetch already under way.
        case readThroughHits
        case readThroughMisses
        case readThroughCoalesced
        /// Stale copies refreshed before they were served (an edge's expiring objects).
        case readThroughRefreshes
        /// Responses streamed from a fill while its body arrived (`ObjectFill`), and those cut
        /// because the fill failed part-way.
        case readThroughStreamed
        case readThroughStreamsCut
        /// Delivery records committed to the loop's ring, and those with a field cut to fit.
        case deliveryRecords
        case deliveryRecordsTruncated
        /// Media fetches signed by an edge (`Marquee-Edge`) and served, and requests refused for a
        /// bad signature or by `origin.shield_only`.
        case edgeFetches
        case edgeRefused
        /// HTTPS: handshakes completed (and of them resumed from a ticket), handshakes refused
        /// (old versions, garbage, plain HTTP), and connections cut by a TLS failure after one.
        case tlsHandshakes
        case tlsResumptions
        case tlsHandshakeFailures
        case tlsFailures
        /// TLS sessions an edge opened to its https upstreams.
        case upstreamTLSHandshakes
    }

    /// Upper bounds of the latency histogram, in microseconds.
    static let latencyBoundsMicroseconds: [UInt64] = [
        100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
        2_500_000, 5_000_000, 10_000_000,
    ]

    static let statusBase = Counter.allCases.count
    static let latencyBase = statusBase + HTTPStatus.all.count
    static let policyBase = latencyBase + latencyBoundsMicroseconds.count + 1
    static let slotCount = policyBase + PolicyCounter.count

    /// Per service upstream, after the fixed counters: `ProxyCounter`s, then responses by status class.
    enum ProxyCounter: Int, CaseIterable {
        case request, connectFailure, timeout, bodyBudgetRefusal
    }
    static let proxyCountersPerUpstream = ProxyCounter.allCases.count + 5

    let values: UnsafeMutablePointer<UInt64>
    let upstreams: Int

    init(upstreams: Int = 0) {
        self.upstreams = upstreams
        let count = Self.slotCount + upstreams * Self.proxyCountersPerUpstream
        values = .allocate(capacity: count)
        values.initialize(repeating: 0, count: count)
    }

    @inline(__always) static func proxyIndex(upstream: Int, _ offset: Int) -> Int {
        slotCount + upstream * proxyCountersPerUpstream + offset
    }

    @inline(__always) func countProxied(upstream: Int, _ counter: ProxyCounter) {
        mq_add_relaxed(values + Self.proxyIndex(upstream: upstream, counter.rawValue), 1)
    }

    /// Counts one response to a proxied request (relayed, or 502/504 from the gateway) by class.
    @inline(__always) func countProxied(upstream: Int, statusClass status: Int) {
        let statusClass = min(5, max(1, status / 100))
        mq_add_relaxed(values + Self.proxyIndex(upstream: upstream, ProxyCounter.allCases.count + statusClass - 1), 1)
    }

    @inline(__always) func add(_ counter: Counter, _ amount: UInt64 = 1) {
        mq_add_relaxed(values + counter.rawValue, amount)
    }

    @inline(__always) func set(_ counter: Counter, _ value: UInt64) {
        mq_store_relaxed(values + counter.rawValue, value)
    }

    @inline(__always) func count(_ status: HTTPStatus) {
        mq_add_relaxed(values + Self.statusBase + status.counterIndex, 1)
    }

    /// Counts one access-policy decision (see `PolicyCounter`).
    @inline(__always) func countPolicy(_ index: Int) {
        mq_add_relaxed(values + Self.policyBase + index, 1)
    }

    @inline(__always) func observeLatency(microseconds: UInt64) {
        let bucket = Self.latencyBucket(microseconds)
        mq_add_relaxed(values + Self.latencyBase + bucket, 1)
        add(.latencyCount)
        add(.latencyMicrosecondsSum, microseconds)
    }

    /// The histogram bucket of a latency: a switch rather than a walk over the bounds array, so
    /// the request path touches no global.
    @inline(__always) static func latencyBucket(_ us: UInt64) -> Int {
        switch us {
        case ...100: 0
        case ...250: 1
        case ...500: 2
        case ...1_000: 3
        case ...2_500: 4
        case ...5_000: 5
        case ...10_000: 6
        case ...25_000: 7
        case ...50_000: 8
        case ...100_000: 9
        case ...250_000: 10
        case ...500_000: 11
        case ...1_000_000: 12
        case ...2_500_000: 13
        case ...5_000_000: 14
        case ...10_000_000: 15
        default: 16
        }
    }

    func read(_ index: Int) -> UInt64 { mq_load_relaxed(values + index) }
    func read(_ counter: Counter) -> UInt64 { read(counter.rawValue) }
}
