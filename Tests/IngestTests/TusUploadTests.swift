import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import MarqueeIngest
import MarqueeServiceKit
import MarqueeStore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import MarqueeTestSupport
import Testing

@Suite("tus uploads (SQLite and PostgreSQL)")
struct TusUploadTests {
    static let tus = ["Tus-Resumable": "1.0.0"]

    static func metadata(title: String, filename: String? = "movie.mp4") -> String {
        var pairs = ["title_id \(Data(title.utf8).base64EncodedString())"]
        if let filename { pairs.append("filename \(Data(filename.utf8).base64EncodedString())") }
        return pairs.joined(separator: ",")
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// Creates an upload of `length` bytes; returns its path.
    static func create(_ ingest: Client, token: String, length: Int, title: String = Identifier.make()) async throws -> String {
        let created = try await ingest.send(
            .post, "/api/ingest/uploads", token: token,
            headers: tus.merging(["Upload-Length": "\(length)", "Upload-Metadata": metadata(title: title)]) { $1 })
        #expect(created.status == .created, "\(created.text)")
        return try #require(created.header("Location"))
    }

    static func patch(_ ingest: Client, _ location: String, token: String, offset: Int, bytes: [UInt8], extra: [String: String] = [:])
        async throws -> Client.Reply
    {
        try await ingest.send(
            .patch, location, token: token, bytes: bytes,
            headers: tus.merging(["Content-Type": "application/offset+octet-stream", "Upload-Offset": "\(offset)"]) { $1 }.merging(extra) { $1 })
    }

    static func jobCount(_ ingest: Client, token: String) async throws -> Int {
        try await ingest.send(.get, "/api/ingest/jobs?limit=100", token: token).items.count
    }

    /// An RFC 9110 IMF-fixdate as seconds since 1970, or nil when it is not one.
    static func httpDate(_ text: String) -> TimeInterval? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.date(from: text)?.timeIntervalSince1970
    }

    static func createReply(_ ingest: Client, token: String, length: Int) async throws -> Client.Reply {
        try await ingest.send(
            .post, "/api/ingest/uploads", token: token,
            headers: tus.merging(["Upload-Length": "\(length)", "Upload-Metadata": metadata(title: Identifier.make())]) { $1 })
    }

