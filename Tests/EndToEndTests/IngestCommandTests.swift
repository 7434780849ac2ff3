import Foundation
import Glibc
import MarqueeTestSupport
import Testing

/// `marquee ingest` as an operator runs it, next to `marquee auth`, with tuspy as the publisher's client.
@Suite("marquee ingest")
struct IngestCommandTests {
    @Test("A publisher uploads a source with tuspy to `marquee ingest`; the bytes land intact in the store and one job is queued")
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
        // Handed to the source store (by default <data>/sources, never under the served <data>/media).
        let stored = try Data(contentsOf: data.appendingPathComponent("sources/\(id)"))
        #expect(!FileManager.default.fileExists(atPath: data.appendingPathComponent("media/sources/\(id)").path))
        #expect(stored == (try Data(contentsOf: source)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent("uploads").path).isEmpty)

        let jobs = try JSONCall.send("GET", ingest.url("/api/ingest/jobs"), token: token)
        let items = jobs.body["items"] as? [[String: Any]] ?? []
        #expect(jobs.status == 200 && items.count == 1)
        #expect(items.first?["title_id"] as? String == title && items.first?["status"] as? String == "queued")
    }

    @Test("A worker process killed (SIGKILL) mid-job: another node's worker finishes it, and exactly one package version is published")
    func killedWorker() throws {
        let authDatabase = try DatabaseKind.sqlite.freshURL()
        try ServiceProcess.addUser(email: "pub@example.com", role: "publisher", password: "publisher passphrase", database: authDatabase)
        let auth = try ServiceProcess("auth", ["--database", authDatabase], environment: ["MARQUEE_AUTH_BCRYPT_COST": "10"])
        defer { auth.stop() }
        // Two nodes sharing one queue database and one store, as two machines would.
        let queue = try DatabaseKind.sqlite.freshURL()
        let store = try Scratch.newDirectory("shared-store")
        let sources = try Scratch.newDirectory("shared-sources")
        let source = Scratch.newFile("source.mp4")
        let made = try Tool.run(try MarqueeBinary.locate().path, ["test-clip", source.path, "--seconds", "40", "--size", "640x360"], timeout: .seconds(120))
        #expect(made.termination == .exited(0), "\(made.stderrText)")
        let lease = ["MARQUEE_INGEST_LEASE_S": "3"]
        func node(_ name: String) throws -> ServiceProcess {
            try ServiceProcess(
                "ingest",
                ["--data", try Scratch.newDirectory(name).path, "--database", queue, "--auth-url", auth.baseURL, "--workers", "1", "--store", store.path,
                 "--source-store", sources.path],
                environment: lease)
        }
        let first = try node("node-a")
        let login = try JSONCall.send("POST", auth.url("/api/auth/login"), json: ["email": "pub@example.com", "password": "publisher passphrase"])
        let token = try #require(login.body["access_token"] as? String)
        let title = "01jd0000000000000000000000"
        _ = try PythonEnvironment.run(
            """
            from tusclient import client
            tus = client.TusClient("\(first.url("/api/ingest/uploads"))", headers={"Authorization": "Bearer \(token)"})
            tus.uploader("\(source.path)", chunk_size=1000000, metadata={"title_id": "\(title)"}).upload()
            """)
        func job() throws -> [String: Any] {
            let jobs = try JSONCall.send("GET", first.url("/api/ingest/jobs"), token: token).body["items"] as? [[String: Any]] ?? []
            return jobs.first ?? [:]
        }
        // Killed while it transcodes: no heartbeat, no clean-up, no give-back.
        #expect(waitUntil(timeout: .seconds(60), interval: .milliseconds(50)) { (try? job())?["status"] as? String == "running" })
        // Mid-transcode: a heartbeat has reported progress (every second with a 3 s lease).
        #expect(waitUntil(timeout: .seconds(60), interval: .milliseconds(50)) { ((try? job())?["progress_percent"] as? Double ?? 0) > 0 })
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()

        let second = try node("node-b")
        defer { second.stop() }
        func jobOnSecond() throws -> [String: Any] {
            let jobs = try JSONCall.send("GET", second.url("/api/ingest/jobs"), token: token).body["items"] as? [[String: Any]] ?? []
            return jobs.first ?? [:]
        }
        #expect(waitUntil(timeout: .seconds(180), interval: .milliseconds(200)) { (try? jobOnSecond())?["status"] as? String == "succeeded" })
        let finished = try jobOnSecond()
        #expect(finished["status"] as? String == "succeeded", "\(finished)")
        #expect(finished["attempts"] as? Int == 2)
        let versions = try FileManager.default.contentsOfDirectory(atPath: store.appendingPathComponent("titles/\(title)").path).filter { !$0.hasPrefix(".") }
        #expect(versions == [finished["id"] as? String ?? "?"], "one version: \(versions)")
        let package = store.appendingPathComponent("titles/\(title)/\(versions.first ?? "")")
        #expect(FileManager.default.fileExists(atPath: package.appendingPathComponent("master.m3u8").path))
        #expect(FileManager.default.fileExists(atPath: package.appendingPathComponent("manifest.mpd").path))
        let played = try PlaybackTests.decode(package.appendingPathComponent("master.m3u8").path)
        #expect(played.termination == .exited(0) && played.stderr.isEmpty, "\(played.stderr)")
        #expect(played.frames(stream: 0) >= 40 * 25 - 2)
    }

    @Test("With an S3 package store and no ingest.source_store, marquee ingest refuses to start: sources never sit where packages are served")
    func s3StoreNeedsASeparateSourceStore() throws {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MARQUEE_") }
        environment["AWS_ACCESS_KEY_ID"] = "test"
        environment["AWS_SECRET_ACCESS_KEY"] = "test-secret"
        let refused = try RunningTool(
            try MarqueeBinary.locate().path,
            ["ingest", "--listen", "127.0.0.1:0", "--data", try Scratch.newDirectory("s3-ingest").path, "--workers", "0",
             "--store", "s3://media?endpoint=http://127.0.0.1:9&region=eu-west-1"],
            environment: environment
        ).finish(timeout: .seconds(60))
        #expect(refused.termination != .exited(0))
        #expect(refused.stderrText.contains("ingest.source_store is required with an S3 package store"), "\(refused.stderrText)")
    }
}
