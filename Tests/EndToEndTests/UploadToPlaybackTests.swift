import Foundation
import MarqueeStore
import MarqueeTestSupport
import Testing

/// The whole ingest path as separate processes: a publisher uploads a movie with tuspy to
/// `marquee ingest`, whose worker probes, transcodes and packages it, publishes it to the store
/// and tells `marquee catalog`; once published, it plays through `marquee origin` over HLS and
/// DASH. No step by hand between the upload and the package. Run on a folder store and on an S3
/// bucket (moto), where the source travels through the bucket and the origin serves from it
/// through its read-through cache, as on separate machines.
@Suite("From upload to playback")
struct UploadToPlaybackTests {
    enum StoreKind: String, CaseIterable, Sendable {
        case folder
        case s3
    }

    @Test("A movie uploaded with tuspy becomes a playable HLS+DASH package, and the catalog knows its version", arguments: StoreKind.allCases)
    func uploadToPlayback(kind: StoreKind) async throws {
        let authDatabase = try DatabaseKind.sqlite.freshURL()
        try ServiceProcess.addUser(email: "pub@example.com", role: "publisher", password: "publisher passphrase", database: authDatabase)
        let auth = try ServiceProcess("auth", ["--database", authDatabase], environment: ["MARQUEE_AUTH_BCRYPT_COST": "10"])
        defer { auth.stop() }
        // Ingest tells the catalog with its service credential, not as a user.
        let ingestCredential = try ServiceCredentialFile.make("ingest-credential")
        let gatewayCredential = try ServiceCredentialFile.make("gateway-credential")
        let catalog = try ServiceProcess(
            "catalog",
            [
                "--database", try DatabaseKind.sqlite.freshURL(), "--auth-url", auth.baseURL, "--ingest-credential-file", ingestCredential.path,
                "--gateway-credential-file", gatewayCredential.path,
            ])
        defer { catalog.stop() }
        let data = try Scratch.newDirectory("ingest-node")
        let media = data.appendingPathComponent("media")
        var moto: MotoServer?
        defer { moto?.stop() }
        var bucket: S3Store?
        var sourceBucket: S3Store?
        var location = media.path
        var sourceArguments: [String] = []
        if kind == .s3 {
            let server = try MotoServer()
            moto = server
            bucket = try S3Store(.init(endpoint: server.endpoint, region: "eu-west-1", bucket: "marquee-media", accessKey: "test", secretKey: "test-secret"))
            try await bucket!.createBucket()
            location = "s3://marquee-media?endpoint=\(server.endpoint)&region=eu-west-1"
            // Sources in a bucket of their own: an S3 package store requires one (never where packages are served).
            sourceBucket = try S3Store(.init(endpoint: server.endpoint, region: "eu-west-1", bucket: "marquee-sources", accessKey: "test", secretKey: "test-secret"))
            try await sourceBucket!.createBucket()
            sourceArguments = ["--source-store", "s3://marquee-sources?endpoint=\(server.endpoint)&region=eu-west-1"]
        }
        let credentials = StoreOrigin.credentials
        let ingest = try ServiceProcess(
            "ingest",
            [
                "--data", data.path, "--auth-url", auth.baseURL, "--catalog-url", catalog.baseURL, "--catalog-credential-file", ingestCredential.path,
                "--store", location,
            ] + sourceArguments, environment: credentials)
        defer { ingest.stop() }

        let login = try JSONCall.send("POST", auth.url("/api/auth/login"), json: ["email": "pub@example.com", "password": "publisher passphrase"])
        let token = try #require(login.body["access_token"] as? String)
        let created = try JSONCall.send("POST", catalog.url("/api/catalog/titles"), token: token, json: ["name": "Uploaded", "price_per_minute": 1, "currency": "EUR"])
        let title = try #require(created.body["id"] as? String)

        // A source for a title the catalog does not have is refused before a byte is taken.
        let unknown = try JSONCall.send(
            "POST", ingest.url("/api/ingest/uploads"), token: token,
            headers: ["Tus-Resumable: 1.0.0", "Upload-Length: 1000", "Upload-Metadata: title_id \(Data("01jd0000000000000000000000".utf8).base64EncodedString())"])
        #expect(unknown.status == 422, "\(unknown.body)")
        #expect((unknown.body["detail"] as? String ?? "").contains("not a title in the catalog"), "\(unknown.body)")

        let movie = Scratch.newFile("movie.mp4")
        let made = try Tool.run(
            "/usr/bin/ffmpeg",
            ["-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=854x480:rate=25:duration=6", "-f", "lavfi", "-i",
             "sine=frequency=500:sample_rate=48000:duration=6", "-c:v", "libx264", "-c:a", "aac", "-shortest", "-f", "mp4", movie.path])
        #expect(made.termination == .exited(0))
        let uploadURL = try PythonEnvironment.run(
            """
            from tusclient import client
            tus = client.TusClient("\(ingest.url("/api/ingest/uploads"))", headers={"Authorization": "Bearer \(token)"})
            uploader = tus.uploader("\(movie.path)", chunk_size=262144, metadata={"title_id": "\(title)", "filename": "movie.mp4"})
            uploader.upload()
            print(uploader.url)
            """
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(uploadURL.contains("/api/ingest/uploads/"))

        // The worker takes it from here; the catalog moves the title to ready with the version.
        var version: String?
        #expect(try waitUntil(timeout: .seconds(120), interval: .milliseconds(250)) {
            let reply = try JSONCall.send("GET", catalog.url("/api/catalog/titles/\(title)"), token: token)
            version = (reply.body["package"] as? [String: Any])?["version"] as? String
            return reply.body["status"] as? String == "ready" && version != nil
        })
        let jobs = try JSONCall.send("GET", ingest.url("/api/ingest/jobs"), token: token)
        let job = (jobs.body["items"] as? [[String: Any]])?.first
        #expect(job?["status"] as? String == "succeeded" && job?["progress_percent"] as? Double == 100)
        let published = try #require(version)
        let uploadID = String(uploadURL.split(separator: "/").last ?? "")
        if let bucket, let sourceBucket {
            #expect(try await bucket.head(ObjectKey("titles/\(title)/\(published)/master.m3u8")) != nil)
            #expect(try await sourceBucket.head(ObjectKey("sources/\(uploadID)")) != nil, "the source went through the source bucket")
            #expect(try await bucket.head(ObjectKey("sources/\(uploadID)")) == nil, "the source sits in the bucket the origin serves")
        } else {
            #expect(FileManager.default.fileExists(atPath: media.appendingPathComponent("titles/\(title)/\(published)/master.m3u8").path))
            // By default sources stay in the data folder, never under the served package store.
            #expect(FileManager.default.fileExists(atPath: data.appendingPathComponent("sources/\(uploadID)").path))
            #expect(!FileManager.default.fileExists(atPath: media.appendingPathComponent("sources/\(uploadID)").path))
        }
        #expect(try JSONCall.send("POST", catalog.url("/api/catalog/titles/\(title)/publish"), token: token).status == 200)

        let config = try configFile(
            """
            services:
              catalog: \(catalog.baseURL)
              catalog_credential_file: \(gatewayCredential.path)
            catalog:
              wait_seconds: 5
            """)
        let cache = try Scratch.newDirectory("origin-cache")
        let origin =
            kind == .s3
            ? try ServerProcess(root: cache, environment: credentials, configFile: config, serving: ["--store", location, "--cache-dir", cache.path])
            : try ServerProcess(root: media, configFile: config)
        defer { origin.stop() }
        let master = origin.url("/titles/\(title)/\(published)/master.m3u8")
        #expect(try waitUntil(timeout: .seconds(15)) { try Curl.fetch(master).status == 200 })
        for manifest in ["master.m3u8", "manifest.mpd"] {
            let played = try Tool.run(
                "/usr/bin/ffmpeg", ["-nostdin", "-v", "error", "-i", origin.url("/titles/\(title)/\(published)/\(manifest)"), "-map", "0", "-f", "null", "-"],
                timeout: .seconds(120))
            #expect(played.termination == .exited(0) && played.stderrText.isEmpty, "\(manifest): \(played.stderrText)")
        }
    }
}
