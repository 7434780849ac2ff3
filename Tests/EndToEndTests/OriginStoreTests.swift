import Foundation
import Glibc
import MarqueeStore
import MarqueeTestSupport
import Testing

/// A bucket in a private moto server holding the fixtures' title (and any extra objects), and a
/// `marquee origin --store s3://...` serving it through a cache folder with signed URLs required.
final class StoreOrigin: @unchecked Sendable {
    static let credentials = ["AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test-secret"]
    let moto: MotoServer
    let store: S3Store
    let keys: URL
    let cache: URL
    var server: ServerProcess!
    /// Keys uploaded from the fixtures, with their bytes.
    var objects: [String: Data] = [:]

    init(extraObjects: [String: Data] = [:], fixtures include: Bool = true) async throws {
        moto = try MotoServer()
        store = try S3Store(
            .init(endpoint: moto.endpoint, region: "eu-west-1", bucket: "marquee-origin", accessKey: "test", secretKey: "test-secret"))
        try await store.createBucket()
        if include {
            let fixtures = try MediaFixtures.shared()
            let title = fixtures.root.appendingPathComponent("titles/demo/1")
            let files = FileManager.default.enumerator(at: title, includingPropertiesForKeys: nil)!
            for case let file as URL in files where !file.hasDirectoryPath {
                let key = "titles/demo/1/" + file.path.dropFirst(title.path.count + 1)
                objects[key] = try Data(contentsOf: file)
            }
            objects["files/big.bin"] = try fixtures.contents(MediaFixtures.big)
        }
        objects.merge(extraObjects) { $1 }
        for (key, bytes) in objects { try await store.put(ObjectKey(key), bytes: Array(bytes), contentType: nil) }
        keys = try Scratch.newDirectory("store-keys")
        try SignedGateway.writeKey("k1", in: keys)
        cache = try Scratch.newDirectory("store-cache")
    }

    var location: String { "s3://marquee-origin?endpoint=\(moto.endpoint)&region=eu-west-1" }

    /// Starts (or restarts) the origin over the same cache folder.
    func start(maxBytes: Int = 1 << 30, environment: [String: String] = [:], location: String? = nil) throws {
        server = try ServerProcess(
            root: cache, environment: Self.credentials.merging(environment) { $1 },
            arguments: ["--token-key-dir", keys.path, "--require-token"],
            serving: ["--store", location ?? self.location, "--cache-dir", cache.path, "--cache-max-bytes", "\(maxBytes)"])
    }

    func token(_ scope: String = "/titles/demo/") throws -> String {
        try SignedGateway.sign(["--key-id", "k1", "--secret-file", keys.appendingPathComponent("k1.key").path, "--token-only", "--scope", scope, "/x"])
    }

    func url(_ path: String, scope: String = "/") throws -> String { server.url("/t/\(try token(scope))\(path)") }

    func cacheMetric(_ name: String) throws -> Double { try server.metric("marquee_cache_\(name)") }

    /// Bytes of the files under the cache's objects folder.
    func bytesOnDisk() -> Int {
        let objects = cache.appendingPathComponent("objects")
        var total = 0
        for case let file as URL in FileManager.default.enumerator(at: objects, includingPropertiesForKeys: [.fileSizeKey])! {
            total += (try? file.resourceValues(forKeys: [.fileSizeKey]).fileSize ?? 0) ?? 0
        }
        return total
    }
}

