import Testing

@testable import MarqueeGateway

/// The upstream link table and keep-alive pools, alone.
@Suite("Upstream links and keep-alive pools")
struct UpstreamLinksTests {
    static func upstreams() throws -> [ServiceUpstream] {
        [try ServiceUpstream(name: "auth", url: "http://127.0.0.1:8081"), try ServiceUpstream(name: "catalog", url: "http://127.0.0.1:8082")]
    }

    static func opened(_ links: inout UpstreamLinks, fd: Int32, upstream: Int) throws -> Int32 {
        let link = links.open(fd: fd, upstream: upstream)
        return try #require(link, "the table is full")
    }

    @Test("the table holds one active link per slot plus each upstream's pool; a full table opens nothing")
    func capacity() throws {
        var links = UpstreamLinks(upstreams: try Self.upstreams(), activeLinks: 3, idlePerUpstream: 2)
        defer { links.deallocate() }
        #expect(links.capacity == 3 + 2 * 2)
        var opened: [Int32] = []
        for fd in 0..<7 { opened.append(try Self.opened(&links, fd: Int32(100 + fd), upstream: fd % 2)) }
        #expect(Set(opened).count == 7)
        let overflow = links.open(fd: 200, upstream: 0)
        #expect(overflow == nil)
        let released = links.release(opened[0])
        let again = links.release(opened[0])
        #expect(released)
        #expect(!again, "a free entry is not freed twice")
        let reopened = links.open(fd: 201, upstream: 0)
        #expect(reopened == opened[0])
        #expect(links[Int(opened[0])].state == .connecting && links[Int(opened[0])].fd == 201)
    }

    @Test("the pool is LIFO per upstream, bounded, and a taken link is marked reused with a new generation")
    func pool() throws {
        var links = UpstreamLinks(upstreams: try Self.upstreams(), activeLinks: 4, idlePerUpstream: 2)
        defer { links.deallocate() }
        let a = try Self.opened(&links, fd: 10, upstream: 0)
        let b = try Self.opened(&links, fd: 11, upstream: 0)
        let c = try Self.opened(&links, fd: 12, upstream: 0)
        let d = try Self.opened(&links, fd: 13, upstream: 1)
        let pooled = [links.pool(a), links.pool(b), links.pool(c), links.pool(d)]
        #expect(pooled == [true, true, false, true], "the upstream's pool holds two")
        #expect(links.idleCount(0) == 2 && links.idleCount(1) == 1)
        let generation = links[Int(b)].generation
        let first = links.takeIdle(0)
        #expect(first == b, "the warmest first")
        #expect(links[Int(b)].reused && links[Int(b)].state == .active && links[Int(b)].generation != generation)
        let taken = [links.takeIdle(0), links.takeIdle(0), links.takeIdle(1)]
        #expect(taken == [a, -1, d])
    }

    @Test("an idle link the upstream closed leaves the middle of its pool")
    func removeIdle() throws {
        var links = UpstreamLinks(upstreams: try Self.upstreams(), activeLinks: 4, idlePerUpstream: 3)
        defer { links.deallocate() }
        let a = try Self.opened(&links, fd: 10, upstream: 0)
        let b = try Self.opened(&links, fd: 11, upstream: 0)
        let c = try Self.opened(&links, fd: 12, upstream: 0)
        let pooled = [links.pool(a), links.pool(b), links.pool(c)]
        #expect(pooled == [true, true, true])
        links.removeIdle(b)
        links.removeIdle(b)
        #expect(links.idleCount(0) == 2)
        let taken = [links.takeIdle(0), links.takeIdle(0), links.takeIdle(0)]
        #expect(taken == [c, a, -1])
    }
}
