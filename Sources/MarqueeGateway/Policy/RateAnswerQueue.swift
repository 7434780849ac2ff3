import CLinux
import MarqueePolicy

/// Answers of the shared (Redis) limiter for one loop: a single-producer (the limiter's command
/// thread), single-consumer (the loop) ring. It holds as many answers as the loop has connection
/// slots, and each connection waits for at most one answer, so it never overflows.
final class RateAnswerQueue: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<RedisRateAnswer>
    private let mask: UInt64
    /// head (next to read) and tail (next to write), each on its own cache line.
    private let counters: UnsafeMutablePointer<UInt64>

    init(capacity: Int) {
        var size = 16
        while size < capacity { size <<= 1 }
        slots = .allocate(capacity: size)
        slots.initialize(repeating: RedisRateAnswer(loop: 0, slot: -1, generation: 0, result: .unavailable), count: size)
        mask = UInt64(size - 1)
        counters = .allocate(capacity: 16)
        counters.initialize(repeating: 0, count: 16)
    }

    /// Producer side. False only if the loop fell a whole ring behind (cannot happen by sizing).
    func push(_ answer: RedisRateAnswer) -> Bool {
        let tail = mq_load_relaxed(counters + 8)
        guard tail - mq_load_acquire(counters) <= mask else { return false }
        slots[Int(tail & mask)] = answer
        mq_store_release(counters + 8, tail + 1)
        return true
    }

    /// Consumer side: the next answer, if any.
    func pop() -> RedisRateAnswer? {
        let head = mq_load_relaxed(counters)
        guard head != mq_load_acquire(counters + 8) else { return nil }
        let answer = slots[Int(head & mask)]
        mq_store_release(counters, head + 1)
        return answer
    }
}