@Suite("Origin serving from S3 through its read-through cache")
struct OriginStoreTests {
    @Test("Refused requests never reach S3; ffmpeg plays the title; every object is byte-identical; a second pass is all hits; ETag and Last-Modified are stable; a missing object is a remembered 404")
    func servesFromStore() async throws {
        let origin = try await StoreOrigin()
        try origin.start()
        defer { origin.server.stop() }

        // The policy decides before any fetch.
        #expect(try Curl.fetch(origin.server.url(MediaFixtures.hlsSegment)).status == 403)
        #expect(try Curl.fetch(origin.server.url("/t/v1.forged.token" + MediaFixtures.hlsSegment)).status == 403)
        let outOfScope = try origin.token("/titles/other/")
        #expect(try Curl.fetch(origin.server.url("/t/\(outOfScope)" + MediaFixtures.hlsSegment)).status == 403)
        #expect(try origin.cacheMetric("fetches_total") == 0, "a refused request touched the store")
        #expect(try origin.cacheMetric("misses_total") == 0)

        let token = try origin.token("/titles/demo/1/")
        let played = try PlaybackTests.decode(origin.server.url("/t/\(token)" + MediaFixtures.hlsMaster))
        #expect(played.termination == .exited(0), "ffmpeg: \(played.stderr)")
        #expect(abs(played.frames(stream: 0) - MediaFixtures.videoFrames) <= 2)
        let fetchedByPlayback = try origin.cacheMetric("fetches_total")
        #expect(fetchedByPlayback >= 4, "master, media playlist, init and segments came from S3")

        var firstHeaders: [String: (String?, String?)] = [:]
        for (key, bytes) in origin.objects {
            let response = try Curl.fetch(try origin.url("/" + key))
            #expect(response.status == 200, "\(key)")
            #expect(response.body == bytes, "\(key) differs from the object in S3")
            firstHeaders[key] = (response.header("etag"), response.header("last-modified"))
        }
        let fetches = try origin.cacheMetric("fetches_total")
        #expect(fetches == Double(origin.objects.count), "each object fetched once")
        let hitsBefore = try origin.cacheMetric("hits_total")
        for (key, bytes) in origin.objects {
            let response = try Curl.fetch(try origin.url("/" + key))
            #expect(response.status == 200 && response.body == bytes, "\(key)")
            #expect(response.header("etag") == firstHeaders[key]?.0 && response.header("last-modified") == firstHeaders[key]?.1, "\(key)")
        }
        #expect(try origin.cacheMetric("fetches_total") == fetches, "the second pass made no GET")
        #expect(try origin.cacheMetric("hits_total") == hitsBefore + Double(origin.objects.count))
        #expect(try origin.cacheMetric("fetch_errors_total") == 0)

        // Last-Modified is the object's, so every origin and every refetch agree.
        let head = try #require(try await origin.store.head(ObjectKey("files/big.bin")))
        let lastModified = try #require(firstHeaders["files/big.bin"]?.1)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        #expect(formatter.date(from: lastModified) == head.modified, "\(lastModified) vs \(String(describing: head.modified))")

        let missing = try Curl.fetch(try origin.url("/titles/demo/1/hls/seg_999.m4s"))
        #expect(missing.status == 404)
        #expect(missing.bodyText == "no such object in the store\n")
        #expect(try Curl.fetch(try origin.url("/titles/demo/1/hls/seg_999.m4s")).status == 404)
        #expect(try origin.cacheMetric("fetches_total") == fetches + 1, "the 404 was remembered")
        #expect(try origin.cacheMetric("not_found_total") == 1)
        #expect(origin.server.isRunning)
    }

    @Test("24 concurrent misses for one object make exactly one GET; all get the whole object")
    func coalescesMisses() async throws {
        var generator = SeededGenerator(seed: 24)
        let bytes = Data(generator.bytes(6_000_000))
        let origin = try await StoreOrigin(extraObjects: ["files/large.bin": bytes], fixtures: false)
        try origin.start()
        defer { origin.server.stop() }
        let path = try "/t/\(origin.token("/files/"))/files/large.bin"
        // Connections opened first, then the 24 requests sent back to back: they all arrive while
        // the one GET is under way.
        let connections = try (0..<24).map { _ in try RawConnection(port: origin.server.mediaPort) }
        for connection in connections { try connection.send("GET \(path) HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n") }
        for connection in connections {
            let response = try connection.readResponse(timeout: .seconds(30))
            #expect(response.status == 200)
            #expect(response.body == Array(bytes))
        }
        #expect(try origin.cacheMetric("fetches_total") == 1)
        #expect(try origin.cacheMetric("misses_total") == 24)
        #expect(try origin.cacheMetric("coalesced_total") == 23)
        #expect(try origin.cacheMetric("hits_total") == 0)
        // Later requests are hits.
        let later = try Curl.fetch(try origin.url("/files/large.bin"))
        #expect(later.status == 200 && later.body == bytes)
        #expect(try origin.cacheMetric("fetches_total") == 1 && origin.cacheMetric("hits_total") == 1)
    }

