/// Buffers for bodies built per response (playlists rewritten to carry a token), reused across
/// responses so a loop allocates only while its concurrency or the largest playlist grows.
struct BodyBufferPool {
    private(set) var buffers: [UnsafeMutableRawBufferPointer] = []
    private var free: [Int32] = []

    init() {
        buffers.reserveCapacity(64)
        free.reserveCapacity(64)
    }

    /// A buffer of at least `bytes`; give it back with `give`.
    mutating func take(atLeast bytes: Int) -> Int32 {
        // The smallest free buffer that fits; grow one when none does.
        var best: Int = -1
        for (i, index) in free.enumerated() where buffers[Int(index)].count >= bytes {
            if best < 0 || buffers[Int(index)].count < buffers[Int(free[best])].count { best = i }
        }
        if best >= 0 { return free.remove(at: best) }
        var size = 4096
        while size < bytes { size <<= 1 }
        if let last = free.popLast() {
            buffers[Int(last)].deallocate()
            buffers[Int(last)] = .allocate(byteCount: size, alignment: 64)
            return last
        }
        buffers.append(.allocate(byteCount: size, alignment: 64))
        return Int32(buffers.count - 1)
    }

    @inline(__always) func buffer(_ index: Int32) -> UnsafeMutableRawBufferPointer { buffers[Int(index)] }

    mutating func give(_ index: Int32) { free.append(index) }
}
