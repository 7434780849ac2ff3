import CLinux

/// A lock-free ring from one producer thread to one consumer thread, bounded to a power of two
/// of at least `capacity`: the shared limiter's answers to a loop, and a loop's file uses to the
/// read-through cache.
final class SingleProducerRing<Element>: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<Element>
    private let mask: UInt64
    /// head (next to read) and tail (next to write), each on its own cache line.
    private let counters: UnsafeMutablePointer<UInt64>

    /// `filler` initializes the slots so that pushes assign into initialized memory.
    init(capacity: Int, filler: Element) {
        var size = 16
        while size < capacity { size <<= 1 }
        slots = .allocate(capacity: size)
        slots.initialize(repeating: filler, count: size)
        mask = UInt64(size - 1)
        counters = .allocate(capacity: 16)
        counters.initialize(repeating: 0, count: 16)
    }

    /// Producer side; false when the consumer is a whole ring behind (the element is dropped).
    @inline(__always) func push(_ element: Element) -> Bool {
        let tail = mq_load_relaxed(counters + 8)
        guard tail - mq_load_acquire(counters) <= mask else { return false }
        slots[Int(tail & mask)] = element
        mq_store_release(counters + 8, tail + 1)
        return true
    }

    /// Consumer side: the oldest element, if any.
    func pop() -> Element? {
        let head = mq_load_relaxed(counters)
        guard head != mq_load_acquire(counters + 8) else { return nil }
        let element = slots[Int(head & mask)]
        mq_store_release(counters, head + 1)
        return element
    }
}
