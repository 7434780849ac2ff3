import CLinux
import Glibc

/// A bounded multi-producer, single-consumer queue in fixed memory: event loops enqueue without
/// locks or allocation, the one Redis thread dequeues. Each cell carries a sequence number
/// (Vyukov's bounded queue): a producer claims a position with one CAS on the tail and publishes
/// the cell with a release store; the consumer sees it with an acquire load. A full queue is
/// reported, never waited on.
///
/// Wake-ups: the consumer announces it is about to sleep on a POSIX semaphore; a producer that sees
/// the announcement posts it. `sem_post` takes no lock (an atomic add, plus a futex wake only when
/// someone sleeps), so loops never block. A wake-up lost to a memory-ordering race costs at most the
/// consumer's sleep timeout, which callers keep short.
final class RedisRequestQueue<Element>: @unchecked Sendable {
    // @unchecked Sendable: all shared state is raw memory touched only through C11 atomics, plus
    // payload cells whose ownership passes producer → consumer through the sequence words
    // (release on publish, acquire on consume). `head` is used by the single consumer only.
    let capacity: Int
    private let mask: Int
    private let sequences: UnsafeMutablePointer<UInt64>
    private let cells: UnsafeMutablePointer<Element>
    /// Word 0: tail (next position to claim). Word 8: consumer sleeping flag (separate cache line).
    private let shared: UnsafeMutablePointer<UInt64>
    private var head: UInt64 = 0
    private let semaphore: UnsafeMutablePointer<sem_t>

    init(capacity: Int) {
        var size = 2
        while size < capacity { size <<= 1 }
        self.capacity = size
        mask = size - 1
        sequences = .allocate(capacity: size)
        for i in 0..<size { (sequences + i).initialize(to: UInt64(i)) }
        cells = .allocate(capacity: size)
        shared = .allocate(capacity: 16)
        shared.initialize(repeating: 0, count: 16)
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
    }

    deinit {
        while dequeue() != nil {}
        sequences.deallocate()
        cells.deallocate()
        shared.deallocate()
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    /// Adds `element`. - Returns: false when the queue is full. Thread-safe, lock-free, no allocation.
    func enqueue(_ element: Element) -> Bool {
        var position = mq_load_relaxed(shared)
        while true {
            let index = Int(truncatingIfNeeded: position) & mask
            let sequence = mq_load_acquire(sequences + index)
            let difference = Int64(bitPattern: sequence &- position)
            if difference == 0 {
                var expected = position
                if mq_compare_exchange(shared, &expected, position &+ 1) == 1 {
                    (cells + index).initialize(to: element)
                    mq_store_release(sequences + index, position &+ 1)
                    if mq_load_acquire(shared + 8) != 0 { sem_post(semaphore) }
                    return true
                }
                position = expected
            } else if difference < 0 {
                return false
            } else {
                position = mq_load_relaxed(shared)
            }
        }
    }

    /// Takes the oldest element, or nil when empty. Consumer thread only.
    func dequeue() -> Element? {
        let index = Int(truncatingIfNeeded: head) & mask
        guard mq_load_acquire(sequences + index) == head &+ 1 else { return nil }
        let element = (cells + index).move()
        mq_store_release(sequences + index, head &+ UInt64(capacity))
        head &+= 1
        return element
    }

    /// True when nothing is published for the consumer. Consumer thread only.
    var isEmpty: Bool {
        mq_load_acquire(sequences + (Int(truncatingIfNeeded: head) & mask)) != head &+ 1
    }

    /// Sleeps until a producer posts or `micros` pass. Consumer thread only.
    func wait(micros: Int64) {
        // The RMW (full barrier on x86) orders the flag before the emptiness check.
        mq_fetch_add(shared + 8, 1)
        if isEmpty, micros > 0 {
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            let total = Int64(ts.tv_nsec) + (micros % 1_000_000) * 1000
            ts.tv_sec += Int(micros / 1_000_000 + total / 1_000_000_000)
            ts.tv_nsec = Int(total % 1_000_000_000)
            _ = sem_timedwait(semaphore, &ts)
        }
        mq_store_release(shared + 8, 0)
        while sem_trywait(semaphore) == 0 {}
    }

    /// Wakes the consumer if it sleeps (used by `stop`).
    func wake() { sem_post(semaphore) }
}
