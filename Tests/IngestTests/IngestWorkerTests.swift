import Foundation
import MarqueeIngest
import MarqueeMedia
import MarqueeServiceKit
import MarqueeStore
import MarqueeTestSupport
import NIOConcurrencyHelpers
import Testing

/// Workers turn queued sources into published packages: exactly one version per job, even when
/// the first worker dies mid-job, and a bad source fails with its reason and publishes nothing.
@Suite("Ingest workers (SQLite and PostgreSQL)")
struct IngestWorkerTests {
    final class Recorder: PackageAnnouncer {
        let calls = NIOLockedValueBox<[(String, String, Int)]>([])
        func announce(titleID: String, version: String, summary: PackageSummary) async throws {
            calls.withLockedValue { $0.append((titleID, version, summary.renditions.count)) }
        }
    }

    static func source() throws -> String {
        // One per call: parallel test cases must not race on one file.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-ingest-source-\(UUID().uuidString.prefix(8)).mp4").path
        let made = try Subprocess.run(
            "/usr/bin/ffmpeg",
            ["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=3", "-f", "lavfi", "-i",
             "sine=frequency=440:sample_rate=48000:duration=3", "-c:v", "libx264", "-c:a", "aac", "-shortest", path + ".tmp.mp4"])
        guard made.succeeded else { throw TestEnvironmentError("ffmpeg: \(made.output)") }
        try FileManager.default.moveItem(atPath: path + ".tmp.mp4", toPath: path)
        return path
    }

