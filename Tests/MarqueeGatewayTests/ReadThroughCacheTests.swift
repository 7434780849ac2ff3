import Foundation
import Glibc
import Synchronization
import MarqueeHTTP
import MarqueeTestSupport
import Testing

@testable import MarqueeGateway

/// A store in memory that counts its GETs.
private final class MemorySource: ReadThroughSource {
    let objects: [String: [UInt8]]
    let gets = Mutex<[String]>([])

    init(_ objects: [String: [UInt8]]) { self.objects = objects }

    func download(_ key: String, toFile path: String, timeoutMilliseconds: Int64, revalidating: ObjectFreshness?, fill: ObjectFill?) -> ReadThroughDownload {
        gets.withLock { $0.append(key) }
        guard let bytes = objects[key] else { return .notFound }
        return FileManager.default.createFile(atPath: path, contents: Data(bytes)) ? .stored : .failed("cannot write \(path)")
    }
}

/// A source that streams one body: the first part, then (once `gate` opens) the rest or a failure.
private final class StreamingSource: ReadThroughSource, @unchecked Sendable {
    let body: [UInt8]
    let firstPart: Int
    let fails: Bool
    let gate = DispatchSemaphore(value: 0)
    let gets = Mutex(0)

    init(body: [UInt8], firstPart: Int, fails: Bool) {
        self.body = body
        self.firstPart = firstPart
        self.fails = fails
    }

    func download(_ key: String, toFile path: String, timeoutMilliseconds: Int64, revalidating: ObjectFreshness?, fill: ObjectFill?) -> ReadThroughDownload {
        let attempt = gets.withLock { $0 += 1; return $0 }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return .failed("cannot create \(path)") }
        defer { close(fd) }
        _ = fill?.begin(length: Int64(body.count), modifiedSeconds: 1_700_000_000)
        _ = body.withUnsafeBytes { write(fd, $0.baseAddress!, firstPart) }
        fill?.advance(to: Int64(firstPart))
        // Only the first fetch waits at the gate (a later one is the refetch after a failure).
        if attempt == 1 { gate.wait() }
        if fails && attempt == 1 {
            unlink(path)
            return .failed("the upstream went away")
        }
        _ = body.withUnsafeBytes { write(fd, $0.baseAddress! + firstPart, body.count - firstPart) }
        fill?.advance(to: Int64(body.count))
        var times = [timespec(tv_sec: 1_700_000_000, tv_nsec: 0), timespec(tv_sec: 1_700_000_000, tv_nsec: 0)]
        futimens(fd, &times)
        return .stored
    }
}

/// A cache over a `MemorySource` in a scratch folder, waking one "loop" through a pipe (as it
/// would write an eventfd: 8 bytes).
private struct Harness {
    let folder: URL
    let source: MemorySource
    let cache: ReadThroughCache
    let wake: Int32

    init(folder: URL? = nil, objects: [String: [UInt8]], maxBytes: Int64 = 1 << 20) throws {
        self.folder = folder ?? FileManager.default.temporaryDirectory.appendingPathComponent("read-through-\(UUID().uuidString)")
        source = MemorySource(objects)
        cache = try ReadThroughCache(ReadThroughSettings(source: source, directory: self.folder.path, maxBytes: maxBytes))
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw CocoaError(.fileWriteUnknown) }
        wake = fds[0]
        cache.start(wakeFDs: [fds[1]])
    }

    /// Misses `key` as slot 1 and waits for the fetch's answer.
    func fetch(_ key: String) -> FetchOutcome? {
        var key = key
        let admission = key.withUTF8 { cache.request(UnsafeRawBufferPointer($0), waiter: FetchWaiter(loop: 0, slot: 1, generation: 1)) }
        switch admission {
        case .notFound: return .notFound
        case .busy: return .busy
        case .streaming: return .streaming
        case .fetches: return nil  // a store's cache never hands a fetch to a loop
        case .waits: break
        }
        var value: UInt64 = 0
        guard read(wake, &value, 8) == 8 else { return nil }
        var answers: [FetchAnswer] = []
        cache.takeAnswers(loop: 0, into: &answers)
        return answers.first?.outcome
    }

    func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: folder.appendingPathComponent(relative).path) }
}

