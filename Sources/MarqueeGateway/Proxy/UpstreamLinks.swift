import CLinux
import Glibc

/// A loop's connections to its upstreams: a fixed table of links and, per upstream, a keep-alive
/// pool (a LIFO list, so the warmest connection is reused first) bounded by `idlePerUpstream`.
/// Bookkeeping only, allocated once: the loop opens and closes descriptors and runs the ring
/// operations. Whoever needs an upstream (the API proxy today, cache fills next) takes a link
/// here and gives it back. Tested alone in `UpstreamLinksTests`.
struct UpstreamLinks {
    /// Links in the table: one active per client slot at most, plus every upstream's idle pool.
    let capacity: Int
    let idlePerUpstream: Int
    /// Each upstream's address, where connect operations can point at it for as long as they run.
    let sockets: UnsafeMutablePointer<sockaddr_storage>
    let addresses: [SocketAddress]
    /// `HOST:PORT` per upstream: the Host field for requests that came without one.
    let authorities: [[UInt8]]
    private let table: UnsafeMutablePointer<UpstreamLink>
    private let free: UnsafeMutablePointer<Int32>
    private(set) var freeCount: Int
    private let idleHeads: UnsafeMutablePointer<Int32>
    private let idleCounts: UnsafeMutablePointer<Int>

    init(upstreams: [ServiceUpstream], activeLinks: Int, idlePerUpstream: Int) {
        capacity = upstreams.isEmpty ? 0 : activeLinks + upstreams.count * idlePerUpstream
        self.idlePerUpstream = idlePerUpstream
        table = .allocate(capacity: max(1, capacity))
        table.initialize(repeating: UpstreamLink(), count: max(1, capacity))
        free = .allocate(capacity: max(1, capacity))
        for i in 0..<capacity { free[i] = Int32(capacity - 1 - i) }
        freeCount = capacity
        idleHeads = .allocate(capacity: max(1, upstreams.count))
        idleHeads.initialize(repeating: -1, count: max(1, upstreams.count))
        idleCounts = .allocate(capacity: max(1, upstreams.count))
        idleCounts.initialize(repeating: 0, count: max(1, upstreams.count))
        addresses = upstreams.map(\.address)
        sockets = .allocate(capacity: max(1, upstreams.count))
        for (i, upstream) in upstreams.enumerated() { sockets[i] = upstream.address.storage }
        authorities = upstreams.map { Array($0.authority.utf8) }
    }

    /// The loop's links live as long as the process; tests give theirs back.
    func deallocate() {
        table.deallocate()
        free.deallocate()
        idleHeads.deallocate()
        idleCounts.deallocate()
        sockets.deallocate()
    }

    subscript(_ link: Int) -> UpstreamLink {
        get { table[link] }
        nonmutating set { table[link] = newValue }
    }

    func idleCount(_ upstream: Int) -> Int { idleCounts[upstream] }

    /// A fresh link for `fd`, connecting to `upstream`; nil when the table is full.
    mutating func open(fd: Int32, upstream: Int) -> Int32? {
        guard freeCount > 0 else { return nil }
        freeCount -= 1
        let link = free[freeCount]
        let generation = table[Int(link)].generation &+ 1
        table[Int(link)] = UpstreamLink()
        table[Int(link)].generation = generation
        table[Int(link)].fd = fd
        table[Int(link)].upstream = Int16(upstream)
        table[Int(link)].state = .connecting
        return link
    }

    /// The warmest idle link of `upstream`, now active and marked reused; -1 when none. Its new
    /// generation makes the pending idle poll's completion recognisably stale.
    mutating func takeIdle(_ upstream: Int) -> Int32 {
        let link = idleHeads[upstream]
        guard link >= 0 else { return -1 }
        idleHeads[upstream] = table[Int(link)].nextIdle
        idleCounts[upstream] -= 1
        table[Int(link)].generation &+= 1
        table[Int(link)].nextIdle = -1
        table[Int(link)].state = .active
        table[Int(link)].reused = true
        return link
    }

    /// Puts a link whose exchange ended whole into its upstream's pool. Returns false when the
    /// pool is full (then the loop closes it); true means the loop arms its idle poll.
    mutating func pool(_ link: Int32) -> Bool {
        let l = Int(link)
        let upstream = Int(table[l].upstream)
        guard idleCounts[upstream] < idlePerUpstream else { return false }
        table[l].state = .idle
        table[l].owner = -1
        table[l].generation &+= 1
        table[l].nextIdle = idleHeads[upstream]
        idleHeads[upstream] = link
        idleCounts[upstream] += 1
        return true
    }

    /// Takes an idle link out of its pool (the upstream closed it).
    mutating func removeIdle(_ link: Int32) {
        let upstream = Int(table[Int(link)].upstream)
        var previous: Int32 = -1
        var cursor = idleHeads[upstream]
        while cursor >= 0 && cursor != link {
            previous = cursor
            cursor = table[Int(cursor)].nextIdle
        }
        guard cursor == link else { return }
        if previous >= 0 { table[Int(previous)].nextIdle = table[Int(link)].nextIdle } else { idleHeads[upstream] = table[Int(link)].nextIdle }
        idleCounts[upstream] -= 1
    }

    /// Frees the entry of a link whose descriptor the loop closed. Returns false when it was free.
    mutating func release(_ link: Int32) -> Bool {
        let l = Int(link)
        guard table[l].state != .free else { return false }
        let generation = table[l].generation &+ 1
        table[l] = UpstreamLink()
        table[l].generation = generation
        free[freeCount] = link
        freeCount += 1
        return true
    }
}
