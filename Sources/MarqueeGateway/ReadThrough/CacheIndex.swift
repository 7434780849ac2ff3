/// The files of the read-through cache in least-recently-used order with their sizes, without
/// I/O: the cache asks it which files to evict to stay within its byte bound. O(1) per insert,
/// touch and eviction (a doubly linked list in an array, a dictionary from key to node).
public struct CacheIndex {
    struct Node {
        var key: String
        var hash: UInt64
        var size: Int64
        var previous: Int32
        var next: Int32
    }

    /// The bound on the bytes of all files, which `evictions` restores.
    public let maxBytes: Int64
    public private(set) var totalBytes: Int64 = 0
    private var nodes: [Node] = []
    private var free: [Int32] = []
    private var byKey: [String: Int32] = [:]
    private var byHash: [UInt64: Int32] = [:]
    /// Most recent at the head, eviction from the tail.
    private var head: Int32 = -1
    private var tail: Int32 = -1

    public init(maxBytes: Int64) {
        self.maxBytes = maxBytes
    }

    public var count: Int { byKey.count }

    public func contains(_ key: String) -> Bool { byKey[key] != nil }

    /// Keys from least to most recently used.
    public var keysByAge: [String] {
        var result: [String] = []
        var n = tail
        while n >= 0 {
            result.append(nodes[Int(n)].key)
            n = nodes[Int(n)].previous
        }
        return result
    }

    /// Records a file (replacing any entry for the key) as the most recently used.
    /// `hash` is how the loops name it in `touch(hash:)`.
    public mutating func insert(_ key: String, hash: UInt64, size: Int64) {
        remove(key)
        let node = Node(key: key, hash: hash, size: size, previous: -1, next: -1)
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
        totalBytes += size
        linkAtHead(n)
    }

    /// Marks the file the loops know by `hash` as just used (a hash shared by two keys touches one
    /// of them, which only bends the order a little).
    public mutating func touch(hash: UInt64) {
        guard let n = byHash[hash] else { return }
        unlink(n)
        linkAtHead(n)
    }

    public mutating func touch(_ key: String) {
        guard let n = byKey[key] else { return }
        unlink(n)
        linkAtHead(n)
    }

    /// Forgets `key`; returns its size, or nil when it was not indexed.
    @discardableResult
    public mutating func remove(_ key: String) -> Int64? {
        guard let n = byKey.removeValue(forKey: key) else { return nil }
        let node = nodes[Int(n)]
        if byHash[node.hash] == n { byHash[node.hash] = nil }
        unlink(n)
        totalBytes -= node.size
        nodes[Int(n)].key = ""
        free.append(n)
        return node.size
    }

    /// Removes least recently used files until the total is within `maxBytes`, sparing `keep` (the
    /// file just fetched, which its waiters are about to read); returns their keys to delete.
    public mutating func evictions(keeping keep: String? = nil) -> [String] {
        var victims: [String] = []
        var n = tail
        while totalBytes > maxBytes && n >= 0 {
            let previous = nodes[Int(n)].previous
            let key = nodes[Int(n)].key
            if key != keep {
                remove(key)
                victims.append(key)
            }
            n = previous
        }
        return victims
    }

    private mutating func unlink(_ n: Int32) {
        let node = nodes[Int(n)]
        if node.previous >= 0 { nodes[Int(node.previous)].next = node.next } else if head == n { head = node.next }
        if node.next >= 0 { nodes[Int(node.next)].previous = node.previous } else if tail == n { tail = node.previous }
        nodes[Int(n)].previous = -1
        nodes[Int(n)].next = -1
    }

    private mutating func linkAtHead(_ n: Int32) {
        nodes[Int(n)].previous = -1
        nodes[Int(n)].next = head
        if head >= 0 { nodes[Int(head)].previous = n }
        head = n
        if tail < 0 { tail = n }
    }
}
