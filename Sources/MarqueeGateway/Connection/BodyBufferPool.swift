/// Buffers for bodies built per response (playlists rewritten to carry a token) and request bodies
/// read for a service, reused so a loop allocates only while its concurrency or the largest body
/// grows. It counts the bytes of the buffers taken, so callers can bound what they hold.
struct BodyBufferPool {
    private(set) var buffers: [UnsafeMutableRawBufferPointer] = []
    private var free: [Int32] = []
    /// Bytes of the buffers currently taken (not given back).
    private(set) var takenBytes = 0

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
        if best >= 0 {
            let index = free.remove(at: best)
            takenBytes += buffers[Int(index)].count
            return index
        }
        let size = Self.reservation(bytes)
        if let last = free.popLast() {
            buffers[Int(last)].deallocate()
            buffers[Int(last)] = .allocate(byteCount: size, alignment: 64)
            takenBytes += size
            return last
        }
        buffers.append(.allocate(byteCount: size, alignment: 64))
        takenBytes += size
        return Int32(buffers.count - 1)
    }

    @inline(__always) func buffer(_ index: Int32) -> UnsafeMutableRawBufferPointer { buffers[Int(index)] }

    mutating func give(_ index: Int32) {
        takenBytes -= buffers[Int(index)].count
        free.append(index)
    }

    /// What `take(atLeast: bytes)` would add to `takenBytes` at most (buffers come in powers of two).
    static func reservation(_ bytes: Int) -> Int {
        var size = 4096
        while size < bytes { size <<= 1 }
        return size
    }
}