    /// Regular files anywhere under `folder` (none when it does not exist yet).
    static func filesWritten(under folder: String) -> Int {
        guard let walk = FileManager.default.enumerator(atPath: folder) else { return 0 }
        var count = 0
        while let name = walk.nextObject() as? String {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder + "/" + name, isDirectory: &isFolder), !isFolder.boolValue { count += 1 }
        }
        return count
    }

    static func worker(_ jobs: IngestJobs, _ store: any ObjectStore, id: String, announcer: Recorder, preset: String = "ultrafast") -> IngestWorker {
        var settings = TranscodeSettings()
        settings.ladderHeights = [360]
        settings.segmentSeconds = 2
        settings.preset = preset
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-work-\(UUID().uuidString.prefix(8))").path
        return IngestWorker(jobs: jobs, store: store, workerID: id, lease: .seconds(30), settings: settings, workFolder: work, announcer: announcer)
    }

    @Test("A worker that died mid-job: another finishes it, and exactly one package version is published", arguments: DatabaseKind.allCases)
    func deadWorker(kind: DatabaseKind) async throws {
        let database = try await openDatabase(try kind.freshURL())
        try await IngestJobs.migrate(database)
        let jobs = IngestJobs(database: database)
        let store = try FileSystemStore(root: FileManager.default.temporaryDirectory.appendingPathComponent("marquee-media-\(UUID().uuidString.prefix(8))").path)
        let title = Identifier.make()
        let job = try await jobs.enqueue(titleID: title, source: try Self.source())
        // The first worker claimed it and then vanished (no heartbeat): its lease ran out.
        let claimed = try #require(try await jobs.claim(worker: "dead-node", lease: .seconds(5), at: unixMilliseconds() - 60_000))
        #expect(claimed.id == job.id)
        let recorder = Recorder()
        let finished = try #require(try await Self.worker(jobs, store, id: "live-node", announcer: recorder).processNext())
        #expect(finished.status == .succeeded, "\(finished.error ?? "")")
        #expect(finished.packageVersion == job.id)
        #expect(finished.attempts == 2)
        // The dead worker comes back: its completion is refused.
        #expect(try await jobs.complete(job: job.id, worker: "dead-node", packageVersion: "other") == false)
        let versions = Set(try await store.list(prefix: "titles/\(title)/").map { $0.key.split(separator: "/")[2] })
        #expect(versions == [Substring(job.id)], "one version folder: \(versions)")
        let keys = try await store.list(prefix: "titles/\(title)/\(job.id)/").map(\.key)
        #expect(keys.contains("titles/\(title)/\(job.id)/master.m3u8") && keys.contains("titles/\(title)/\(job.id)/manifest.mpd"))
        #expect(keys.contains { $0.hasSuffix("poster.jpg") } && keys.contains { $0.hasSuffix("thumbnails.vtt") })
        #expect(recorder.calls.withLockedValue { $0.map(\.0) } == [title])
        #expect(try await Self.worker(jobs, store, id: "idle", announcer: recorder).processNext() == nil, "nothing left to do")
        await database.close()
    }

    @Test("A worker stopped mid-job (node shutting down) gives the job back: queued, the attempt not counted, nothing published; the next worker finishes it", arguments: DatabaseKind.allCases)
    func stoppedWorker(kind: DatabaseKind) async throws {
        let database = try await openDatabase(try kind.freshURL())
        try await IngestJobs.migrate(database)
        let jobs = IngestJobs(database: database)
        let store = try FileSystemStore(root: FileManager.default.temporaryDirectory.appendingPathComponent("marquee-media-\(UUID().uuidString.prefix(8))").path)
        // Long enough to be caught in the middle: a generated 40 s clip.
        let source = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-long-\(UUID().uuidString.prefix(8)).mp4").path
        try TestClip.write(to: source, options: TestClip.Options(width: 640, height: 360, framesPerSecond: 25, seconds: 40))
        defer { try? FileManager.default.removeItem(atPath: source) }
        let title = Identifier.make()
        let job = try await jobs.enqueue(titleID: title, source: source)
        let recorder = Recorder()
        // A slow preset, so the transcode lasts well beyond the moment its first files appear.
        let worker = Self.worker(jobs, store, id: "stopping-node", announcer: recorder, preset: "slower")
        let running = Task { await worker.run(poll: .milliseconds(50)) }
        // Caught in the middle: as soon as the packager has started writing the package in the work
        // folder, stop the worker. A thread of its own watches from the start, so the stop never
        // waits for this test's task to be scheduled: in a loaded clean-clone run the cooperative
        // pool once held this task until the transcode had ended and the package was going out,
        // and the late stop rightly let it publish.
        let folder = worker.workFolder
        let started = NIOLockedValueBox(false)
        let watcher = Thread {
            let deadline = ContinuousClock.now + .seconds(120)
            while Self.filesWritten(under: folder) == 0 && ContinuousClock.now < deadline { usleep(2_000) }
            started.withLockedValue { $0 = Self.filesWritten(under: folder) > 0 }
            running.cancel()
        }
        watcher.start()
        await running.value
        #expect(started.withLockedValue { $0 }, "the transcode started")
        let released = try #require(try await jobs.job(job.id))
        #expect(released.status == .queued, "\(released.status) \(released.error ?? "")")
        #expect(released.attempts == 0)
        #expect(try await store.list(prefix: "titles/\(title)/").isEmpty)
        #expect(recorder.calls.withLockedValue { $0.isEmpty })
        let finished = try #require(try await Self.worker(jobs, store, id: "next-node", announcer: recorder).processNext())
        #expect(finished.status == .succeeded, "\(finished.error ?? "")")
        #expect(finished.attempts == 1)
        await database.close()
    }

    @Test("A bad source fails once, with its reason, and publishes nothing", arguments: DatabaseKind.allCases)
    func badSource(kind: DatabaseKind) async throws {
        let database = try await openDatabase(try kind.freshURL())
        try await IngestJobs.migrate(database)
        let jobs = IngestJobs(database: database)
        let store = try FileSystemStore(root: FileManager.default.temporaryDirectory.appendingPathComponent("marquee-media-\(UUID().uuidString.prefix(8))").path)
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-bad-\(UUID().uuidString.prefix(8)).mp4")
        try Data("this is a shopping list, not a film".utf8).write(to: bad)
        let title = Identifier.make()
        _ = try await jobs.enqueue(titleID: title, source: bad.path)
        let recorder = Recorder()
        let finished = try #require(try await Self.worker(jobs, store, id: "node", announcer: recorder).processNext())
        #expect(finished.status == .failed)
        #expect(finished.error?.contains("not a video") == true, "\(finished.error ?? "")")
        #expect(try await store.list(prefix: "titles/\(title)/").isEmpty)
        #expect(recorder.calls.withLockedValue { $0.isEmpty })
        #expect(try await Self.worker(jobs, store, id: "node", announcer: recorder).processNext() == nil, "not retried")
        await database.close()
    }

    @Test("An upload that is a playlist naming another title's media fails once, as not a single-file movie container, and publishes nothing")
    func playlistSource() async throws {
        let database = try await openDatabase(try DatabaseKind.sqlite.freshURL())
        try await IngestJobs.migrate(database)
        let jobs = IngestJobs(database: database)
        let store = try FileSystemStore(root: FileManager.default.temporaryDirectory.appendingPathComponent("marquee-media-\(UUID().uuidString.prefix(8))").path)
        // Another title's source on this machine, and an upload naming it as an HLS segment.
        let victim = try Self.source()
        let segment = victim + ".ts"
        let remuxed = try Subprocess.run("/usr/bin/ffmpeg", ["-nostdin", "-v", "error", "-y", "-i", victim, "-c", "copy", segment])
        guard remuxed.succeeded else { throw TestEnvironmentError("ffmpeg: \(remuxed.output)") }
        let upload = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-upload-\(UUID().uuidString.prefix(8))")
        try Data("#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3.0,\n\(segment)\n#EXT-X-ENDLIST\n".utf8).write(to: upload)
        let title = Identifier.make()
        _ = try await jobs.enqueue(titleID: title, source: upload.path)
        let recorder = Recorder()
        let finished = try #require(try await Self.worker(jobs, store, id: "node", announcer: recorder).processNext())
        #expect(finished.status == .failed)
        #expect(finished.error == "not a single-file movie container: hls", "\(finished.error ?? "")")
        #expect(try await store.list(prefix: "titles/\(title)/").isEmpty)
        #expect(recorder.calls.withLockedValue { $0.isEmpty })
        #expect(try await Self.worker(jobs, store, id: "node", announcer: recorder).processNext() == nil, "not retried")
        await database.close()
    }

    @Test("A worker on another machine fetches a stored source from S3 and publishes there; a missing source fails once with its reason")
    func sourceFromS3() async throws {
        let database = try await openDatabase(try DatabaseKind.sqlite.freshURL())
        try await IngestJobs.migrate(database)
        let jobs = IngestJobs(database: database)
        let moto = try MotoServer()
        defer { moto.stop() }
        let store = try S3Store(
            .init(endpoint: moto.endpoint, region: "eu-west-1", bucket: "marquee-media", accessKey: "test", secretKey: "test-secret"))
        try await store.createBucket()
        let source = try Self.source()
        defer { try? FileManager.default.removeItem(atPath: source) }
        try await store.put(try ObjectKey("sources/upload-1"), file: source, contentType: nil)
        let title = Identifier.make()
        let job = try await jobs.enqueue(titleID: title, source: JobSource.object(try ObjectKey("sources/upload-1")).column)
        #expect(job.source == "store:sources/upload-1")
        let recorder = Recorder()
        let worker = Self.worker(jobs, store, id: "remote-node", announcer: recorder)
        let finished = try #require(try await worker.processNext())
        #expect(finished.status == .succeeded, "\(finished.error ?? "")")
        let published = try await store.list(prefix: "titles/\(title)/\(job.id)/").map(\.key)
        #expect(published.contains("titles/\(title)/\(job.id)/master.m3u8") && published.contains("titles/\(title)/\(job.id)/manifest.mpd"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: worker.workFolder).isEmpty, "the fetched source and the scratch package are removed")

        let other = Identifier.make()
        _ = try await jobs.enqueue(titleID: other, source: JobSource.object(try ObjectKey("sources/never-uploaded")).column)
        let failed = try #require(try await worker.processNext())
        #expect(failed.status == .failed && failed.attempts == 1)
        #expect(failed.error == "the source sources/never-uploaded is not in the object store", "\(failed.error ?? "")")
        #expect(try await store.list(prefix: "titles/\(other)/").isEmpty)
        #expect(try await worker.processNext() == nil, "not retried")
        await database.close()
    }
}