@Suite("Read-through cache: files on disk")
struct ReadThroughCacheTests {
    @Test("Keys that could leave the cache folder are refused")
    func keys() {
        func valid(_ text: String) -> Bool {
            var text = text
            return text.withUTF8 { ReadThroughCache.isValidKey(UnsafeRawBufferPointer($0)) }
        }
        #expect(valid("titles/a/v1/master.m3u8"))
        #expect(valid("a..b/.hidden/x"))
        for bad in ["", "../x", "a/../b", "a/./b", "a//b", "/a", "a/", "a\\b", "a\u{01}b", ".", ".."] {
            #expect(!valid(bad), "\(bad.debugDescription)")
        }
    }

    @Test("A fetched object lands under objects/ with its folders; a 404 is answered without a file; nothing stays in tmp/")
    func places() throws {
        let h = try Harness(objects: ["titles/a/1/seg.m4s": [1, 2, 3]])
        #expect(h.fetch("titles/a/1/seg.m4s") == .stored)
        #expect(try Data(contentsOf: h.folder.appendingPathComponent("objects/titles/a/1/seg.m4s")) == Data([1, 2, 3]))
        #expect(h.fetch("titles/a/1/none.m4s") == .notFound)
        #expect(h.fetch("titles/a/1/none.m4s") == .notFound)
        #expect(h.source.gets.withLock { $0 } == ["titles/a/1/seg.m4s", "titles/a/1/none.m4s"], "the second 404 was remembered")
        #expect(try FileManager.default.contentsOfDirectory(atPath: h.folder.appendingPathComponent("tmp").path).isEmpty)
        #expect(h.cache.read(.bytes) == 3 && h.cache.read(.files) == 1 && h.cache.read(.notFound) == 1)
    }

    @Test("A symlink planted in the cache cannot lead a write outside it, and the refusal reaches the gateway's log as a warning")
    func symlinkedFolder() throws {
        let logged = Mutex<[(GatewayLog.Level, String)]>([])
        GatewayLog.route { level, message in logged.withLock { $0.append((level, message)) } }
        defer { GatewayLog.route(to: GatewayLog.standardError) }
        let h = try Harness(objects: ["evil/x.bin": [9], "evil2/x.bin": [9]])
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("outside-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: h.folder.appendingPathComponent("objects/evil").path, withDestinationPath: outside.path)
        #expect(h.fetch("evil/x.bin") == .failed)
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty)
        #expect(h.fetch("evil2/x.bin") == .stored, "an ordinary folder still works")
        #expect(logged.withLock { $0.contains { $0.0 == .warning && $0.1.hasPrefix("cannot place evil/x.bin in the cache") } })
    }

    @Test("A restart empties tmp/, re-indexes the cached files and evicts beyond a smaller bound, oldest first")
    func restart() throws {
        let objects = ["a": [UInt8](repeating: 1, count: 100), "b": [UInt8](repeating: 2, count: 100), "c": [UInt8](repeating: 3, count: 100)]
        let first = try Harness(objects: objects)
        for key in ["a", "b", "c"] {
            #expect(first.fetch(key) == .stored)
            // Distinct last-use times for the restart's order (seconds resolution).
            let path = first.folder.appendingPathComponent("objects/\(key)").path
            var times = [timespec(tv_sec: 1_000_000 + (key == "a" ? 0 : key == "b" ? 10 : 20), tv_nsec: 0), timespec()]
            times[1] = times[0]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        }
        FileManager.default.createFile(atPath: first.folder.appendingPathComponent("tmp/leftover").path, contents: Data([0]))
        let second = try Harness(folder: first.folder, objects: objects, maxBytes: 250)
        #expect(second.cache.read(.files) == 2 && second.cache.read(.bytes) == 200 && second.cache.read(.evictions) == 1)
        #expect(!second.exists("objects/a") && second.exists("objects/b") && second.exists("objects/c"))
        #expect(!second.exists("tmp/leftover"))
        #expect(second.fetch("a") == .stored)
        #expect(!second.exists("objects/b"), "b was now the least recently used")
        #expect(second.source.gets.withLock { $0 } == ["a"])
    }

