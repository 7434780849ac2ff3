import Foundation
import MarqueeTestSupport
import Testing
@testable import MarqueePolicy
import MarqueeRedis

@Suite("RedisRevocationFeed against a real redis-server", .serialized)
struct RevocationFeedTests {
    var now: Int64 { Int64(Date().timeIntervalSince1970) }

    @Test("a revocation published by one process is obeyed by another within a second")
    func publishAndObey() throws {
        let server = try RedisServer()
        let list = RevocationList()
        let feed = RedisRevocationFeed(endpoint: server.endpoint, list: list)
        feed.start()
        defer { feed.stop() }
        #expect(waitUntil(timeout: .milliseconds(5000), interval: .milliseconds(5)) { feed.isSubscribed })

        let started = Date()
        try RedisRevocationFeed.publish("abc123", reason: .funds, expiresAt: now + 3600, endpoint: server.endpoint)
        #expect(waitUntil(timeout: .milliseconds(1000), interval: .milliseconds(5)) { list.isRevoked("abc123", nowSeconds: now) == .funds })
        #expect(Date().timeIntervalSince(started) < 1)

        // A new reason replaces the old one, in Redis and in the list.
        try RedisRevocationFeed.publish("abc123", reason: .other, expiresAt: now + 3600, endpoint: server.endpoint)
        #expect(waitUntil(timeout: .milliseconds(1000), interval: .milliseconds(5)) { list.isRevoked("abc123", nowSeconds: now) == .other })
        let members = try server.command(["ZRANGE", RedisRevocationFeed.sortedSet, "0", "-1"])
        #expect(members == .array([.string(Array("other abc123".utf8))]))

        // Garbage on the channel is ignored and counted.
        _ = try server.command(["PUBLISH", RedisRevocationFeed.channel, "banned 12 x"])
        _ = try server.command(["PUBLISH", RedisRevocationFeed.channel, "funds soon x"])
        _ = try server.command(["PUBLISH", RedisRevocationFeed.channel, "funds 99999999999 bad/id"])
        #expect(waitUntil(timeout: .milliseconds(1000), interval: .milliseconds(5)) { feed.rejectedCount == 3 })
        #expect(throws: RedisRevocationFeed.PublishError.invalidSession) {
            try RedisRevocationFeed.publish("no spaces", reason: .funds, expiresAt: now + 10, endpoint: server.endpoint)
        }
    }

    @Test("startup loads earlier revocations and drops expired ones; expiry lifts a revocation")
    func startupAndExpiry() throws {
        let server = try RedisServer()
        try RedisRevocationFeed.publish("early-1", reason: .other, expiresAt: now + 3600, endpoint: server.endpoint)
        try RedisRevocationFeed.publish("short-2", reason: .funds, expiresAt: now + 2, endpoint: server.endpoint)
        try RedisRevocationFeed.publish("gone-3", reason: .funds, expiresAt: now - 10, endpoint: server.endpoint)

        let list = RevocationList()
        let feed = RedisRevocationFeed(endpoint: server.endpoint, list: list)
        feed.start()
        defer { feed.stop() }
        #expect(waitUntil(timeout: .milliseconds(5000), interval: .milliseconds(5)) { feed.isSubscribed })
        #expect(list.isRevoked("early-1", nowSeconds: now) == .other)
        #expect(list.isRevoked("short-2", nowSeconds: now) == .funds)
        #expect(list.isRevoked("gone-3", nowSeconds: now) == nil)
        // The expired member was removed from Redis by the load.
        #expect(try server.command(["ZSCORE", RedisRevocationFeed.sortedSet, "funds gone-3"]) == .null)
        // Expiry: three seconds on, the short revocation no longer counts.
        #expect(list.isRevoked("short-2", nowSeconds: now + 3) == nil)
        #expect(list.isRevoked("early-1", nowSeconds: now + 3) == .other)
    }

    @Test("Redis down: nothing crashes, the list keeps working, the feed resubscribes")
    func outage() throws {
        let server = try RedisServer()
        let list = RevocationList()
        var configuration = RedisRevocationFeed.Configuration()
        configuration.maxBackoffMilliseconds = 300
        let feed = RedisRevocationFeed(endpoint: server.endpoint, list: list, configuration: configuration)
        feed.start()
        defer { feed.stop() }
        #expect(waitUntil(timeout: .milliseconds(5000), interval: .milliseconds(5)) { feed.isSubscribed })
        try RedisRevocationFeed.publish("before", reason: .funds, expiresAt: now + 3600, endpoint: server.endpoint)
        #expect(waitUntil(timeout: .milliseconds(1000), interval: .milliseconds(5)) { list.isRevoked("before", nowSeconds: now) == .funds })

        server.stop()
        #expect(waitUntil(timeout: .milliseconds(2000), interval: .milliseconds(5)) { !feed.isSubscribed })
        #expect(list.isRevoked("before", nowSeconds: now) == .funds)
        #expect(list.revoke("local-only", reason: .other, expiresAt: now + 60))
        #expect(throws: RedisRevocationFeed.PublishError.self) {
            try RedisRevocationFeed.publish("x", reason: .funds, expiresAt: now + 10, endpoint: server.endpoint, timeoutMilliseconds: 200)
        }

        try server.restart()
        #expect(waitUntil(timeout: .milliseconds(5000), interval: .milliseconds(5)) { feed.isSubscribed })
        #expect(feed.connectCount >= 2)
        try RedisRevocationFeed.publish("after", reason: .other, expiresAt: now + 3600, endpoint: server.endpoint)
        #expect(waitUntil(timeout: .milliseconds(1000), interval: .milliseconds(5)) { list.isRevoked("after", nowSeconds: now) == .other })
        #expect(list.isRevoked("local-only", nowSeconds: now) == .other)
    }
}
