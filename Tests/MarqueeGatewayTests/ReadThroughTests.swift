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

    @Test("Once the body streams, the waiters so far are handed over and later misses stream at once without waiting")
    func streaming() {
        var table = FetchTable(queueLimit: 8, negativeMilliseconds: 2000)
        #expect(table.request("a", waiter(1), now: 0) == .queued)
        #expect(table.request("a", waiter(2), now: 0) == .joined)
        #expect(table.start() == "a")
        #expect(table.beginStreaming("a").map(\.slot) == [1, 2])
        #expect(table.request("a", waiter(3), now: 1) == .streaming)
        #expect(table.beginStreaming("b").isEmpty, "no fetch of b")
        #expect(table.finish("a", .stored, now: 2).isEmpty, "every waiter was answered when the body began")
        #expect(table.request("a", waiter(4), now: 3) == .queued)
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

    @Test("A loop that fills claims the first miss itself: nothing is queued for a fetch thread, joiners wait for it, and the bound is on fetches pending")
    func claimed() {
        var table = FetchTable(queueLimit: 2, negativeMilliseconds: 0)
        #expect(table.request("a", waiter(1), now: 0, claim: true) == .claimed)
        #expect(table.request("a", waiter(2), now: 0, claim: true) == .joined)
        #expect(table.start() == nil, "nothing is queued for a fetch thread")
        let refresh = table.requestRefresh("b", claim: true)
        let again = table.requestRefresh("b", claim: true)
        #expect(refresh && !again, "b is pending after the first")
        #expect(table.request("c", waiter(3), now: 0, claim: true) == .busy)
        let answered = table.finish("a", .stored, now: 1)
        #expect(answered.map(\.slot) == [1, 2])
        #expect(table.request("c", waiter(3), now: 1, claim: true) == .claimed)
    }

    @Test("Keys are fetched in the order they missed")
    func order() {
        var table = FetchTable(queueLimit: 16, negativeMilliseconds: 0)
        for key in ["c", "a", "b"] { _ = table.request(key, waiter(1), now: 0) }
        #expect([table.start(), table.start(), table.start(), table.start()] == ["c", "a", "b", nil])
    }
}

@Suite("Read-through cache: S3-FIFO index")
struct CacheIndexTests {
    @Test("New objects enter the small FIFO; used again they move to main, unused they leave first; the object just fetched is spared")
    func admission() {
        var index = CacheIndex(maxBytes: 100)  // small FIFO: 10 bytes
        index.insert("a", hash: 1, size: 40)
        index.insert("b", hash: 2, size: 40)
        #expect(index.evictions().isEmpty && index.totalBytes == 80)
        #expect(index.queue(of: "a") == .small && index.queue(of: "b") == .small)
        index.touch(hash: 1)  // a is used again
        index.insert("c", hash: 3, size: 40)
        #expect(index.evictions(keeping: "c") == ["b"], "a moves to main, b (unused) leaves")
        #expect(index.queue(of: "a") == .main && index.keys(in: .small) == ["c"] && index.totalBytes == 80)
        index.insert("huge", hash: 4, size: 500)
        #expect(Set(index.evictions(keeping: "huge")) == ["a", "c"], "everything else goes; the new object stays")
        #expect(index.count == 1 && index.totalBytes == 500)
        index.insert("d", hash: 5, size: 10)
        #expect(index.evictions(keeping: "d") == ["huge"])
        #expect(index.totalBytes == 10 && index.count == 1)
    }

    @Test("An object that left the small FIFO and comes back soon goes to main; used objects in main get a second chance per use")
    func ghostsAndSecondChances() {
        var index = CacheIndex(maxBytes: 100)
        index.insert("once", hash: 1, size: 60)
        index.insert("other", hash: 2, size: 60)
        #expect(index.evictions(keeping: "other") == ["once"])
        index.insert("once", hash: 1, size: 60)  // back: its hash is a ghost
        #expect(index.queue(of: "once") == .main)
        #expect(index.evictions(keeping: "once") == ["other"])
        // Main: "once" used twice survives two passes of the FIFO hand.
        index.touch("once")
        index.touch("once")
        index.insert("x", hash: 3, size: 30)
        index.insert("y", hash: 4, size: 30)  // 120 bytes: one must go, and small holds 60 > 10
        #expect(index.evictions(keeping: "y") == ["x"])
        #expect(index.contains("once"))
        index.restore("r", hash: 5, size: 30)  // main, unused: goes before "once" (used)
        #expect(index.evictions(keeping: "y") == ["r"])
        #expect(index.contains("once"))
    }

