import Testing

@testable import MarqueeEdge

@Suite("Upstream selection: rendezvous hashing and failover")
struct UpstreamSelectionTests {
    static let names = ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:8080"]

    @Test("every key gets every upstream once; objects spread over the upstreams about evenly")
    func spread() {
        let selection = UpstreamSelection(names: Self.names, downMilliseconds: 1000)
        var first = [Int](repeating: 0, count: Self.names.count)
        for n in 0..<8000 {
            let order = selection.order(for: "titles/t\(n % 97)/v1/720p/segment-\(n).m4s", now: 0)
            #expect(order.sorted() == Array(Self.names.indices))
            first[order[0]] += 1
        }
        // 2,000 each on average; a fair hash stays well within ±15%.
        for count in first { #expect((1700...2300).contains(count), "first choices per upstream: \(first)") }
    }

    @Test("the order is the same on every edge, and removing an upstream moves only its own objects")
    func stableAcrossEdges() {
        let a = UpstreamSelection(names: Self.names, downMilliseconds: 1000)
        let b = UpstreamSelection(names: Self.names, downMilliseconds: 1000)
        let fewer = UpstreamSelection(names: Array(Self.names.dropLast()), downMilliseconds: 1000)
        var moved = 0
        for n in 0..<2000 {
            let key = "titles/x/v/seg-\(n).ts"
            #expect(a.order(for: key, now: 0) == b.order(for: key, now: 0))
            let before = Self.names[a.order(for: key, now: 0)[0]]
            let after = Self.names[fewer.order(for: key, now: 0)[0]]
            if before != after {
                moved += 1
                #expect(before == Self.names.last, "\(key) moved from \(before), which is still there")
            }
        }
        #expect(moved > 300 && moved < 700, "about a quarter of the objects lived on the removed upstream: \(moved)")
    }

    @Test("an upstream that failed goes last until its down time passes, then comes back to its place")
    func failover() {
        var selection = UpstreamSelection(names: Self.names, downMilliseconds: 5000)
        let key = "titles/a/v1/master.m3u8"
        let usual = selection.order(for: key, now: 1000)
        selection.failed(usual[0], now: 1000)
        let during = selection.order(for: key, now: 2000)
        #expect(during.last == usual[0])
        #expect(Array(during.dropLast()) == Array(usual.dropFirst()))
        #expect(selection.order(for: key, now: 6001) == usual)
        selection.failed(usual[0], now: 7000)
        selection.succeeded(usual[0])
        #expect(selection.order(for: key, now: 7001) == usual)
    }

    @Test("with every upstream down, all are still tried, in the usual order")
    func allDown() {
        var selection = UpstreamSelection(names: Self.names, downMilliseconds: 5000)
        let key = "k"
        let usual = selection.order(for: key, now: 0)
        for i in Self.names.indices { selection.failed(i, now: 10) }
        #expect(selection.order(for: key, now: 20) == usual)
    }
}
