/// The files of a bounded cache with their sizes, and which to evict, without I/O: S3-FIFO
/// (Yang et al., "FIFO queues are all you need for cache eviction", SOSP 2023), weighted by bytes.
///
/// Plain LRU lets one bulk download (a crawler, a viewer scrubbing a whole title, a prefetching
/// player) flush the hot set: every new object becomes the most recent. S3-FIFO admits new
/// objects to a small FIFO (a tenth of the bytes). An object used again while there moves to the
/// main FIFO on eviction; one that is not leaves, and only its hash stays in a ghost FIFO, so that
/// if it comes back soon it goes straight to main. The main FIFO gives an object that was used a
/// second chance per use (a counter up to 3) before evicting it. A scan of objects read once
/// passes through the small FIFO and the hot set in main stays.
///
/// O(1) per insert, touch and eviction (doubly linked lists in one array of nodes, a dictionary
/// from key to node). Objects are named by key, or by a 64-bit hash of it where the loops report
/// uses (`touch(hash:)`): a hash shared by two keys touches one of them, which bends the order a
/// little and nothing else.
public struct CacheIndex {
    public enum Queue: UInt8, Sendable {
        /// Where new objects enter.
        case small
        /// Objects used again, and objects coming back soon after they left.
        case main
    }

    struct Node {
        var key: String
        var hash: UInt64
        var size: Int64
        var queue: Queue
        /// Uses since it entered its queue or was last given a second chance, at most 3.
        var uses: UInt8
        var previous: Int32
        var next: Int32
    }

    struct List {
        /// Newest at the head; eviction from the tail.
        var head: Int32 = -1
        var tail: Int32 = -1
        var bytes: Int64 = 0
        var count = 0
    }

    /// The bound on the bytes of all objects, which `evictions` restores.
    public let maxBytes: Int64
    /// The small FIFO's share of `maxBytes`.
    public let smallBytes: Int64
    public var totalBytes: Int64 { small.bytes + main.bytes }
    private var nodes: [Node] = []
    private var free: [Int32] = []
    private var byKey: [String: Int32] = [:]
    private var byHash: [UInt64: Int32] = [:]
    private var small = List()
    private var main = List()
    /// Hashes of objects evicted from the small FIFO, oldest first, as many as there are objects
    /// cached (at least 64); `ghostCounts` counts each hash present.
    private var ghost: [UInt64] = []
    private var ghostStart = 0
    private var ghostCounts: [UInt64: Int32] = [:]

    public init(maxBytes: Int64, smallFraction: Double = 0.1) {
        self.maxBytes = maxBytes
        smallBytes = max(1, Int64(Double(maxBytes) * smallFraction))
    }

    public var count: Int { byKey.count }

    public func contains(_ key: String) -> Bool { byKey[key] != nil }

    /// Which FIFO holds `key`, if any.
    public func queue(of key: String) -> Queue? { byKey[key].map { nodes[Int($0)].queue } }

    /// The keys of one FIFO, next to be evicted first.
    public func keys(in queue: Queue) -> [String] {
        var result: [String] = []
        var n = list(queue).tail
        while n >= 0 {
            result.append(nodes[Int(n)].key)
            n = nodes[Int(n)].previous
        }
        return result
    }

    /// The keys starting with `prefix` (all of them for ""), in no particular order. O(n): for
    /// purges, which are rare.
    public func keys(withPrefix prefix: String) -> [String] {
        prefix.isEmpty ? Array(byKey.keys) : byKey.keys.filter { $0.hasPrefix(prefix) }
    }

    /// Records a new object (replacing any entry for the key): in the main FIFO if it left the
    /// small one recently (its hash is a ghost), else in the small FIFO. `hash` is how the loops
    /// name it in `touch(hash:)`.
    public mutating func insert(_ key: String, hash: UInt64, size: Int64) {
        remove(key)
        let returning = ghostCounts[hash] != nil
        add(key, hash: hash, size: size, to: returning ? .main : .small)
    }

    /// Records an object found in the cache at start, oldest first: in the main FIFO, since it
    /// earned its place before the restart.
    public mutating func restore(_ key: String, hash: UInt64, size: Int64) {
        remove(key)
        add(key, hash: hash, size: size, to: .main)
    }

    /// The key and size of the object the loops know by `hash`.
    public func object(forHash hash: UInt64) -> (key: String, size: Int64)? {
        byHash[hash].map { (nodes[Int($0)].key, nodes[Int($0)].size) }
    }

    /// Notes a use of the object the loops know by `hash`.
    public mutating func touch(hash: UInt64) {
        guard let n = byHash[hash] else { return }
        nodes[Int(n)].uses = min(3, nodes[Int(n)].uses + 1)
    }

    /// Notes a use of `key`.
    public mutating func touch(_ key: String) {
        guard let n = byKey[key] else { return }
        nodes[Int(n)].uses = min(3, nodes[Int(n)].uses + 1)
    }

    /// Forgets `key`; returns its size, or nil when it was not indexed.
    @discardableResult
    public mutating func remove(_ key: String) -> Int64? {
        guard let n = byKey.removeValue(forKey: key) else { return nil }
        let node = nodes[Int(n)]
        if byHash[node.hash] == n { byHash[node.hash] = nil }
        unlink(n)
        nodes[Int(n)].key = ""
        free.append(n)
        return node.size
    }