    static func partFiles(_ folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".part") }
    }

    @Test("tus expiration: Upload-Expires on creation, PATCH and HEAD; an abandoned upload gets 410/404 and its .part file is swept; a finished one stays", arguments: DatabaseKind.allCases)
    func expiration(kind: DatabaseKind) async throws {
        let expiry = 4  // seconds
        let services = try await IngestServices.open(kind) { $0.uploadExpiry = .seconds(expiry) }
        let folder = services.uploadsFolder
        try await services.run { auth, ingest in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let options = try await ingest.send(.options, "/api/ingest/uploads")
            #expect(options.header("Tus-Extension")?.split(separator: ",").contains("expiration") == true)

            // The live upload: created, patched and asked about within its expiry. On a loaded machine
            // the three requests can take longer than that, and then a 410 is right and proves
            // nothing: such an attempt is made again. The last upload is the abandoned one below.
            var location = ""
            var id = ""
            var verifiedLive = false
            for _ in 0..<8 where !verifiedLive {
                let started = ContinuousClock.now
                let created = try await Self.createReply(ingest, token: publisher, length: 1000)
                #expect(created.status == .created)
                location = try #require(created.header("Location"))
                id = String(location.split(separator: "/").last!)
                let expires = try #require(created.header("Upload-Expires").flatMap(Self.httpDate), "Upload-Expires is an HTTP date: \(created.headers)")
                #expect(abs(expires - (Date().timeIntervalSince1970 + Double(expiry))) < 5)
                let patched = try await Self.patch(ingest, location, token: publisher, offset: 0, bytes: Self.randomBytes(100))
                let head = try await ingest.send(.head, location, token: publisher, headers: Self.tus)
                guard ContinuousClock.now - started < .seconds(expiry) * 0.75 else { continue }
                #expect(patched.status == .noContent && patched.header("Upload-Expires").flatMap(Self.httpDate) != nil, "\(patched.headers)")
                #expect(head.status == .ok && head.header("Upload-Expires").flatMap(Self.httpDate) != nil)
                verifiedLive = true
            }
            #expect(verifiedLive, "no attempt created, patched and asked about an upload within its expiry")

            // A finished upload never expires: no Upload-Expires, and the sweep leaves it alone.
            let finished = try await Self.create(ingest, token: publisher, length: 10)
            let finishedID = String(finished.split(separator: "/").last!)
            let last = try await Self.patch(ingest, finished, token: publisher, offset: 0, bytes: Self.randomBytes(10))
            #expect(last.status == .noContent && last.header("Upload-Expires") == nil)

            // Abandoned: waited on, not slept on.
            let part = folder.appendingPathComponent("\(id).part").path
            let expired = try await waitUntil(timeout: .seconds(30), interval: .milliseconds(100)) {
                let status = try await ingest.send(.head, location, token: publisher, headers: Self.tus).status
                return status == .gone || status == .notFound
            }
            #expect(expired, "an expired upload answers 410 (or 404 once swept)")
            let late = try await Self.patch(ingest, location, token: publisher, offset: 100, bytes: Self.randomBytes(100))
            #expect(late.status == .gone || late.status == .notFound, "\(late.status) \(late.text)")
            // Waited on without blocking a thread: the sweep runs on the cooperative threads this
            // test shares (a blocking wait in both cases at once starved it for the whole 30 s).
            let swept = await waitUntil(timeout: .seconds(30)) { () async in !FileManager.default.fileExists(atPath: part) }
            #expect(swept, "the sweep removes the .part file")
            #expect(try await ingest.send(.head, location, token: publisher, headers: Self.tus).status == .notFound, "and the row")
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("\(finishedID).source").path))
            #expect(try await ingest.send(.head, finished, token: publisher, headers: Self.tus).status == .ok)
            #expect(try await Self.jobCount(ingest, token: publisher) == 1)
        }
    }

    @Test("An expired upload answers 410 Gone to HEAD, PATCH and DELETE until it is swept", arguments: DatabaseKind.allCases)
    func expiredIsGone(kind: DatabaseKind) async throws {
        let services = try await IngestServices.open(kind, sweepsExpiredUploads: false) { $0.uploadExpiry = .seconds(1) }
        try await services.run { auth, ingest in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let location = try await Self.create(ingest, token: publisher, length: 1000)
            let gone = try await waitUntil(timeout: .seconds(30), interval: .milliseconds(100)) {
                try await ingest.send(.head, location, token: publisher, headers: Self.tus).status == .gone
            }
            #expect(gone, "without a sweep, an expired upload stays 410")
            let patch = try await Self.patch(ingest, location, token: publisher, offset: 0, bytes: Self.randomBytes(10))
            #expect(patch.status == .gone && patch.detail.contains("expired"), "\(patch.text)")
            #expect(patch.header("Content-Type") == "application/problem+json" && patch.header("Tus-Resumable") == "1.0.0")
            #expect(try await ingest.send(.delete, location, token: publisher, headers: Self.tus).status == .gone)
        }
    }

    @Test("A publisher's unfinished uploads may declare at most ingest.max_bytes_in_flight_per_publisher bytes: 413 naming the quota", arguments: DatabaseKind.allCases)
    func bytesInFlightQuota(kind: DatabaseKind) async throws {
        let services = try await IngestServices.open(kind) { $0.maxBytesInFlightPerPublisher = 1000 }
        let folder = services.uploadsFolder
        try await services.run { auth, ingest in
            let one = try await services.user(.publisher, "one@example.com", client: auth)
            let two = try await services.user(.publisher, "two@example.com", client: auth)
            let first = try await Self.create(ingest, token: one, length: 600)
            let over = try await Self.createReply(ingest, token: one, length: 500)
            #expect(over.status == .contentTooLarge)
            #expect(over.header("Content-Type") == "application/problem+json")
            #expect(over.detail.contains("ingest.max_bytes_in_flight_per_publisher") && over.detail.contains("1000 bytes"), "\(over.detail)")
            #expect(Self.partFiles(folder).count == 1, "a refused creation leaves no file")
            #expect(try await Self.createReply(ingest, token: two, length: 1000).status == .created, "each publisher has a quota of their own")

            // Finishing an upload frees its bytes; so does terminating one.
            let done = try await Self.patch(ingest, first, token: one, offset: 0, bytes: Self.randomBytes(600))
            #expect(done.status == .noContent)
            let second = try await Self.create(ingest, token: one, length: 500)
            #expect(try await Self.createReply(ingest, token: one, length: 600).status == .contentTooLarge)
            #expect(try await ingest.send(.delete, second, token: one, headers: Self.tus).status == .noContent)
            #expect(try await Self.createReply(ingest, token: one, length: 1000).status == .created)
        }
    }

    @Test("Concurrent creations cannot overrun the bytes-in-flight quota together", arguments: DatabaseKind.allCases)
    func concurrentQuota(kind: DatabaseKind) async throws {
        let services = try await IngestServices.open(kind) { $0.maxBytesInFlightPerPublisher = 1000 }
        try await services.run { auth, ingest in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            // Separate connections, so the creations really are in flight together (the test client has one).
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 10)
            let client = HTTPClient(configuration: configuration)
            let statuses = try await withThrowingTaskGroup(of: UInt.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        var request = HTTPClientRequest(url: ingest.baseURL + "/api/ingest/uploads")
                        request.method = .POST
                        request.headers.add(name: "Authorization", value: "Bearer \(publisher)")
                        request.headers.add(name: "Tus-Resumable", value: "1.0.0")
                        request.headers.add(name: "Upload-Length", value: "300")
                        request.headers.add(name: "Upload-Metadata", value: Self.metadata(title: Identifier.make()))
                        let response = try await client.execute(request, timeout: .seconds(60))
                        _ = try await response.body.collect(upTo: 1 << 16)
                        return response.status.code
                    }
                }
                return try await group.reduce(into: [UInt]()) { $0.append($1) }
            }
            try await client.shutdown()
            #expect(statuses.filter { $0 == 201 }.count == 3, "3 × 300 bytes fit in 1000: \(statuses)")
            #expect(statuses.filter { $0 == 413 }.count == 7, "\(statuses)")
            #expect(Self.partFiles(services.uploadsFolder).count == 3)
        }
    }

    @Test("Discovery, creation, offsets, append in pieces, completion enqueues one job", arguments: DatabaseKind.allCases)
    func protocolRoundTrip(kind: DatabaseKind) async throws {
        let services = try await IngestServices.open(kind)
        let folder = services.uploadsFolder
        try await services.run { auth, ingest in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let options = try await ingest.send(.options, "/api/ingest/uploads")
            #expect(options.status == .noContent)
            #expect(options.header("Tus-Version") == "1.0.0" && options.header("Tus-Resumable") == "1.0.0")
            #expect(options.header("Tus-Extension") == "creation,termination,expiration")
            #expect(options.header("Tus-Max-Size") == String(20 << 30))

            let title = Identifier.make()
            let bytes = Self.randomBytes(300_000)
            let location = try await Self.create(ingest, token: publisher, length: bytes.count, title: title)
            let id = String(location.split(separator: "/").last!)
            #expect(location == "/api/ingest/uploads/\(id)")
            let head = try await ingest.send(.head, location, token: publisher, headers: Self.tus)
            #expect(head.status == .ok && head.header("Upload-Offset") == "0" && head.header("Upload-Length") == "300000")
            #expect(head.header("Cache-Control") == "no-store" && head.header("Tus-Resumable") == "1.0.0")

            let first = try await Self.patch(ingest, location, token: publisher, offset: 0, bytes: Array(bytes[0..<100_000]))
            #expect(first.status == .noContent && first.header("Upload-Offset") == "100000")
            let stale = try await Self.patch(ingest, location, token: publisher, offset: 0, bytes: Array(bytes[0..<100_000]))
            #expect(stale.status == .conflict && stale.detail.contains("100000"), "\(stale.text)")
            #expect(try await Self.jobCount(ingest, token: publisher) == 0)

            let last = try await Self.patch(ingest, location, token: publisher, offset: 100_000, bytes: Array(bytes[100_000...]))
            #expect(last.status == .noContent && last.header("Upload-Offset") == "300000")
            // The client never saw the answer and sends the final PATCH again: still one job.
            let retried = try await Self.patch(ingest, location, token: publisher, offset: 300_000, bytes: [])
            #expect(retried.status == .noContent && retried.header("Upload-Offset") == "300000")

            let source = folder.appendingPathComponent("\(id).source")
            #expect(Array(try Data(contentsOf: source)) == bytes)
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("\(id).part").path))
            let jobs = try await ingest.send(.get, "/api/ingest/jobs", token: publisher)
            #expect(jobs.items.count == 1)
            #expect(jobs.items.first?["title_id"] as? String == title && jobs.items.first?["status"] as? String == "queued")
            let jobID = try #require(jobs.items.first?["id"] as? String)
            let job = try await ingest.send(.get, "/api/ingest/jobs/\(jobID)", token: publisher)
            #expect(job.status == .ok && job["status"] == "queued" && job.json["progress_percent"] as? Double == 0)
            #expect(try await services.ingest.jobs.job(jobID)?.source == source.path)
            #expect(try await ingest.send(.get, "/api/ingest/jobs/\(Identifier.make())", token: publisher).status == .notFound)
        }
    }

    /// A store whose puts fail while `failing` is set (an S3 outage during the final PATCH).
    final class FlakyStore: ObjectStore {
        let inner: FileSystemStore
        let failingNow = NIOLockedValueBox(true)
        var failing: Bool {
            get { failingNow.withLockedValue { $0 } }
            set { failingNow.withLockedValue { $0 = newValue } }
        }
        init(_ inner: FileSystemStore) { self.inner = inner }
        func put(_ key: ObjectKey, bytes: [UInt8], contentType: String?) async throws {
            if failing { throw StoreError.backend("S3 PUT: SlowDown") }
            try await inner.put(key, bytes: bytes, contentType: contentType)
        }
        func put(_ key: ObjectKey, file path: String, contentType: String?) async throws {
            if failing { throw StoreError.backend("S3 PUT: SlowDown") }
            try await inner.put(key, file: path, contentType: contentType)
        }
        func get(_ key: ObjectKey, range: ClosedRange<Int>?) async throws -> [UInt8] { try await inner.get(key, range: range) }
        func download(_ key: ObjectKey, toFile path: String) async throws -> ObjectInfo { try await inner.download(key, toFile: path) }
        func head(_ key: ObjectKey) async throws -> ObjectInfo? { try await inner.head(key) }
        func list(prefix: String) async throws -> [ObjectInfo] { try await inner.list(prefix: prefix) }
        func delete(_ key: ObjectKey) async throws { try await inner.delete(key) }
    }

    @Test("With a source store, a finished upload becomes sources/<id> there and its job points at it; a store outage loses nothing", arguments: DatabaseKind.allCases)
    func sourcesGoToTheStore(kind: DatabaseKind) async throws {
        let storeFolder = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-sources-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: storeFolder) }
        let store = FlakyStore(try FileSystemStore(root: storeFolder.path))
        let services = try await IngestServices.open(kind, sourceStore: store)
        let folder = services.uploadsFolder
        try await services.run { auth, ingest in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let bytes = Self.randomBytes(250_000)
            let location = try await Self.create(ingest, token: publisher, length: bytes.count)
            let id = String(location.split(separator: "/").last!)
            let last = try await Self.patch(ingest, location, token: publisher, offset: 0, bytes: bytes)
            #expect(last.status == .serviceUnavailable && last.detail.contains("retry the final PATCH"), "\(last.text)")
            #expect(try await Self.jobCount(ingest, token: publisher) == 0, "no job points at a source the store does not have")
            let head = try await ingest.send(.head, location, token: publisher, headers: Self.tus)
            #expect(head.header("Upload-Offset") == "250000", "every byte is kept")

            store.failing = false
            let retried = try await Self.patch(ingest, location, token: publisher, offset: 250_000, bytes: [])
            #expect(retried.status == .noContent, "\(retried.text)")
            let again = try await Self.patch(ingest, location, token: publisher, offset: 250_000, bytes: [])
            #expect(again.status == .noContent)
            let jobs = try await ingest.send(.get, "/api/ingest/jobs", token: publisher)
            #expect(jobs.items.count == 1)
            let jobID = try #require(jobs.items.first?["id"] as? String)
            #expect(try await services.ingest.jobs.job(jobID)?.source == "store:sources/\(id)")
            #expect(try await store.get(try ObjectKey("sources/\(id)")) == bytes)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            #expect(leftovers.isEmpty, "the local copy is gone once the job points at the stored one: \(leftovers)")
        }
    }

    @Test("Refusals: 412 without Tus-Resumable, 415, 409, 413, 401/403, and DELETE removes the upload", arguments: DatabaseKind.allCases)
    func refusals(kind: DatabaseKind) async throws {
        let services = try await IngestServices.open(kind) { $0.maxUploadBytes = 1_000_000 }
        let folder = services.uploadsFolder
        try await services.run { auth, ingest in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let viewer = try await services.user(.viewer, "view@example.com", client: auth)
            let location = try await Self.create(ingest, token: publisher, length: 1000)
            let id = String(location.split(separator: "/").last!)

            let noVersion = try await ingest.send(.head, location, token: publisher)
            #expect(noVersion.status == .preconditionFailed && noVersion.header("Tus-Version") == "1.0.0")
            let noVersionPatch = try await ingest.send(
                .patch, location, token: publisher, bytes: [1, 2, 3],
                headers: ["Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"])
            #expect(noVersionPatch.status == .preconditionFailed)
            #expect(noVersionPatch.headers[.contentType] == "application/problem+json" && noVersionPatch.detail.contains("Tus-Resumable"))

            let wrongType = try await Self.patch(ingest, location, token: publisher, offset: 0, bytes: [1, 2, 3], extra: ["Content-Type": "application/octet-stream"])
            #expect(wrongType.status == .unsupportedMediaType && wrongType.detail.contains("application/offset+octet-stream"))
            let wrongOffset = try await Self.patch(ingest, location, token: publisher, offset: 5, bytes: [1, 2, 3])
            #expect(wrongOffset.status == .conflict)
            let tooLong = try await Self.patch(ingest, location, token: publisher, offset: 0, bytes: Self.randomBytes(1001))
            #expect(tooLong.status == .contentTooLarge)
            let head = try await ingest.send(.head, location, token: publisher, headers: Self.tus)
            #expect(head.header("Upload-Offset") == "0", "refused bodies leave nothing behind")

            let oversize = try await ingest.send(
                .post, "/api/ingest/uploads", token: publisher,
                headers: Self.tus.merging(["Upload-Length": "1000001", "Upload-Metadata": Self.metadata(title: Identifier.make())]) { $1 })
            #expect(oversize.status == .contentTooLarge && oversize.detail.contains("1000000"))
            let noLength = try await ingest.send(
                .post, "/api/ingest/uploads", token: publisher, headers: Self.tus.merging(["Upload-Metadata": Self.metadata(title: Identifier.make())]) { $1 })
            #expect(noLength.status == .badRequest && noLength.detail.contains("Upload-Length"))

            #expect(try await ingest.send(.post, "/api/ingest/uploads", headers: Self.tus).status == .unauthorized)
            let asViewer = try await ingest.send(
                .post, "/api/ingest/uploads", token: viewer,
                headers: Self.tus.merging(["Upload-Length": "10", "Upload-Metadata": Self.metadata(title: Identifier.make())]) { $1 })
            #expect(asViewer.status == .forbidden)

            #expect(try await Self.patch(ingest, location, token: publisher, offset: 0, bytes: [1, 2, 3]).status == .noContent)
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("\(id).part").path))
            let deleted = try await ingest.send(.delete, location, token: publisher, headers: Self.tus)
            #expect(deleted.status == .noContent && deleted.header("Tus-Resumable") == "1.0.0")
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("\(id).part").path))
            #expect(try await ingest.send(.head, location, token: publisher, headers: Self.tus).status == .notFound)
            #expect(try await Self.patch(ingest, location, token: publisher, offset: 3, bytes: [4]).status == .notFound)
        }
    }

    @Test("Hostile Upload-Metadata gets a 400 naming the key and creates nothing", arguments: DatabaseKind.allCases)
    func hostileMetadata(kind: DatabaseKind) async throws {
        let services = try await IngestServices.open(kind)
        let folder = services.uploadsFolder
        try await services.run { auth, ingest in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let title = Data(Identifier.make().utf8).base64EncodedString()
            let cases: [(String?, String)] = [
                (nil, "title_id"),
                ("filename bW92aWU=", "title_id"),
                ("title_id !!!notbase64!!!", "title_id"),
                ("title_id \(Data("../../etc/passwd".utf8).base64EncodedString())", "title_id"),
                ("title_id \(title),title_id \(title)", "title_id"),
                ("title_id \(title),filename \(Data([0xFF, 0xFE]).base64EncodedString())", "filename"),
                ("title_id \(title),filename \(Data("a\nb".utf8).base64EncodedString())", "filename"),
                ("title_id \(title),filename \(Data(String(repeating: "x", count: 300).utf8).base64EncodedString())", "filename"),
                ("title_id \(title),,", "Upload-Metadata"),
                ("title_id \(title) extra part", "Upload-Metadata"),
                ("title_id \(title),junk " + String(repeating: "QUFB", count: 2000), "Upload-Metadata"),
            ]
            for (header, field) in cases {
                var headers = Self.tus
                headers["Upload-Length"] = "100"
                if let header { headers["Upload-Metadata"] = header }
                let reply = try await ingest.send(.post, "/api/ingest/uploads", token: publisher, headers: headers)
                #expect(reply.status == .badRequest, "\(header ?? "nil") → \(reply.status) \(reply.text)")
                #expect(reply.headers[.contentType] == "application/problem+json")
                #expect(reply.detail.contains(field), "\(header ?? "nil") → \(reply.detail)")
            }
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            #expect(leftovers.isEmpty, "no files for refused uploads: \(leftovers)")
        }
    }

    @Test("Hostile Upload-Length and Upload-Offset values get a 4xx problem, never a 5xx or a write")
    func hostileNumbers() async throws {
        let services = try await IngestServices.open(.sqlite)
        try await services.run { auth, ingest in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let metadata = Self.metadata(title: Identifier.make())
            for length in ["", "-1", "0", "1e9", "0x10", "+5", "99999999999999999999", "1,2", "NaN", "５"] {
                let reply = try await ingest.send(
                    .post, "/api/ingest/uploads", token: publisher,
                    headers: Self.tus.merging(["Upload-Length": length, "Upload-Metadata": metadata]) { $1 })
                #expect((400..<500).contains(reply.status.code), "Upload-Length \(length.debugDescription) → \(reply.status)")
                #expect(reply.headers[.contentType] == "application/problem+json" && reply.detail.contains("Upload-Length"), "\(reply.text)")
            }
            let location = try await Self.create(ingest, token: publisher, length: 10)
            for offset in ["", "-1", "abc", "99999999999999999999", "+0", "0.0"] {
                let reply = try await ingest.send(
                    .patch, location, token: publisher, bytes: [1],
                    headers: Self.tus.merging(["Content-Type": "application/offset+octet-stream", "Upload-Offset": offset]) { $1 })
                #expect((400..<500).contains(reply.status.code), "Upload-Offset \(offset.debugDescription) → \(reply.status)")
            }
            let head = try await ingest.send(.head, location, token: publisher, headers: Self.tus)
            #expect(head.header("Upload-Offset") == "0")
            #expect(try await Self.jobCount(ingest, token: publisher) == 0)
        }
    }
}
