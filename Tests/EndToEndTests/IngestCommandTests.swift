import Foundation
import MarqueeTestSupport
import Testing

/// `marquee ingest` as an operator runs it, next to `marquee auth`, with tuspy as the publisher's client.
@Suite("marquee ingest")
struct IngestCommandTests {
    @Test("A publisher uploads a source with tuspy to `marquee ingest`; the bytes land intact and one job is queued")
    func uploadThroughTheCommand() throws {
        let authDatabase = try DatabaseKind.sqlite.freshURL()
        try ServiceProcess.addUser(email: "pub@example.com", role: "publisher", password: "publisher passphrase", database: authDatabase)
        let auth = try ServiceProcess("auth", ["--database", authDatabase], environment: ["MARQUEE_AUTH_BCRYPT_COST": "10"])
        defer { auth.stop() }
        let data = try Scratch.newDirectory("ingest-data")
        let ingest = try ServiceProcess("ingest", ["--data", data.path, "--auth-url", auth.baseURL, "--workers", "0"])
        defer { ingest.stop() }

        let login = try JSONCall.send("POST", auth.url("/api/auth/login"), json: ["email": "pub@example.com", "password": "publisher passphrase"])
        let token = try #require(login.body["access_token"] as? String)
        let options = try Curl.fetch(ingest.url("/api/ingest/uploads"), ["-X", "OPTIONS"])
        #expect(options.status == 204 && options.header("Tus-Version") == "1.0.0")

        let source = Scratch.newFile("source")
        var generator = SeededGenerator(seed: 4)
        try Data((0..<3_000_000).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: source)
        let title = "01jd0000000000000000000000"
        let url = try PythonEnvironment.run(
            """
            from tusclient import client
            tus = client.TusClient("\(ingest.url("/api/ingest/uploads"))", headers={"Authorization": "Bearer \(token)"})
            uploader = tus.uploader("\(source.path)", chunk_size=1000000, metadata={"title_id": "\(title)"})
            uploader.upload()
            print(uploader.url)
            """
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        let id = try #require(url.split(separator: "/").last.map(String.init))
        let stored = try Data(contentsOf: data.appendingPathComponent("uploads/\(id).source"))
        #expect(stored == (try Data(contentsOf: source)))

        let jobs = try JSONCall.send("GET", ingest.url("/api/ingest/jobs"), token: token)
        let items = jobs.body["items"] as? [[String: Any]] ?? []
        #expect(jobs.status == 200 && items.count == 1)
        #expect(items.first?["title_id"] as? String == title && items.first?["status"] as? String == "queued")
    }
}