    /// Evicts until the total is within `maxBytes`, sparing `keep` (the object just fetched, which
    /// its waiters are about to read); returns the evicted keys, for their files to be deleted.
    /// Ends: each step evicts an object, moves one from small to main, or takes a use from one.
    public mutating func evictions(keeping keep: String? = nil) -> [String] {
        var victims: [String] = []
        let kept = keep.flatMap { byKey[$0] }
        while totalBytes > maxBytes {
            let smallEvictable = evictable(in: .small, sparing: kept)
            let mainEvictable = evictable(in: .main, sparing: kept)
            guard smallEvictable || mainEvictable else { break }  // only the kept object is left
            let victim =
                smallEvictable && (small.bytes > smallBytes || !mainEvictable)
                ? evictSmall(sparing: kept) : evictMain(sparing: kept)
            if let victim { victims.append(victim) }
        }
        return victims
    }

    // MARK: - The FIFOs

    private func list(_ queue: Queue) -> List { queue == .small ? small : main }

    /// Whether `queue` holds anything besides `kept`.
    private func evictable(in queue: Queue, sparing kept: Int32?) -> Bool {
        let keptHere = kept.map { nodes[Int($0)].queue == queue } ?? false
        return list(queue).count > (keptHere ? 1 : 0)
    }

    /// The list's oldest node other than `kept`; -1 when there is none.
    private func oldest(in list: List, sparing kept: Int32?) -> Int32 {
        let n = list.tail
        return n >= 0 && n == kept ? nodes[Int(n)].previous : n
    }

    /// The small FIFO's oldest object: to main if it was used again, else out (its hash a ghost).
    /// Nil when only `kept` is there, or the object moved to main.
    private mutating func evictSmall(sparing kept: Int32?) -> String? {
        let n = oldest(in: small, sparing: kept)
        guard n >= 0 else { return nil }
        let node = nodes[Int(n)]
        if node.uses > 0 {
            unlink(n)
            nodes[Int(n)].uses = 0
            link(n, to: .main)
            return nil
        }
        remove(node.key)
        rememberGhost(node.hash)
        return node.key
    }

    /// The main FIFO's oldest object: a used one goes back to the head with one use fewer (a
    /// second chance); an unused one is evicted. Nil when it gave a second chance.
    private mutating func evictMain(sparing kept: Int32?) -> String? {
        let n = oldest(in: main, sparing: kept)
        guard n >= 0 else { return nil }
        let node = nodes[Int(n)]
        if node.uses > 0 {
            unlink(n)
            nodes[Int(n)].uses = node.uses - 1
            link(n, to: .main)
            return nil
        }
        remove(node.key)
        return node.key
    }

    private mutating func rememberGhost(_ hash: UInt64) {
        ghost.append(hash)
        ghostCounts[hash, default: 0] += 1
        let limit = max(64, count)
        while ghost.count - ghostStart > limit {
            let old = ghost[ghostStart]
            ghostStart += 1
            if let c = ghostCounts[old], c > 1 { ghostCounts[old] = c - 1 } else { ghostCounts[old] = nil }
        }
        if ghostStart > 1024 && ghostStart * 2 > ghost.count {  // compact now and then
            ghost.removeFirst(ghostStart)
            ghostStart = 0
        }
    }

    private mutating func add(_ key: String, hash: UInt64, size: Int64, to queue: Queue) {
        let node = Node(key: key, hash: hash, size: size, queue: queue, uses: 0, previous: -1, next: -1)
        let n: Int32
        if let reused = free.popLast() {
            n = reused
            nodes[Int(n)] = node
        } else {
            n = Int32(nodes.count)
            nodes.append(node)
        }
        byKey[key] = n
        byHash[hash] = n
        link(n, to: queue)
    }

    /// Puts an unlinked node at the head of `queue`.
    private mutating func link(_ n: Int32, to queue: Queue) {
        nodes[Int(n)].queue = queue
        nodes[Int(n)].previous = -1
        let size = nodes[Int(n)].size
        switch queue {
        case .small:
            nodes[Int(n)].next = small.head
            if small.head >= 0 { nodes[Int(small.head)].previous = n }
            small.head = n
            if small.tail < 0 { small.tail = n }
            small.bytes += size
            small.count += 1
        case .main:
            nodes[Int(n)].next = main.head
            if main.head >= 0 { nodes[Int(main.head)].previous = n }
            main.head = n
            if main.tail < 0 { main.tail = n }
            main.bytes += size
            main.count += 1
        }
    }

    private mutating func unlink(_ n: Int32) {
        let node = nodes[Int(n)]
        if node.previous >= 0 { nodes[Int(node.previous)].next = node.next }
        if node.next >= 0 { nodes[Int(node.next)].previous = node.previous }
        switch node.queue {
        case .small:
            if small.head == n { small.head = node.next }
            if small.tail == n { small.tail = node.previous }
            small.bytes -= node.size
            small.count -= 1
        case .main:
            if main.head == n { main.head = node.next }
            if main.tail == n { main.tail = node.previous }
            main.bytes -= node.size
            main.count -= 1
        }
        nodes[Int(n)].previous = -1
        nodes[Int(n)].next = -1
    }
}