    @Test("Eviction keeps the cache within its bound; evicted objects are fetched again intact; a restart re-indexes the warm cache")
    func evictsAndReindexes() async throws {
        var generator = SeededGenerator(seed: 7)
        var extra: [String: Data] = [:]
        for i in 0..<5 { extra["titles/e/v/part\(i).bin"] = Data(generator.bytes(1_000_000)) }
        let origin = try await StoreOrigin(extraObjects: extra, fixtures: false)
        let bound = 2_500_000
        // A loop's open-file cache may serve an evicted file from its open descriptor until it
        // re-checks the disk (files.revalidate_ms); checking every time makes eviction visible
        // at once, so the GETs counted below do not depend on how fast the test runs.
        let everyTime = ["MARQUEE_FILES_REVALIDATE_MS": "0"]
        try origin.start(maxBytes: bound, environment: everyTime)

        for i in 0..<5 {
            let response = try Curl.fetch(try origin.url("/titles/e/v/part\(i).bin"))
            #expect(response.status == 200 && response.body == extra["titles/e/v/part\(i).bin"])
            #expect(origin.bytesOnDisk() <= bound, "after part\(i): \(origin.bytesOnDisk()) bytes on disk")
        }
        #expect(try origin.cacheMetric("evictions_total") == 3)
        #expect(try origin.cacheMetric("bytes") == 2_000_000)
        // part0 was evicted first: fetched again, intact; the least recent (part3) makes room.
        let again = try Curl.fetch(try origin.url("/titles/e/v/part0.bin"))
        #expect(again.status == 200 && again.body == extra["titles/e/v/part0.bin"])
        #expect(try origin.cacheMetric("fetches_total") == 6)
        #expect(origin.bytesOnDisk() <= bound)
        #expect(!FileManager.default.fileExists(atPath: origin.cache.appendingPathComponent("objects/titles/e/v/part3.bin").path))

        origin.server.stop()
        try origin.start(maxBytes: bound, environment: everyTime)
        defer { origin.server.stop() }
        #expect(try origin.cacheMetric("files") == 2)
        #expect(try origin.cacheMetric("bytes") == 2_000_000)
        for i in [4, 0] {
            let response = try Curl.fetch(try origin.url("/titles/e/v/part\(i).bin"))
            #expect(response.status == 200 && response.body == extra["titles/e/v/part\(i).bin"])
        }
        #expect(try origin.cacheMetric("fetches_total") == 0, "the warm cache survived the restart")
    }

    @Test("A store that is down answers 502, one that hangs 504 within the fetch timeout, a full fetch queue 503; never a hang or a crash")
    func storeFailures() async throws {
        let origin = try await StoreOrigin(extraObjects: ["files/a.bin": Data([1, 2, 3])], fixtures: false)
        try origin.start()
        origin.moto.stop()
        let down = try Curl.fetch(try origin.url("/files/a.bin"), timeout: .seconds(20))
        #expect(down.status == 502 || down.status == 504, "\(down.status) \(down.bodyText)")
        #expect(try origin.cacheMetric("fetch_errors_total") == 1)
        #expect(origin.server.isRunning)
        origin.server.stop()

        // A listener that never answers: connections sit in its backlog.
        let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(silent) }
        let port = try RedisServer.freePort()
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(silent, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(bound == 0)
        #expect(listen(silent, 16) == 0)
        try origin.start(
            environment: ["MARQUEE_CACHE_FETCH_TIMEOUT_MS": "6000", "MARQUEE_CACHE_FETCHES": "1", "MARQUEE_CACHE_FETCH_QUEUE": "1"],
            location: "s3://marquee-origin?endpoint=http://127.0.0.1:\(port)&region=eu-west-1")
        defer { origin.server.stop() }
        let hanging = try Curl.start(try origin.url("/files/a.bin"), timeout: .seconds(20))
        // Wait until the one fetch thread has taken it, then fill the queue and overflow it.
        #expect(waitUntil(timeout: .seconds(10)) { ((try? origin.cacheMetric("fetches_total")) ?? 0) == 1 })
        let queued = try Curl.start(try origin.url("/files/b.bin"), timeout: .seconds(20))
        #expect(waitUntil(timeout: .seconds(10)) { ((try? origin.cacheMetric("misses_total")) ?? 0) == 2 })
        let refused = try Curl.fetch(try origin.url("/files/c.bin"))
        #expect(refused.status == 503)
        #expect(refused.header("retry-after") == "1")
        let timedOut = try hanging.finish()
        #expect(timedOut.status == 504, "\(timedOut.status) \(timedOut.bodyText)")
        #expect(timedOut.bodyText == "the object store did not answer in time\n")
        #expect(origin.server.isRunning)
        origin.server.stop()
        _ = try? queued.finish()
    }
}
