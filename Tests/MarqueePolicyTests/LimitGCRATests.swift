import Testing
@testable import MarqueePolicy

@Suite("GCRA arithmetic and RateLimit headers")
struct LimitGCRATests {
    // 10 per second, burst 10: T = 100 ms, τ = 1 s.
    let tenPerSecond = RateLimit(name: "api", limit: 10, periodMilliseconds: 1000)

    @Test("constants: T = period / limit, τ = T × burst")
    func constants() {
        #expect(tenPerSecond.emissionIntervalMicros == 100_000)
        #expect(tenPerSecond.toleranceMicros == 1_000_000)
        let bursty = RateLimit(name: "b", limit: 60, periodMilliseconds: 60_000, burst: 5)
        #expect(bursty.emissionIntervalMicros == 1_000_000)
        #expect(bursty.toleranceMicros == 5_000_000)
        let odd = RateLimit(name: "odd", limit: 3, periodMilliseconds: 1000)
        #expect(odd.emissionIntervalMicros == 333_333)
    }

    @Test("burst from idle, then refusal with retry-after T")
    func burst() {
        let p = tenPerSecond.parameters
        let now: UInt64 = 5_000_000
        var tat: UInt64 = 0
        for k in 1...10 {
            guard case .allow(let newTAT, let remaining, let reset, _) = p.evaluate(tat: tat, now: now) else {
                Issue.record("request \(k) refused")
                return
            }
            #expect(remaining == 10 - k)
            #expect(reset == UInt64(k) * 100_000)
            tat = newTAT
        }
        #expect(p.evaluate(tat: tat, now: now) == .refuse(retryAfterMicros: 100_000))
        // 40 ms later: 60 ms to go.
        #expect(p.evaluate(tat: tat, now: now + 40_000) == .refuse(retryAfterMicros: 60_000))
        // Exactly T later: one passes, with nothing left.
        guard case .allow(_, let remaining, let reset, _) = p.evaluate(tat: tat, now: now + 100_000) else {
            Issue.record("refused after retry-after")
            return
        }
        #expect(remaining == 0)
        #expect(reset == 1_000_000)
    }

    @Test("steady rate at exactly T always passes; slightly faster eventually refuses")
    func steady() {
        let p = tenPerSecond.parameters
        var tat: UInt64 = 0
        var now: UInt64 = 1_000_000
        for _ in 0..<1000 {
            guard case .allow(let newTAT, let remaining, _, _) = p.evaluate(tat: tat, now: now) else {
                Issue.record("steady request refused")
                return
            }
            #expect(remaining == 9)
            tat = newTAT
            now += 100_000
        }
        // 99 ms apart: each request eats 1 ms of tolerance; 1 s of tolerance lasts ~1000 requests.
        var passed = 0
        for _ in 0..<2000 {
            if case .allow(let newTAT, _, _, _) = p.evaluate(tat: tat, now: now) {
                tat = newTAT
                passed += 1
            }
            now += 99_000
        }
        #expect(passed < 2000)
    }

    @Test("idle key resets: a TAT in the past counts as now")
    func reset() {
        let p = tenPerSecond.parameters
        #expect(p.evaluate(tat: 10, now: 1_000_000) == p.evaluate(tat: 0, now: 1_000_000))
        guard case .allow(_, let remaining, _, _) = p.evaluate(tat: 500_000, now: 2_000_000) else {
            Issue.record("refused")
            return
        }
        #expect(remaining == 9)
    }

    @Test("burst smaller than limit")
    func smallBurst() {
        let limit = RateLimit(name: "s", limit: 10, periodMilliseconds: 1000, burst: 2)
        let p = limit.parameters
        var tat: UInt64 = 0
        let now: UInt64 = 100
        for expected in [1, 0] {
            guard case .allow(let newTAT, let remaining, _, _) = p.evaluate(tat: tat, now: now) else {
                Issue.record("refused")
                return
            }
            #expect(remaining == expected)
            tat = newTAT
        }
        #expect(p.evaluate(tat: tat, now: now) == .refuse(retryAfterMicros: 100_000))
    }

