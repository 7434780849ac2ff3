import MarqueeGateway
import Testing

@testable import MarqueeEdge

@Suite("Edge freshness from response heads (RFC 9111, RFC 5861)")
struct ResponseFactsTests {
    static func facts(_ fields: String...) -> ResponseFacts {
        let head = "HTTP/1.1 200 OK\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\n"
        return Array(head.utf8).withUnsafeBytes { ResponseFacts(head: $0) }
    }

    static let now: Int64 = 1_800_000_000_000
    static let defaults = ResponseFacts.Defaults(ttlSeconds: 300, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 86_400)

    @Test("s-maxage, then max-age, then Expires − Date, then the default")
    func lifetimes() {
        #expect(Self.facts("Cache-Control: max-age=60, s-maxage=10").freshness(now: Self.now, defaults: Self.defaults).freshUntil == Self.now + 10_000)
        #expect(Self.facts("Cache-Control: max-age=60").freshness(now: Self.now, defaults: Self.defaults).freshUntil == Self.now + 60_000)
        let dated = Self.facts("Date: Tue, 01 Dec 2026 10:00:00 GMT", "Expires: Tue, 01 Dec 2026 10:00:30 GMT")
        #expect(dated.freshness(now: Self.now, defaults: Self.defaults).freshUntil == Self.now + 30_000)
        #expect(Self.facts("Expires: 0").freshness(now: Self.now, defaults: Self.defaults).freshUntil == Self.now, "an invalid Expires is already stale")
        #expect(Self.facts("ETag: \"x\"").freshness(now: Self.now, defaults: Self.defaults).freshUntil == Self.now + 300_000)
        #expect(Self.facts("Cache-Control: max-age=60", "Age: 45").freshness(now: Self.now, defaults: Self.defaults).freshUntil == Self.now + 15_000,
                "the time spent in a parent's cache counts")
        #expect(Self.facts("Cache-Control: max-age=60", "Age: 600").freshness(now: Self.now, defaults: Self.defaults).freshUntil == Self.now)
    }

    @Test("no-store, private and no-cache are stale at once and never served stale; must-revalidate allows no stale use")
    func strict() {
        for field in ["Cache-Control: no-store", "Cache-Control: private, max-age=600", "Cache-Control: no-cache, stale-if-error=60"] {
            let f = Self.facts(field).freshness(now: Self.now, defaults: Self.defaults)
            #expect(f.decide(now: Self.now) == .refresh, "\(field)")
            #expect(!f.mayServeOnError(now: Self.now), "\(field)")
        }
        let strict = Self.facts("Cache-Control: max-age=10, must-revalidate, stale-if-error=60").freshness(now: Self.now, defaults: Self.defaults)
        #expect(strict.decide(now: Self.now + 5_000) == .fresh)
        #expect(!strict.mayServeOnError(now: Self.now + 11_000))
    }

    @Test("the stale windows: the response's own first, else the edge's defaults; validators kept for a refresh")
    func staleWindows() {
        let f = Self.facts("Cache-Control: max-age=10, stale-while-revalidate=20, stale-if-error=30", "ETag: W/\"v1\"", "Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT")
            .freshness(now: Self.now, defaults: Self.defaults)
        #expect(f.decide(now: Self.now + 9_999) == .fresh)
        #expect(f.decide(now: Self.now + 10_000) == .serveAndRefresh)
        #expect(f.decide(now: Self.now + 30_000) == .refresh)
        #expect(f.mayServeOnError(now: Self.now + 39_999) && !f.mayServeOnError(now: Self.now + 40_000))
        #expect(f.etag == "W/\"v1\"" && f.lastModified == 1_796_119_200)
        let byDefault = Self.facts("Cache-Control: max-age=10").freshness(now: Self.now, defaults: Self.defaults)
        #expect(byDefault.mayServeOnError(now: Self.now + 10_000 + 86_399_000))
    }
}
