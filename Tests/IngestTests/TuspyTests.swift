import Crypto
import Foundation
import HTTPTypes
import MarqueeIngest
import MarqueeServiceKit
import MarqueeTestSupport
import Testing

/// The reference Python client (PyPI `tuspy`) against a live server.
@Suite("tuspy uploads")
struct TuspyTests {
    /// Uploads (or, given a URL, resumes) a file with tuspy in 4 MB chunks; prints the upload URL.
    static let script = """
        import sys
        from tusclient import client
        endpoint, token, path, title = sys.argv[1:5]
        resume = sys.argv[5] if len(sys.argv) > 5 else None
        tus = client.TusClient(endpoint, headers={"Authorization": "Bearer " + token})
        uploader = tus.uploader(path, url=resume, chunk_size=4 * 1024 * 1024, metadata={"title_id": title, "filename": "movie.mp4"})
        if resume is not None and uploader.offset == 0:
            sys.exit("tuspy did not resume: HEAD said offset 0")
        uploader.upload()
        print(uploader.url)
        """

    static func randomFile(megabytes: Int) throws -> (URL, [UInt8]) {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: megabytes << 20)
        bytes.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in words.indices { words[i] = generator.next() }
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-tus-\(UUID().uuidString).bin")
        try Data(bytes).write(to: file)
        return (file, bytes)
    }

    @Test("tuspy uploads 12 MB in 4 MB chunks: the source is SHA-256 identical and one job is queued", arguments: DatabaseKind.allCases)
    func upload(kind: DatabaseKind) async throws {
        let services = try await IngestServices.open(kind)
        let folder = services.uploadsFolder
        let (file, bytes) = try Self.randomFile(megabytes: 12)
        defer { try? FileManager.default.removeItem(at: file) }
        try await services.run { auth, ingest in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let title = Identifier.make()
            let output = try await runPython(Self.script, arguments: [ingest.baseURL + "/api/ingest/uploads", publisher, file.path, title])
            let url = output.trimmingCharacters(in: .whitespacesAndNewlines)
            let id = try #require(url.split(separator: "/").last.map(String.init))
            #expect(url == ingest.baseURL + "/api/ingest/uploads/\(id)")
            let stored = try Data(contentsOf: folder.appendingPathComponent("\(id).source"))
            #expect(SHA256.hash(data: stored) == SHA256.hash(data: Data(bytes)))
            let jobs = try await ingest.send(.get, "/api/ingest/jobs", token: publisher).items
            #expect(jobs.count == 1 && jobs.first?["title_id"] as? String == title && jobs.first?["status"] as? String == "queued")
        }
    }

    @Test("An upload interrupted after its first chunk is resumed by tuspy from HEAD's offset", arguments: DatabaseKind.allCases)
    func resume(kind: DatabaseKind) async throws {
        let services = try await IngestServices.open(kind)
        let folder = services.uploadsFolder
        let (file, bytes) = try Self.randomFile(megabytes: 12)
        defer { try? FileManager.default.removeItem(at: file) }
        try await services.run { auth, ingest in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let title = Identifier.make()
            let location = try await TusUploadTests.create(ingest, token: publisher, length: bytes.count, title: title)
            let first = try await TusUploadTests.patch(ingest, location, token: publisher, offset: 0, bytes: Array(bytes[0..<(4 << 20)]))
            #expect(first.status == .noContent && first.header("Upload-Offset") == String(4 << 20))

            let output = try await runPython(
                Self.script, arguments: [ingest.baseURL + "/api/ingest/uploads", publisher, file.path, title, ingest.baseURL + location])
            #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == ingest.baseURL + location)
            let id = String(location.split(separator: "/").last!)
            let stored = try Data(contentsOf: folder.appendingPathComponent("\(id).source"))
            #expect(SHA256.hash(data: stored) == SHA256.hash(data: Data(bytes)))
            #expect(try await ingest.send(.get, "/api/ingest/jobs", token: publisher).items.count == 1)
        }
    }

    /// Starts a 4 MB PATCH on a raw socket, sends 1.5 MB of it, and hangs up.
    static let dropScript = """
        import socket, sys
        port, path, token, source = sys.argv[1:5]
        data = open(source, "rb").read(1_500_000)
        head = (f"PATCH {path} HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nAuthorization: Bearer {token}\\r\\n"
                f"Tus-Resumable: 1.0.0\\r\\nContent-Type: application/offset+octet-stream\\r\\nUpload-Offset: 0\\r\\n"
                f"Content-Length: {4 << 20}\\r\\n\\r\\n")
        s = socket.create_connection(("127.0.0.1", int(port)))
        s.sendall(head.encode() + data)
        s.close()
        """

    @Test("A connection dropped mid-PATCH keeps the bytes that arrived; tuspy resumes after them", arguments: DatabaseKind.allCases)
    func droppedConnection(kind: DatabaseKind) async throws {
        let services = try await IngestServices.open(kind)
        let folder = services.uploadsFolder
        let (file, bytes) = try Self.randomFile(megabytes: 6)
        defer { try? FileManager.default.removeItem(at: file) }
        try await services.run { auth, ingest in
            let publisher = try await services.user(.publisher, "pub@example.com", client: auth)
            let title = Identifier.make()
            let location = try await TusUploadTests.create(ingest, token: publisher, length: bytes.count, title: title)
            _ = try await runPython(Self.dropScript, arguments: [String(ingest.port), location, publisher, file.path])

            // The server records what arrived once it notices the hang-up.
            var offset = 0
            let deadline = ContinuousClock.now + .seconds(10)
            while offset == 0 && ContinuousClock.now < deadline {
                let head = try await ingest.send(.head, location, token: publisher, headers: TusUploadTests.tus)
                offset = Int(head.header("Upload-Offset") ?? "") ?? 0
                if offset == 0 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(offset > 0 && offset <= 1_500_000, "kept \(offset) of the 1.5 MB sent")

            let output = try await runPython(
                Self.script, arguments: [ingest.baseURL + "/api/ingest/uploads", publisher, file.path, title, ingest.baseURL + location])
            #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == ingest.baseURL + location)
            let id = String(location.split(separator: "/").last!)
            let stored = try Data(contentsOf: folder.appendingPathComponent("\(id).source"))
            #expect(SHA256.hash(data: stored) == SHA256.hash(data: Data(bytes)))
            #expect(try await ingest.send(.get, "/api/ingest/jobs", token: publisher).items.count == 1)
        }
    }
}