    /// A cache over `source` in a scratch folder, with the pipe its one loop is woken through.
    fileprivate static func streamingCache(_ source: StreamingSource) throws -> (ReadThroughCache, wake: Int32, folder: URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("read-through-\(UUID().uuidString)")
        let cache = try ReadThroughCache(ReadThroughSettings(source: source, directory: folder.path, maxBytes: 1 << 24))
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw CocoaError(.fileWriteUnknown) }
        cache.start(wakeFDs: [fds[1]])
        return (cache, fds[0], folder)
    }

    static func request(_ cache: ReadThroughCache, _ key: String, slot: Int32) -> MissAdmission {
        var key = key
        return key.withUTF8 { cache.request(UnsafeRawBufferPointer($0), waiter: FetchWaiter(loop: 0, slot: slot, generation: 1)) }
    }

    static func contents(_ fill: ObjectFill, _ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { pread(fill.fd, $0.baseAddress!, count, 0) }
        return Array(bytes.prefix(max(0, n)))
    }

    @Test("A streaming fill answers its waiters as soon as the body starts, lets later misses read what arrived, and places the file once whole")
    func streamingFill() throws {
        let body = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let source = StreamingSource(body: body, firstPart: 100_000, fails: false)
        let (cache, wake, folder) = try Self.streamingCache(source)
        guard case .waits(coalesced: false) = Self.request(cache, "titles/a/1/seg.m4s", slot: 1) else {
            Issue.record("the first miss should wait for a fetch")
            return
        }
        var value: UInt64 = 0
        #expect(read(wake, &value, 8) == 8)
        var answers: [FetchAnswer] = []
        cache.takeAnswers(loop: 0, into: &answers)
        #expect(answers.map(\.outcome) == [.streaming])
        let fill = try #require(answers.first?.fill)
        #expect(fill.length == 300_000 && fill.progress == .growing && fill.mediaType == .mediaSegment)
        #expect(waitUntil(timeout: .seconds(10), interval: .milliseconds(5)) { fill.available == 100_000 })
        #expect(Self.contents(fill, 100_000) == Array(body.prefix(100_000)))
        #expect(String(decoding: fill.etag, as: UTF8.self) == "\"6553f100.0-493e0\"", "the ETag the placed file will have")
        // A late miss streams the same fill, without a second fetch.
        guard case .streaming(let joined) = Self.request(cache, "titles/a/1/seg.m4s", slot: 2) else {
            Issue.record("a miss during the fill should stream it")
            return
        }
        #expect(joined === fill)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("objects/titles/a/1/seg.m4s").path), "not in place while partial")

        fill.watch(loop: 0)
        source.gate.signal()
        #expect(read(wake, &value, 8) == 8, "the loop that watched is woken")
        #expect(waitUntil(timeout: .seconds(10), interval: .milliseconds(5)) { fill.progress == .complete })
        #expect(fill.available == 300_000 && Self.contents(fill, 300_000) == body)
        #expect(try Data(contentsOf: folder.appendingPathComponent("objects/titles/a/1/seg.m4s")) == Data(body))
        #expect(source.gets.withLock { $0 } == 1)
    }

    @Test("A fill that fails part-way is marked failed, leaves no file, and the next miss fetches afresh")
    func failedFill() throws {
        let body = [UInt8](repeating: 5, count: 200_000)
        let source = StreamingSource(body: body, firstPart: 50_000, fails: true)
        let (cache, wake, folder) = try Self.streamingCache(source)
        _ = Self.request(cache, "big.ts", slot: 1)
        var value: UInt64 = 0
        #expect(read(wake, &value, 8) == 8)
        var answers: [FetchAnswer] = []
        cache.takeAnswers(loop: 0, into: &answers)
        let fill = try #require(answers.first?.fill)
        source.gate.signal()
        #expect(waitUntil(timeout: .seconds(10), interval: .milliseconds(5)) { fill.progress == .failed })
        #expect(fill.available == 50_000, "what was written stays readable for the responses already streaming")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("objects/big.ts").path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("tmp").path).isEmpty)
        guard case .waits(coalesced: false) = Self.request(cache, "big.ts", slot: 3) else {
            Issue.record("after a failed fill a miss should fetch again")
            return
        }
        #expect(waitUntil(timeout: .seconds(10), interval: .milliseconds(5)) {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent("objects/big.ts").path)
        })
        #expect(source.gets.withLock { $0 } == 2)
    }

    @Test("Playlists and empty bodies never stream: their requests wait for the whole object")
    func manifestsWaitWhole() throws {
        let source = StreamingSource(body: Array("#EXTM3U\n".utf8), firstPart: 3, fails: false)
        let (cache, wake, _) = try Self.streamingCache(source)
        _ = Self.request(cache, "titles/a/1/index.m3u8", slot: 1)
        source.gate.signal()
        var value: UInt64 = 0
        #expect(read(wake, &value, 8) == 8)
        var answers: [FetchAnswer] = []
        cache.takeAnswers(loop: 0, into: &answers)
        #expect(answers.map(\.outcome) == [.stored])
    }
}
