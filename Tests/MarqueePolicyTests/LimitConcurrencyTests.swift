import Dispatch
import Glibc
import Testing
@testable import MarqueePolicy

@Suite("LocalRateLimiter under contention")
struct LimitConcurrencyTests {
    final class Counter: @unchecked Sendable {
        let value = UnsafeMutablePointer<Int>.allocate(capacity: 64)
        init() { value.initialize(repeating: 0, count: 64) }
        deinit { value.deallocate() }
    }

    @Test("threads hammering one key at one instant get exactly the burst through")
    func exactBurst() {
        let limit = RateLimit(name: "hot", limit: 1000, periodMilliseconds: 60_000)
        for round in 0..<5 {
            let limiter = LocalRateLimiter(limits: [limit, RateLimit(name: "wide", limit: 1_000_000, periodMilliseconds: 1000)], capacity: 256)
            let counts = Counter()
            let now: UInt64 = 9_000_000_000 + UInt64(round)
            DispatchQueue.concurrentPerform(iterations: 4) { worker in
                var keys = RateKeys()
                keys.append(limitIndex: 0, keyHash: 77)
                keys.append(limitIndex: 1, keyHash: UInt64(worker))
                var allowed = 0
                for _ in 0..<5000 where limiter.check(keys, now: now).isAllowed { allowed += 1 }
                counts.value[worker * 8] = allowed
            }
            let total = (0..<4).reduce(0) { $0 + counts.value[$1 * 8] }
            #expect(total == 1000, "round \(round): \(total) allowed")
            #expect(limiter.tableFullCount == 0)
        }
    }

    @Test("with a moving clock no window lets more than burst + elapsed / T through")
    func movingClock() {
        // 100 per second, burst 10: T = 10 ms.
        let limit = RateLimit(name: "move", limit: 100, periodMilliseconds: 1000, burst: 10)
        let limiter = LocalRateLimiter(limits: [limit], capacity: 256)
        let counts = Counter()
        let start = UInt64(LimitsClock.monotonicMicros())
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            let keys = RateKeys(RateKey(limitIndex: 0, keyHash: 5))
            var allowed = 0
            var now = UInt64(LimitsClock.monotonicMicros())
            while now - start < 300_000 {
                if limiter.check(keys, now: now).isAllowed { allowed += 1 }
                now = UInt64(LimitsClock.monotonicMicros())
            }
            counts.value[worker * 8] = allowed
        }
        let elapsed = UInt64(LimitsClock.monotonicMicros()) - start
        let total = (0..<4).reduce(0) { $0 + counts.value[$1 * 8] }
        let ceiling = 10 + Int(elapsed / 10_000) + 1
        #expect(total <= ceiling, "\(total) allowed in \(elapsed) µs, ceiling \(ceiling)")
        #expect(total >= 10)
    }
}
