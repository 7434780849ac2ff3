import Foundation
import Glibc
import Synchronization
import Testing

@testable import MarqueeGateway

/// A store in memory that counts its GETs.
private final class MemorySource: ReadThroughSource {
    let objects: [String: [UInt8]]
    let gets = Mutex<[String]>([])

    init(_ objects: [String: [UInt8]]) { self.objects = objects }

    func download(_ key: String, toFile path: String, timeoutMilliseconds: Int64, revalidating: ObjectFreshness?) -> ReadThroughDownload {
        gets.withLock { $0.append(key) }
        guard let bytes = objects[key] else { return .notFound }
        return FileManager.default.createFile(atPath: path, contents: Data(bytes)) ? .stored : .failed("cannot write \(path)")
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
        case .queued, .joined: break
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

    @Test("A symlink planted in the cache cannot lead a write outside it")
    func symlinkedFolder() throws {
        let h = try Harness(objects: ["evil/x.bin": [9], "evil2/x.bin": [9]])
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("outside-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: h.folder.appendingPathComponent("objects/evil").path, withDestinationPath: outside.path)
        #expect(h.fetch("evil/x.bin") == .failed)
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty)
        #expect(h.fetch("evil2/x.bin") == .stored, "an ordinary folder still works")
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
}
