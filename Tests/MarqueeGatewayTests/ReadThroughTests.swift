import Testing

@testable import MarqueeGateway

@Suite("Read-through cache: coalescing table")
struct FetchTableTests {
    func waiter(_ slot: Int32, loop: UInt16 = 0) -> FetchWaiter { FetchWaiter(loop: loop, slot: slot, generation: 7) }

    @Test("Concurrent misses for one key make one fetch whose outcome answers every waiter")
    func coalesces() {
        var table = FetchTable(queueLimit: 8, negativeMilliseconds: 2000)
        #expect(table.request("a", waiter(1), now: 0) == .queued)
        for slot in 2...24 { #expect(table.request("a", waiter(Int32(slot), loop: UInt16(slot % 2)), now: 0) == .joined) }
        #expect(table.start() == "a")
        #expect(table.start() == nil, "one fetch for the key, however many waiters")
        // Still running: a new miss joins it rather than starting another.
        #expect(table.request("a", waiter(25), now: 1) == .joined)
        let answered = table.finish("a", .stored, now: 5)
        #expect(answered.map(\.slot) == Array(1...25).map(Int32.init))
        #expect(!table.isPending("a"))
        // After it finished, a miss (the file was evicted) fetches again.
        #expect(table.request("a", waiter(1), now: 6) == .queued)
    }

    @Test("Beyond the queue bound a new key is refused as busy; joining an existing one still works")
    func boundedQueue() {
        var table = FetchTable(queueLimit: 2, negativeMilliseconds: 0)
        #expect(table.request("a", waiter(1), now: 0) == .queued)
        #expect(table.request("b", waiter(2), now: 0) == .queued)
        #expect(table.request("c", waiter(3), now: 0) == .busy)
        #expect(table.request("a", waiter(4), now: 0) == .joined)
        #expect(table.start() == "a")
        #expect(table.request("c", waiter(3), now: 0) == .queued, "a running fetch leaves the queue")
        #expect(table.queuedCount == 2 && table.pendingCount == 3)
    }

    @Test("A 404 is remembered for the negative interval, then asked again")
    func negative() {
        var table = FetchTable(queueLimit: 4, negativeMilliseconds: 2000)
        #expect(table.request("gone", waiter(1), now: 100) == .queued)
        _ = table.start()
        #expect(table.finish("gone", .notFound, now: 150).count == 1)
        #expect(table.request("gone", waiter(2), now: 151) == .notFound)
        #expect(table.request("gone", waiter(2), now: 2149) == .notFound)
        #expect(table.request("gone", waiter(2), now: 2150) == .queued)
        _ = table.start()
        _ = table.finish("gone", .failed, now: 2200)
        #expect(table.request("gone", waiter(3), now: 2201) == .queued, "errors are not remembered")
    }

    @Test("Keys are fetched in the order they missed")
    func order() {
        var table = FetchTable(queueLimit: 16, negativeMilliseconds: 0)
        for key in ["c", "a", "b"] { _ = table.request(key, waiter(1), now: 0) }
        #expect([table.start(), table.start(), table.start(), table.start()] == ["c", "a", "b", nil])
    }
}

@Suite("Read-through cache: LRU index")
struct CacheIndexTests {
    @Test("Evicts least recently used first until within the bound, sparing the file just fetched")
    func evictsOldest() {
        var index = CacheIndex(maxBytes: 100)
        index.insert("a", hash: 1, size: 40)
        index.insert("b", hash: 2, size: 40)
        #expect(index.evictions().isEmpty && index.totalBytes == 80)
        index.touch(hash: 1)  // a is now newer than b
        index.insert("c", hash: 3, size: 40)
        #expect(index.evictions(keeping: "c") == ["b"])
        #expect(index.totalBytes == 80 && index.keysByAge == ["a", "c"])
        index.insert("huge", hash: 4, size: 500)
        #expect(Set(index.evictions(keeping: "huge")) == ["a", "c"], "everything else goes; the new file stays")
        #expect(index.keysByAge == ["huge"] && index.totalBytes == 500)
        index.insert("d", hash: 5, size: 10)
        #expect(index.evictions(keeping: "d") == ["huge"])
        #expect(index.totalBytes == 10 && index.count == 1)
    }

    @Test("Replacing and removing keep the byte total right; freed nodes are reused")
    func accounting() {
        var index = CacheIndex(maxBytes: 1000)
        index.insert("a", hash: 1, size: 10)
        index.insert("a", hash: 1, size: 30)
        #expect(index.totalBytes == 30 && index.count == 1)
        #expect(index.remove("a") == 30)
        #expect(index.remove("a") == nil)
        #expect(index.totalBytes == 0 && index.keysByAge.isEmpty)
        for i in 0..<50 { index.insert("k\(i)", hash: UInt64(i), size: 1) }
        for i in stride(from: 0, to: 50, by: 2) { index.remove("k\(i)") }
        index.touch("k1")
        #expect(index.keysByAge.first == "k3" && index.keysByAge.last == "k1" && index.totalBytes == 25)
        index.touch(hash: 999)  // unknown: no effect
        #expect(index.count == 25)
    }
}
