import Foundation
import MarqueeTestSupport
import Testing
@testable import MarqueePolicy
import MarqueeRedis

@Suite("RedisRateLimiter against a real redis-server", .serialized)
struct RedisRateLimiterTests {
    static let shared = RateLimit(name: "shared", limit: 10, periodMilliseconds: 60_000)

    func request(_ n: Int, key: UInt64, loop: UInt16 = 0) -> RedisRateRequest {
        RedisRateRequest(loop: loop, slot: Int32(n), generation: UInt16(n & 0xFFFF),
                         keys: RateKeys(RateKey(limitIndex: 0, keyHash: key)))
    }

    @Test("two gateways sharing a limit together allow exactly the burst")
    func twoGateways() throws {
        let server = try RedisServer()
        let answersA = AnswerCollector()
        let answersB = AnswerCollector()
        let a = RedisRateLimiter(endpoint: server.endpoint, limits: [Self.shared]) { answersA.append($0) }
        let b = RedisRateLimiter(endpoint: server.endpoint, limits: [Self.shared]) { answersB.append($0) }
        a.start()
        b.start()
        defer { a.stop(); b.stop() }
        #expect(waitUntil(timeout: .milliseconds(5000), interval: .milliseconds(5)) { a.isAvailable && b.isAvailable })

        let key: UInt64 = 0xDEAD_BEEF_0000_0001
        for n in 0..<15 {
            #expect(a.submit(request(n, key: key, loop: 1)))
            #expect(b.submit(request(n, key: key, loop: 2)))
        }
        #expect(waitUntil(timeout: .milliseconds(5000), interval: .milliseconds(5)) { answersA.count == 15 && answersB.count == 15 })
        let all = answersA.answers + answersB.answers
        var allowed = 0
        var limited = 0
        for answer in all {
            switch answer.result {
            case .verdict(.allowed(let index, let remaining, _)):
                #expect(index == 0 && remaining >= 0 && remaining < 10)
                allowed += 1
            case .verdict(.limited(let index, let retry)):
                #expect(index == 0)
                #expect(retry > 0 && retry <= 6_000_000)
                limited += 1
            case .verdict(.delayed):
                Issue.record("a limit without a delay queued a request")
            case .unavailable:
                Issue.record("unexpected .unavailable")
            }
        }
        #expect(allowed == 10)
        #expect(limited == 20)
        // Routing fields come back untouched, each request exactly once.
        #expect(Set(answersA.answers.map(\.slot)) == Set(0..<15))
        #expect(answersA.answers.allSatisfy { $0.loop == 1 && $0.generation == UInt16($0.slot) })
        #expect(Set(answersB.answers.map(\.slot)) == Set(0..<15))

        // The bucket lives under the documented name, with an expiry just past its TAT.
        let name = RedisRateScript.keyName(Self.shared, keyHash: key)
        #expect(name == "marquee:rl:shared:deadbeef00000001")
        let ttl = try server.command(["PTTL", name]).integerValue ?? -1
        #expect(ttl > 50_000 && ttl <= 60_001)
    }

