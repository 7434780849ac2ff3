import Testing

@testable import MarqueeGateway

@Suite("Purge feed messages and log positions")
struct PurgeFeedTests {
    @Test("Channel messages carry the log id; a message without one (an earlier gateway) still applies; anything else is ignored")
    func messages() {
        let (id, request) = PurgeFeed.parse("1733450000000-3 prefix titles/a/")
        #expect(id == "1733450000000-3" && request == .prefix("titles/a/"))
        #expect(PurgeFeed.parse("path titles/a/1/seg.m4s") == (nil, .path("titles/a/1/seg.m4s")))
        #expect(PurgeFeed.parse("1-0 path a b") == ("1-0", .path("a b")), "keys may hold spaces")
        for hostile in ["", " ", "nonsense", "1-0", "1-0 ", "1-0 delete x", "x-y path a", "1-2-3 path a", "-1 path a"] {
            #expect(PurgeFeed.parse(hostile).request == nil, "\(hostile)")
        }
        #expect(PurgeFeed.text(of: .prefix("titles/a/")) == "prefix titles/a/")
    }

    @Test("Log ids order by time, then sequence")
    func order() {
        #expect(PurgeFeed.isAfter("2-0", "1-9"))
        #expect(PurgeFeed.isAfter("1-10", "1-9"))
        #expect(!PurgeFeed.isAfter("1-9", "1-9"))
        #expect(!PurgeFeed.isAfter("1-8", "1-9"))
        #expect(!PurgeFeed.isAfter("garbage", "1-9") && !PurgeFeed.isAfter("1-9", "garbage"))
    }
}
