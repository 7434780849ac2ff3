import CLinux
import Glibc
import MarqueeBus
import MarqueePolicy
import MarqueeTLS

/// State every loop and the main thread share: the drain flag, wake-up descriptors, counters.
final class SharedState: @unchecked Sendable {
    let metrics: [LoopMetrics]
    /// Token, geo, rate and revocation checks; nil when nothing is configured.
    let policy: AccessPolicy?
    let wakeFDs: [Int32]
    private let drainFlag: UnsafeMutablePointer<UInt64>
    private let readyFlag: UnsafeMutablePointer<UInt64>

    /// Service upstream names, in the order of their metrics.
    let upstreamNames: [String]

    /// The catalog's per-title rules, when a catalog service supplies them.
    let titleRules: SwappableReference<TitleRuleTable>?

    /// Delivery records: one ring per loop and the writer thread that drains them; empty and nil
    /// when records are off. Set before the loops start.
    var recordRings: [RecordRing] = []
    var recordWriter: DeliveryRecordWriter?

    /// The origin's read-through cache over an object store; set before the loops start.
    var readThrough: ReadThroughCache?
    /// With a cache and a Redis: purges published to and heard from every gateway on that Redis.
    var purgeFeed: PurgeFeed?
    /// How an edge verifies its https upstreams; nil when none is https.
    var upstreamTLS: TLSContext?
    /// The media listener's certificates (`tls.*`), shared by every loop and replaced when they
    /// are reloaded; nil for plain HTTP.
    var tls: SwappableReference<TLSContext>?
    /// Edge fetches are verified (`origin.edge_key_file`): their counters are exported.
    var trustsEdges = false

    init(loops: Int, policy: AccessPolicy?, upstreamNames: [String] = [], titleRules: Bool = false) {
        self.policy = policy
        self.titleRules = titleRules ? SwappableReference(TitleRuleTable.notLoaded) : nil
        self.upstreamNames = upstreamNames
        metrics = (0..<loops).map { _ in LoopMetrics(upstreams: upstreamNames.count) }
        wakeFDs = (0..<loops).map { _ in eventfd(0, Int32(EFD_CLOEXEC)) }
        drainFlag = .allocate(capacity: 1)
        drainFlag.initialize(to: 0)
        readyFlag = .allocate(capacity: 1)
        readyFlag.initialize(to: 0)
    }

    var isDraining: Bool { mq_load_relaxed(drainFlag) != 0 }
    var isReady: Bool { mq_load_relaxed(readyFlag) != 0 && !isDraining }

    func markReady() { mq_store_relaxed(readyFlag, 1) }

    /// Asks every loop to drain.
    func beginDrain() {
        mq_store_relaxed(drainFlag, 1)
        var one: UInt64 = 1
        for fd in wakeFDs { _ = write(fd, &one, 8) }
    }
}
