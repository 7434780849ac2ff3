import Foundation
import MarqueeStore
import MarqueeTestSupport
import Testing

/// Both backends behave the same: the filesystem under a scratch folder, and S3 against a real
/// S3 endpoint (moto's server mode) with our SigV4 signing.
@Suite("Object stores (filesystem and S3 via moto)")
struct ObjectStoreTests {
    enum Backend: String, CaseIterable, Sendable {
        case filesystem
        case s3
    }

    /// A fresh store; the moto server (when used) lives as long as the returned holder.
    static func make(_ backend: Backend, listPageSize: Int = 1000) async throws -> (any ObjectStore, MotoServer?) {
        switch backend {
        case .filesystem:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-store-\(UUID().uuidString)")
            return (try FileSystemStore(root: folder.path), nil)
        case .s3:
            let moto = try MotoServer()
            var configuration = S3Store.Configuration(
                endpoint: moto.endpoint, region: "eu-west-1", bucket: "marquee-test", accessKey: "test", secretKey: "test-secret")
            configuration.multipartThreshold = 6 << 20
            configuration.partSize = 5 << 20
            configuration.listPageSize = listPageSize
            let store = try S3Store(configuration)
            try await store.createBucket()
            return (store, moto)
        }
    }

    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    @Test("Put, get, ranges, head, list by prefix, delete", arguments: Backend.allCases)
    func basics(backend: Backend) async throws {
        let (store, moto) = try await Self.make(backend, listPageSize: 3)
        defer { moto?.stop() }
        let body = Self.bytes(100_000, seed: 1)
        let key = try ObjectKey("titles/a b/1/seg 1+ü.m4s")
        try await store.put(key, bytes: body, contentType: "video/mp4")
        #expect(try await store.get(key) == body)
        #expect(try await store.get(key, range: 10...19) == Array(body[10...19]))
        #expect(try await store.get(key, range: 99_990...200_000) == Array(body[99_990...]), "a range past the end is cut at the end")
        await #expect(throws: StoreError.self) { try await store.get(key, range: 200_000...200_010) }
        #expect(try await store.head(key)?.size == 100_000)
        for i in 0..<8 { try await store.put(try ObjectKey("titles/a b/2/part\(i).m4s"), bytes: [UInt8(i)], contentType: nil) }
        try await store.put(try ObjectKey("titles/other/x"), bytes: [1], contentType: nil)
        let listed = try await store.list(prefix: "titles/a b/2/").map(\.key)
        #expect(listed == (0..<8).map { "titles/a b/2/part\($0).m4s" }, "every key once, in order, across pages")
        #expect(try await store.list(prefix: "titles/").count == 10)
        try await store.delete(key)
        #expect(try await store.head(key) == nil)
        try await store.delete(key)
        do {
            _ = try await store.get(key)
            Issue.record("a deleted object was read")
        } catch StoreError.notFound {}
    }

    @Test("Downloads stream a whole object into a file, and leave nothing when there is no object", arguments: Backend.allCases)
    func download(backend: Backend) async throws {
        let (store, moto) = try await Self.make(backend)
        defer { moto?.stop() }
        let body = Self.bytes(9 << 20, seed: 5)
        let key = try ObjectKey("sources/upload-1")
        try await store.put(key, bytes: body, contentType: nil)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-download-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("source").path
        let info = try await store.download(key, toFile: target)
        #expect(info.size == body.count)
        #expect(info.modified != nil)
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: target))) == body)
        do {
            try await store.download(try ObjectKey("sources/missing"), toFile: folder.appendingPathComponent("missing").path)
            Issue.record("a missing object was downloaded")
        } catch StoreError.notFound {}
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["source"], "no partial file is left behind")
    }

    @Test("Keys that could leave the store are refused before any backend sees them")
    func hostileKeys() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a\\b", "a\u{0}b", "a/", String(repeating: "k", count: 1025)] {
            #expect(throws: StoreError.self, "\(bad.debugDescription)") { try ObjectKey(bad) }
        }
    }

    @Test("A package published to the filesystem and to S3 reads back byte-identical; large files go up in parts")
    func samePackageBothStores() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-package-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("video/720p"), withIntermediateDirectories: true)
        let files: [(String, [UInt8])] = [
            ("master.m3u8", Array("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nvideo/720p/index.m3u8\n".utf8)),
            ("manifest.mpd", Array("<MPD/>".utf8)),
            ("video/720p/init.mp4", Self.bytes(1_500, seed: 2)),
            ("video/720p/seg-1.m4s", Self.bytes(13 << 20, seed: 3)),  // three 5 MiB parts
            ("video/720p/seg-2.m4s", Self.bytes(700_000, seed: 4)),
        ]
        for (name, body) in files { try Data(body).write(to: folder.appendingPathComponent(name)) }
        let (fileStore, _) = try await Self.make(.filesystem)
        let (s3, moto) = try await Self.make(.s3)
        defer { moto?.stop() }
        let order = try await PackagePublisher.publish(folder: folder.path, to: fileStore, prefix: "titles/t1/v1")
        #expect(order.suffix(2) == ["titles/t1/v1/manifest.mpd", "titles/t1/v1/master.m3u8"], "manifests are written last")
        try await PackagePublisher.publish(folder: folder.path, to: s3, prefix: "titles/t1/v1")
        let fromFiles = try await fileStore.list(prefix: "titles/t1/v1/")
        let fromS3 = try await s3.list(prefix: "titles/t1/v1/")
        #expect(fromFiles.map(\.key) == fromS3.map(\.key))
        #expect(fromFiles.map(\.size) == fromS3.map(\.size))
        for info in fromFiles {
            let key = try ObjectKey(info.key)
            let a = try await fileStore.get(key)
            let b = try await s3.get(key)
            #expect(a == b, "\(info.key)")
        }
    }
}