    @Test("Replacing and removing keep the byte totals right; unknown hashes change nothing")
    func accounting() {
        var index = CacheIndex(maxBytes: 1000)
        index.insert("a", hash: 1, size: 10)
        index.insert("a", hash: 1, size: 30)
        #expect(index.totalBytes == 30 && index.count == 1)
        #expect(index.remove("a") == 30)
        #expect(index.remove("a") == nil)
        #expect(index.totalBytes == 0 && index.keys(in: .small).isEmpty)
        for i in 0..<50 { index.insert("k\(i)", hash: UInt64(i), size: 1) }
        for i in stride(from: 0, to: 50, by: 2) { index.remove("k\(i)") }
        #expect(index.keys(in: .small).first == "k1" && index.keys(in: .small).last == "k49" && index.totalBytes == 25)
        index.touch(hash: 999)
        #expect(index.count == 25)
    }

    @Test("A scan of objects read once does not flush the hot set (an LRU of the same size keeps none of it)")
    func scanResistance() {
        var index = CacheIndex(maxBytes: 1_000)
        var lru = NaiveLRU(maxBytes: 1_000)
        let hot = (0..<40).map { "hot/\($0)" }
        // The hot set is requested over and over: fetched once, then used.
        for round in 0..<5 {
            for (i, key) in hot.enumerated() {
                if index.contains(key) { index.touch(key) } else {
                    index.insert(key, hash: UInt64(i), size: 20)
                    _ = index.evictions(keeping: key)
                }
                lru.use(key, size: 20)
            }
            if round == 0 { #expect(index.totalBytes == 800) }
        }
        // A bulk download: 2,000 objects, each fetched once.
        for i in 0..<2_000 {
            let key = "scan/\(i)"
            index.insert(key, hash: UInt64(10_000 + i), size: 20)
            _ = index.evictions(keeping: key)
            lru.use(key, size: 20)
        }
        let kept = hot.filter(index.contains).count
        #expect(kept == hot.count, "S3-FIFO kept \(kept) of \(hot.count)")
        #expect(hot.filter(lru.contains).isEmpty)
        #expect(index.totalBytes <= 1_000)
    }

    @Test("Random operations: the bound holds, the totals match what is indexed, and evicted keys are gone")
    func randomOperations() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let maxBytes = Int64.random(in: 1...500, using: &generator)
            var index = CacheIndex(maxBytes: maxBytes)
            var model: [String: Int64] = [:]
            for _ in 0..<400 {
                let key = "k\(Int.random(in: 0..<60, using: &generator))"
                let hash = UInt64(key.dropFirst())!
                switch Int.random(in: 0..<10, using: &generator) {
                case 0..<5:
                    let size = Int64.random(in: 0...80, using: &generator)
                    index.insert(key, hash: hash, size: size)
                    model[key] = size
                    for victim in index.evictions(keeping: key) {
                        #expect(victim != key && model.removeValue(forKey: victim) != nil)
                    }
                    #expect(index.totalBytes <= maxBytes || (index.count == 1 && index.contains(key)))
                case 5..<8:
                    index.touch(hash: hash)
                case 8:
                    #expect(index.remove(key) == model.removeValue(forKey: key))
                default:
                    for victim in index.evictions() { #expect(model.removeValue(forKey: victim) != nil) }
                }
                #expect(index.count == model.count)
                #expect(index.totalBytes == model.values.reduce(0, +))
                #expect(Set(index.keys(in: .small) + index.keys(in: .main)) == Set(model.keys))
            }
        }
    }
}

/// Least recently used, the plain way, for comparison.
struct NaiveLRU {
    let maxBytes: Int64
    var order: [(key: String, size: Int64)] = []

    init(maxBytes: Int64) { self.maxBytes = maxBytes }

    func contains(_ key: String) -> Bool { order.contains { $0.key == key } }

    mutating func use(_ key: String, size: Int64) {
        order.removeAll { $0.key == key }
        order.append((key, size))
        while order.reduce(0, { $0 + $1.size }) > maxBytes { order.removeFirst() }
    }
}
