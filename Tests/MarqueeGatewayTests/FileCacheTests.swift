import Foundation
import Glibc
import MarqueeHTTP
import Testing

@testable import MarqueeGateway

/// A temporary served root with a file cache over it.
private final class Root {
    let url: URL
    let fd: Int32

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        fd = open(url.path, O_RDONLY | O_DIRECTORY)
    }

    deinit {
        close(fd)
        try? FileManager.default.removeItem(at: url)
    }

    func write(_ path: String, _ text: String) throws {
        let file = url.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: file)
    }

    func cache(capacity: Int = 16, memoryMax: Int = 1024, revalidate: Int64 = 1000) -> FileCache {
        FileCache(rootFD: fd, capacity: capacity, maxPathBytes: 256, memoryFileMaxBytes: memoryMax, revalidateMilliseconds: revalidate)
    }
}

/// Looks `path` up; returns the entry or the refusal.
private func lookup(_ cache: inout FileCache, _ path: String, now: Int64 = 0) -> FileCache.Lookup {
    var bytes = Array(path.utf8)
    bytes.append(0)
    return bytes.withUnsafeBytes { cache.acquire(UnsafeRawBufferPointer(rebasing: $0[0..<path.utf8.count]), now: now) }
}

private func body(_ cache: FileCache, _ e: Int32) -> String {
    let entry = cache.entries[Int(e)]
    return String(decoding: UnsafeRawBufferPointer(start: entry.body, count: Int(entry.size)), as: UTF8.self)
}

@Suite struct FileCacheTests {
    @Test func servesSmallFilesFromMemoryAndCountsHits() throws {
        let root = try Root()
        try root.write("titles/a/1/master.m3u8", "#EXTM3U\n")
        var cache = root.cache()
        guard case .entry(let e) = lookup(&cache, "titles/a/1/master.m3u8") else {
            Issue.record("expected a hit")
            return
        }
        #expect(body(cache, e) == "#EXTM3U\n")
        #expect(cache.entries[Int(e)].mediaType == .hlsPlaylist)
        #expect(cache.misses == 1)
        cache.release(e)
        guard case .entry(let again) = lookup(&cache, "titles/a/1/master.m3u8") else {
            Issue.record("expected a hit")
            return
        }
        #expect(again == e)
        #expect(cache.hits == 1)
        cache.release(again)
    }

    @Test func missingFilesAndDirectoriesAre404() throws {
        let root = try Root()
        try root.write("titles/a/1/master.m3u8", "x")
        var cache = root.cache()
        guard case .failed(let missing) = lookup(&cache, "titles/a/1/nope.m3u8") else {
            Issue.record("expected a refusal")
            return
        }
        #expect(missing.status == .notFound)
        guard case .failed(let directory) = lookup(&cache, "titles/a") else {
            Issue.record("expected a refusal")
            return
        }
        #expect(directory.status == .notFound)
    }

    @Test func symlinksLeavingTheRootAreRefused() throws {
        let root = try Root()
        let outside = root.url.deletingLastPathComponent().appendingPathComponent("secret-\(UUID().uuidString)")
        try Data("secret".utf8).write(to: outside)
        defer { try? FileManager.default.removeItem(at: outside) }
        try FileManager.default.createSymbolicLink(atPath: root.url.appendingPathComponent("escape").path, withDestinationPath: outside.path)
        try FileManager.default.createSymbolicLink(atPath: root.url.appendingPathComponent("up").path, withDestinationPath: "..")
        try root.write("inside.json", "{}")
        try FileManager.default.createSymbolicLink(atPath: root.url.appendingPathComponent("alias.json").path, withDestinationPath: "inside.json")
        var cache = root.cache()
        for path in ["escape", "up/\(outside.lastPathComponent)"] {
            guard case .failed(let error) = lookup(&cache, path) else {
                Issue.record("\(path) was served")
                continue
            }
            #expect(error.status == .forbidden)
        }
        guard case .entry(let e) = lookup(&cache, "alias.json") else {
            Issue.record("a symlink inside the root should be served")
            return
        }
        #expect(body(cache, e) == "{}")
    }

    @Test func noticesReplacedAndModifiedFilesAfterRevalidation() throws {
        let root = try Root()
        try root.write("live.m3u8", "one")
        var cache = root.cache(revalidate: 100)
        guard case .entry(let first) = lookup(&cache, "live.m3u8", now: 0) else { return }
        let firstETag = Array(cache.etag(first))
        cache.release(first)
        // replaced by rename, as a packager publishes
        try Data("second".utf8).write(to: root.url.appendingPathComponent("live.m3u8"), options: .atomic)
        guard case .entry(let stale) = lookup(&cache, "live.m3u8", now: 50) else { return }
        #expect(body(cache, stale) == "one", "within the revalidation interval the cached entry is used")
        cache.release(stale)
        guard case .entry(let fresh) = lookup(&cache, "live.m3u8", now: 200) else { return }
        #expect(body(cache, fresh) == "second")
        #expect(Array(cache.etag(fresh)) != firstETag)
        cache.release(fresh)
    }

    @Test func pinnedEntriesSurviveReplacementUntilReleased() throws {
        let root = try Root()
        try root.write("seg.m4s", "old")
        var cache = root.cache(revalidate: 0)
        guard case .entry(let pinned) = lookup(&cache, "seg.m4s", now: 0) else { return }
        try Data("new!".utf8).write(to: root.url.appendingPathComponent("seg.m4s"), options: .atomic)
        guard case .entry(let fresh) = lookup(&cache, "seg.m4s", now: 1) else { return }
        #expect(fresh != pinned)
        #expect(body(cache, pinned) == "old", "a response in flight keeps its version")
        #expect(body(cache, fresh) == "new!")
        cache.release(pinned)
        cache.release(fresh)
    }

    @Test func evictsUnusedEntriesWhenFull() throws {
        let root = try Root()
        for i in 0..<10 { try root.write("f\(i).json", "\(i)") }
        var cache = root.cache(capacity: 4)
        for round in 0..<3 {
            for i in 0..<10 {
                guard case .entry(let e) = lookup(&cache, "f\(i).json", now: Int64(round)) else {
                    Issue.record("f\(i).json not served")
                    continue
                }
                #expect(body(cache, e) == "\(i)")
                cache.release(e)
            }
        }
    }

    @Test func aFullCacheOfPinnedEntriesRefusesWith503() throws {
        let root = try Root()
        for i in 0..<3 { try root.write("f\(i).json", "\(i)") }
        var cache = root.cache(capacity: 2)
        guard case .entry(let a) = lookup(&cache, "f0.json"), case .entry(let b) = lookup(&cache, "f1.json") else { return }
        guard case .failed(let error) = lookup(&cache, "f2.json") else {
            Issue.record("expected 503")
            return
        }
        #expect(error.status == .serviceUnavailable)
        cache.release(a)
        cache.release(b)
        guard case .entry(let c) = lookup(&cache, "f2.json") else {
            Issue.record("expected a slot after release")
            return
        }
        cache.release(c)
    }
}

@Suite struct LoopMetricsTests {
    @Test func latencyBucketsMatchTheirBounds() {
        let bounds = LoopMetrics.latencyBoundsMicroseconds
        for (i, bound) in bounds.enumerated() {
            #expect(LoopMetrics.latencyBucket(bound) == i)
            #expect(LoopMetrics.latencyBucket(bound + 1) == i + 1)
        }
        #expect(LoopMetrics.latencyBucket(0) == 0)
        #expect(LoopMetrics.latencyBucket(.max) == bounds.count)
    }
}
