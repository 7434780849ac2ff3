import Testing
@testable import MarqueePolicy

@Suite("LocalRateLimiter table")
struct LimitTableTests {
    static let tenPerSecond = RateLimit(name: "api", limit: 10, periodMilliseconds: 1000)
    static let twoPerSecond = RateLimit(name: "strict", limit: 2, periodMilliseconds: 1000)

    func keys(_ pairs: (UInt8, UInt64)...) -> RateKeys {
        var k = RateKeys()
        for (i, h) in pairs { k.append(limitIndex: i, keyHash: h) }
        return k
    }

    @Test("burst, refusal, retry-after and recovery through the table")
    func singleKey() {
        let limiter = LocalRateLimiter(limits: [Self.tenPerSecond], capacity: 1024)
        let now: UInt64 = 1_000_000_000
        for k in 1...10 {
            #expect(limiter.check(keys((0, 42)), now: now) == .allowed(limitIndex: 0, remaining: 10 - k, resetMicros: UInt64(k) * 100_000))
        }
        #expect(limiter.check(keys((0, 42)), now: now) == .limited(limitIndex: 0, retryAfterMicros: 100_000))
        #expect(limiter.check(keys((0, 42)), now: now + 100_000) == .allowed(limitIndex: 0, remaining: 0, resetMicros: 1_000_000))
        // Another key is independent.
        #expect(limiter.check(keys((0, 43)), now: now) == .allowed(limitIndex: 0, remaining: 9, resetMicros: 100_000))
        // After a full idle period the key is back to a full burst.
        #expect(limiter.check(keys((0, 42)), now: now + 3_000_000) == .allowed(limitIndex: 0, remaining: 9, resetMicros: 100_000))
        #expect(limiter.tableFullCount == 0)
    }

    @Test("a refused key consumes nothing on the others; the tightest key is reported")
    func multiKeyAtomicity() {
        let limiter = LocalRateLimiter(limits: [Self.tenPerSecond, Self.twoPerSecond], capacity: 1024)
        let now: UInt64 = 7_000_000
        let both = keys((0, 1), (1, 1))
        #expect(limiter.check(both, now: now) == .allowed(limitIndex: 1, remaining: 1, resetMicros: 500_000))
        #expect(limiter.check(both, now: now) == .allowed(limitIndex: 1, remaining: 0, resetMicros: 1_000_000))
        for _ in 0..<5 {
            #expect(limiter.check(both, now: now) == .limited(limitIndex: 1, retryAfterMicros: 500_000))
        }
        // Only the two passing requests were charged to the 10/s key.
        #expect(limiter.check(keys((0, 1)), now: now) == .allowed(limitIndex: 0, remaining: 7, resetMicros: 300_000))
        // The same hash under different limits is a different bucket.
        #expect(limiter.check(keys((1, 2)), now: now) == .allowed(limitIndex: 1, remaining: 1, resetMicros: 500_000))
        // When two keys refuse, the one that frees up last is reported.
        let limiter2 = LocalRateLimiter(limits: [Self.tenPerSecond, Self.twoPerSecond], capacity: 1024)
        for _ in 0..<10 { _ = limiter2.check(keys((0, 5)), now: now) }
        for _ in 0..<2 { _ = limiter2.check(keys((1, 5)), now: now) }
        #expect(limiter2.check(keys((0, 5), (1, 5)), now: now) == .limited(limitIndex: 1, retryAfterMicros: 500_000))
        #expect(limiter.check(RateKeys(), now: now) == .allowed(limitIndex: 0, remaining: Int.max, resetMicros: 0))
    }

    @Test("a full probe window fails open and is counted; idle slots are reclaimed")
    func fullAndReclaim() {
        // 16 slots, burst 1, T = 1 s: every key charged at t0 stays live for one second.
        let oneBurst = RateLimit(name: "one", limit: 1, periodMilliseconds: 1000)
        let limiter = LocalRateLimiter(limits: [oneBurst], capacity: 16)
        #expect(limiter.capacity == 16)
        let t0: UInt64 = 50_000_000
        for h in 1...100 as ClosedRange<UInt64> {
            #expect(limiter.check(keys((0, h)), now: t0).isAllowed)
        }
        let full = limiter.tableFullCount
        #expect(full >= 84, "100 live keys in 16 slots: at least 84 found no slot (got \(full))")
        // A key without a slot is allowed every time (documented fail-open) and counted each time.
        var unplaced: UInt64 = 0
        for h in 1...100 as ClosedRange<UInt64> {
            let before = limiter.tableFullCount
            if limiter.check(keys((0, h)), now: t0).isAllowed, limiter.tableFullCount == before + 1 { unplaced = h; break }
        }
        #expect(unplaced != 0)
        // Ten seconds later every slot is idle: eight new keys (at most one probe window) all get
        // slots and real accounting.
        let t1 = t0 + 10_000_000
        for h in 1000..<1008 as Range<UInt64> {
            let before = limiter.tableFullCount
            #expect(limiter.check(keys((0, h)), now: t1) == .allowed(limitIndex: 0, remaining: 0, resetMicros: 1_000_000))
            #expect(limiter.check(keys((0, h)), now: t1) == .limited(limitIndex: 0, retryAfterMicros: 1_000_000))
            #expect(limiter.tableFullCount == before)
        }
    }

    @Test("any clock works: TATs wrap modulo 2^48 µs without resetting buckets")
    func clockWrap() {
        let limiter = LocalRateLimiter(limits: [Self.twoPerSecond], capacity: 64)
        let nearWrap: UInt64 = (1 << 48) - 300_000
        #expect(limiter.check(keys((0, 9)), now: nearWrap).isAllowed)
        #expect(limiter.check(keys((0, 9)), now: nearWrap).isAllowed)
        // The TAT is now past 2^48; 100 ms later (still before the wrap) the key must still refuse.
        #expect(limiter.check(keys((0, 9)), now: nearWrap + 100_000) == .limited(limitIndex: 0, retryAfterMicros: 400_000))
        // And just after the wrap.
        #expect(limiter.check(keys((0, 9)), now: nearWrap + 400_000) == .limited(limitIndex: 0, retryAfterMicros: 100_000))
        #expect(limiter.check(keys((0, 9)), now: nearWrap + 500_000).isAllowed)
        // Wall-clock microseconds (beyond 2^48) work the same.
        let wall: UInt64 = 1_760_000_000_000_000
        #expect(limiter.check(keys((0, 10)), now: wall).isAllowed)
        #expect(limiter.check(keys((0, 10)), now: wall).isAllowed)
        #expect(limiter.check(keys((0, 10)), now: wall) == .limited(limitIndex: 0, retryAfterMicros: 500_000))
    }
}