    @Test("a shared limit with a delay queues requests past the burst one T apart, then refuses, like the local table")
    func delayQueues() throws {
        let server = try RedisServer()
        // 10 per second (T = 100 ms), burst 1, waits up to 300 ms.
        let pace = RateLimit(name: "pace", limit: 10, periodMilliseconds: 1000, burst: 1, delayMilliseconds: 300)
        let answers = AnswerCollector()
        let limiter = RedisRateLimiter(endpoint: server.endpoint, limits: [pace]) { answers.append($0) }
        limiter.start()
        defer { limiter.stop() }
        #expect(waitUntil(timeout: .milliseconds(5000), interval: .milliseconds(5)) { limiter.isAvailable })
        // Pipelined together, so Redis's clock barely moves between them.
        for n in 0..<5 { #expect(limiter.submit(request(n, key: 77))) }
        #expect(waitUntil(timeout: .milliseconds(5000), interval: .milliseconds(5)) { answers.count == 5 })
        let results = answers.answers.sorted { $0.slot < $1.slot }.map(\.result)
        guard case .verdict(.allowed) = results[0] else { Issue.record("first: \(results[0])"); return }
        for (k, result) in results[1...3].enumerated() {
            guard case .verdict(.delayed(0, let wait)) = result else { Issue.record("request \(k + 1): \(result)"); continue }
            // Each waits one T more than the one before (less the few ms Redis's clock moved).
            let expected = UInt64(k + 1) * 100_000
            #expect(wait <= expected && wait + 50_000 > expected, "request \(k + 1) waits \(wait) µs")
        }
        guard case .verdict(.limited(0, let retry)) = results[4] else { Issue.record("fifth: \(results[4])"); return }
        #expect(retry > 0 && retry <= 100_000)
    }

    @Test("multi-key requests are atomic in Redis too")
    func multiKey() throws {
        let server = try RedisServer()
        let strict = RateLimit(name: "strict", limit: 2, periodMilliseconds: 60_000)
        let answers = AnswerCollector()
        let limiter = RedisRateLimiter(endpoint: server.endpoint, limits: [Self.shared, strict]) { answers.append($0) }
        limiter.start()
        defer { limiter.stop() }
        #expect(waitUntil(timeout: .milliseconds(5000), interval: .milliseconds(5)) { limiter.isAvailable })
        var both = RateKeys()
        both.append(limitIndex: 0, keyHash: 1)
        both.append(limitIndex: 1, keyHash: 1)
        for n in 0..<5 {
            #expect(limiter.submit(RedisRateRequest(loop: 0, slot: Int32(n), generation: 0, keys: both)))
            #expect(waitUntil(timeout: .milliseconds(2000), interval: .milliseconds(5)) { answers.count == n + 1 })
        }
        let results = answers.answers.map(\.result)
        #expect(results[0] == .verdict(.allowed(limitIndex: 1, remaining: 1, resetMicros: 30_000_000)) || {
            if case .verdict(.allowed(1, 1, _)) = results[0] { return true } else { return false }
        }())
        for r in results[2...] {
            guard case .verdict(.limited(let index, _)) = r else { Issue.record("expected limited, got \(r)"); continue }
            #expect(index == 1)
        }
        // Only the two passing requests were charged to the wide key.
        #expect(limiter.submit(request(99, key: 1)))
        #expect(waitUntil(timeout: .milliseconds(2000), interval: .milliseconds(5)) { answers.count == 6 })
        guard case .verdict(.allowed(0, let remaining, _)) = answers.answers[5].result else {
            Issue.record("expected allowed, got \(answers.answers[5].result)")
            return
        }
        #expect(remaining == 7)
    }

    @Test("server gone: every submission is answered .unavailable promptly; recovery after restart; NOSCRIPT reload")
    func outage() throws {
        let server = try RedisServer()
        let answers = AnswerCollector()
        var configuration = RedisRateLimiter.Configuration()
        configuration.maxBackoffMilliseconds = 200
        let limiter = RedisRateLimiter(endpoint: server.endpoint, limits: [Self.shared], configuration: configuration) {
            answers.append($0)
        }
        limiter.start()
        defer { limiter.stop() }
        #expect(waitUntil(timeout: .milliseconds(5000), interval: .milliseconds(5)) { limiter.isAvailable })
        #expect(limiter.submit(request(0, key: 9)))
        #expect(waitUntil(timeout: .milliseconds(2000), interval: .milliseconds(5)) { answers.count == 1 })

        server.stop()
        let started = Date()
        for n in 1...50 { #expect(limiter.submit(request(n, key: 9))) }
        #expect(waitUntil(timeout: .milliseconds(1000), interval: .milliseconds(5)) { answers.count == 51 })
        let elapsed = Date().timeIntervalSince(started)
        #expect(answers.answers[1...].allSatisfy { $0.result == .unavailable })
        #expect(elapsed < 0.5, "answers took \(elapsed) s")
        #expect(waitUntil(timeout: .milliseconds(2000), interval: .milliseconds(5)) { !limiter.isAvailable })
        // Still prompt while down and backing off.
        for n in 51...60 { #expect(limiter.submit(request(n, key: 9))) }
        #expect(waitUntil(timeout: .milliseconds(500), interval: .milliseconds(5)) { answers.count == 61 })

        try server.restart()
        #expect(waitUntil(timeout: .milliseconds(5000), interval: .milliseconds(5)) { limiter.isAvailable })
        #expect(limiter.submit(request(100, key: 9)))
        #expect(waitUntil(timeout: .milliseconds(2000), interval: .milliseconds(5)) { answers.count == 62 })
        #expect(answers.answers[61].result != .unavailable)

        // A flushed script cache is reloaded transparently.
        _ = try server.command(["SCRIPT", "FLUSH"])
        #expect(limiter.submit(request(101, key: 9)))
        #expect(waitUntil(timeout: .milliseconds(2000), interval: .milliseconds(5)) { answers.count == 63 })
        #expect(answers.answers[62].result != .unavailable)
    }

    @Test("stop answers what is queued and refuses later submissions")
    func stopDrains() throws {
        let answers = AnswerCollector()
        // Nothing listens on this port: the limiter stays down.
        let endpoint = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: Int(try RedisServer.freePort())))
        let limiter = RedisRateLimiter(endpoint: endpoint, limits: [Self.shared]) { answers.append($0) }
        limiter.start()
        for n in 0..<100 { _ = limiter.submit(request(n, key: 1)) }
        limiter.stop()
        #expect(answers.count == 100)
        #expect(answers.answers.allSatisfy { $0.result == .unavailable })
        #expect(!limiter.submit(request(200, key: 1)))
        #expect(!limiter.isAvailable)
    }

    @Test("a full queue is reported, not waited on")
    func fullQueue() {
        var configuration = RedisRateLimiter.Configuration()
        configuration.queueCapacity = 8
        let limiter = RedisRateLimiter(endpoint: RedisEndpoint(address: .unix(path: "/nonexistent/redis.sock")),
                                       limits: [Self.shared], configuration: configuration) { _ in }
        // Not started: nothing drains.
        var accepted = 0
        for n in 0..<20 where limiter.submit(request(n, key: 1)) { accepted += 1 }
        #expect(accepted == 8)
    }
}