    @Test("with a delay, requests past the burst wait their turn (one T apart) until the delay is used up, then are refused")
    func delayQueues() {
        // 4 per second (T = 250 ms), burst 2 (τ = 500 ms), waits up to 1 s.
        let limit = RateLimit(name: "pace", limit: 4, periodMilliseconds: 1000, burst: 2, delayMilliseconds: 1000)
        let p = limit.parameters
        let now: UInt64 = 10_000_000
        var tat: UInt64 = 0
        var waits: [UInt64] = []
        for _ in 0..<6 {
            guard case .allow(let newTAT, _, _, let wait) = p.evaluate(tat: tat, now: now) else {
                Issue.record("refused within the delay")
                return
            }
            waits.append(wait)
            tat = newTAT
        }
        // Two at once (the burst), then each a T later, the last at exactly the 1 s delay.
        #expect(waits == [0, 0, 250_000, 500_000, 750_000, 1_000_000])
        // The seventh would wait 1.25 s: refused, and it would pass (queued) 250 ms later.
        #expect(p.evaluate(tat: tat, now: now) == .refuse(retryAfterMicros: 250_000))
        // A client that waits its turn is never refused: at T apart it conforms with no wait.
        guard case .allow(_, _, _, let wait) = p.evaluate(tat: tat, now: now + 1_250_000) else {
            Issue.record("refused at its turn")
            return
        }
        #expect(wait == 0)
    }

    @Test("a local table with a delay answers .delayed, charges the key, and refuses past the delay")
    func delayedVerdicts() {
        let limiter = LocalRateLimiter(limits: [RateLimit(name: "pace", limit: 10, periodMilliseconds: 1000, burst: 1, delayMilliseconds: 300)])
        var keys = RateKeys()
        keys.append(RateKey(limitIndex: 0, keyHash: 42))
        let now: UInt64 = 50_000_000
        #expect(limiter.check(keys, now: now) == .allowed(limitIndex: 0, remaining: 0, resetMicros: 100_000))
        #expect(limiter.check(keys, now: now) == .delayed(limitIndex: 0, waitMicros: 100_000))
        #expect(limiter.check(keys, now: now) == .delayed(limitIndex: 0, waitMicros: 200_000))
        #expect(limiter.check(keys, now: now) == .delayed(limitIndex: 0, waitMicros: 300_000))
        #expect(limiter.check(keys, now: now) == .limited(limitIndex: 0, retryAfterMicros: 100_000))
        // Another key is not affected.
        var other = RateKeys()
        other.append(RateKey(limitIndex: 0, keyHash: 43))
        #expect(limiter.check(other, now: now).isAllowed)
    }

    @Test("headers follow draft-ietf-httpapi-ratelimit-headers structured fields")
    func headers() {
        #expect(tenPerSecond.policyHeaderValue == "\"api\";q=10;w=1")
        let perMinute = RateLimit(name: "per-minute", limit: 600, periodMilliseconds: 60_000)
        #expect(perMinute.policyHeaderValue == "\"per-minute\";q=600;w=60")
        #expect(perMinute.headerValue(remaining: 5, resetMicros: 1_500_000) == "\"per-minute\";r=5;t=2")
        #expect(perMinute.headerValue(remaining: 0, resetMicros: 0) == "\"per-minute\";r=0;t=0")
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { perMinute.writeHeaderValue(remaining: 123, resetMicros: 60_000_000, into: $0) }
        #expect(String(decoding: buffer[0..<n], as: UTF8.self) == "\"per-minute\";r=123;t=60")
        var small = [UInt8](repeating: 0, count: 8)
        #expect(small.withUnsafeMutableBytes { perMinute.writeHeaderValue(remaining: 1, resetMicros: 1, into: $0) } == 0)
        // Names that could break the sf-string or a Redis key are cleaned.
        #expect(RateLimit(name: "a \"b\"\\c", limit: 1, periodMilliseconds: 1500).policyHeaderValue == "\"abc\";q=1;w=2")
        #expect(RateLimit(name: "", limit: 0, periodMilliseconds: 0).name == "default")
    }

    @Test("RateKeys holds four keys inline and refuses a fifth")
    func rateKeys() {
        var keys = RateKeys()
        for i in 0..<4 {
            let added = keys.append(limitIndex: UInt8(i), keyHash: UInt64(i + 100))
            #expect(added)
        }
        let fifth = keys.append(limitIndex: 9, keyHash: 9)
        #expect(!fifth)
        #expect(keys.count == 4)
        #expect(keys.map(\.keyHash) == [100, 101, 102, 103])
        #expect(RateKeys(RateKey(limitIndex: 1, keyHash: 2)).count == 1)
    }
}
