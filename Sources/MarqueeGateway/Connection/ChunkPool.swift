import Glibc

/// Fixed-size memory chunks handed out by index. Chunks are allocated the first time the pool runs
/// dry and reused forever after, so the steady state allocates nothing.
struct ChunkPool {
    let chunkBytes: Int
    let capacity: Int
    private let chunks: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private let free: UnsafeMutablePointer<Int32>
    private var freeCount = 0
    private(set) var created = 0

    init(chunkBytes: Int, capacity: Int) {
        self.chunkBytes = chunkBytes
        self.capacity = capacity
        chunks = .allocate(capacity: capacity)
        chunks.initialize(repeating: nil, count: capacity)
        free = .allocate(capacity: capacity)
    }

    /// A chunk index, or -1 when `capacity` chunks are all in use.
    mutating func take() -> Int32 {
        if freeCount > 0 {
            freeCount -= 1
            return free[freeCount]
        }
        guard created < capacity else { return -1 }
        chunks[created] = UnsafeMutableRawPointer.allocate(byteCount: chunkBytes, alignment: 64)
        created += 1
        return Int32(created - 1)
    }

    mutating func give(_ index: Int32) {
        free[freeCount] = index
        freeCount += 1
    }

    @inline(__always) func pointer(_ index: Int32) -> UnsafeMutableRawPointer { chunks[Int(index)]! }
}
