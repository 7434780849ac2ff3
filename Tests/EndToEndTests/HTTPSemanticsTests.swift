import MarqueeTestSupport
import Foundation
import Glibc
import Testing

/// What a player, a CDN edge or a browser sees of `marquee origin` through a real client (curl):
/// media types and caching headers, HEAD, ranges, conditional requests, CORS, errors, large and
/// parallel downloads, files changing on disk, keep-alive and pipelining.
@Suite("HTTP semantics")
struct HTTPSemanticsTests {
    static let manifestCaching = "public, max-age=2"
    static let segmentCaching = "public, max-age=31536000, immutable"

    /// `Last-Modified` for a file: its modification time, whole seconds, IMF-fixdate.
    static func httpDate(modificationOf url: URL) throws -> String {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        let date = try #require(attributes[.modificationDate] as? Date)
        return httpDate(Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)))
    }

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }

    static func isStrongETag(_ value: String?) -> Bool {
        guard let value, value.count > 2 else { return false }
        return value.hasPrefix("\"") && value.hasSuffix("\"") && !value.dropFirst().dropLast().contains("\"")
    }

    // MARK: - Media types and caching

    struct ServedType: Sendable, CustomTestStringConvertible {
        var path: String
        var contentType: String
        /// nil: not checked (the brief leaves it to configuration).
        var cacheControl: String?
        var testDescription: String { path }
    }

    static let servedTypes: [ServedType] = [
        ServedType(path: MediaFixtures.hlsMaster, contentType: "application/vnd.apple.mpegurl", cacheControl: manifestCaching),
        ServedType(path: MediaFixtures.hlsMedia, contentType: "application/vnd.apple.mpegurl", cacheControl: manifestCaching),
        ServedType(path: MediaFixtures.dashManifest, contentType: "application/dash+xml", cacheControl: manifestCaching),
        ServedType(path: MediaFixtures.hlsSegment, contentType: "video/iso.segment", cacheControl: segmentCaching),
        ServedType(path: MediaFixtures.dashSegment, contentType: "video/iso.segment", cacheControl: segmentCaching),
        ServedType(path: MediaFixtures.hlsInit, contentType: "video/mp4", cacheControl: segmentCaching),
        ServedType(path: "/types/sample.mp4", contentType: "video/mp4", cacheControl: segmentCaching),
        ServedType(path: "/types/sample.m4a", contentType: "audio/mp4", cacheControl: segmentCaching),
        ServedType(path: "/types/sample.ts", contentType: "video/mp2t", cacheControl: segmentCaching),
        ServedType(path: "/types/sample.vtt", contentType: "text/vtt; charset=utf-8", cacheControl: nil),
        ServedType(path: "/types/sample.json", contentType: "application/json", cacheControl: nil),
    ]

    @Test("GET serves the file with its media type, caching, validators and length", arguments: servedTypes)
    func servesFileWithHeaders(_ type: ServedType) throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }

        let response = try Curl.fetch(server.url(type.path))
        let expected = try fixtures.contents(type.path)
        #expect(response.termination == .exited(0), "\(response.stderr)")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == type.contentType)
        if let cacheControl = type.cacheControl { #expect(response.header("Cache-Control") == cacheControl) }
        #expect(response.header("Content-Length") == "\(expected.count)")
        #expect(sameBytes(response.body, expected), "body differs from the file on disk: \(mismatch(response.body, expected))")
        #expect(Self.isStrongETag(response.header("ETag")), "ETag \(response.header("ETag") ?? "missing") is not a strong entity tag")
        #expect(response.header("Last-Modified") == (try Self.httpDate(modificationOf: fixtures.file(type.path))))
        #expect(response.header("Accept-Ranges") == "bytes")
        #expect(response.header("Date") != nil)

        // The validator is stable while the file does not change.
        let again = try Curl.fetch(server.url(type.path))
        #expect(again.header("ETag") == response.header("ETag"))
    }

    @Test("HEAD sends the GET headers and no body")
    func headHasHeadersAndNoBody() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }
        let smallBytes = try fixtures.contents(MediaFixtures.small)

        for path in [MediaFixtures.big, MediaFixtures.small, MediaFixtures.hlsMaster] {
            let size = try fixtures.contents(path).count
            let get = try Curl.fetch(server.url(path))
            let head = try Curl.fetch(server.url(path), ["-I"])
            #expect(head.termination == .exited(0), "\(head.stderr)")
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == "\(size)", "\(path)")
            #expect(head.header("Content-Type") == get.header("Content-Type"))
            #expect(head.header("ETag") == get.header("ETag"))
            #expect(head.header("Last-Modified") == get.header("Last-Modified"))
            #expect(head.header("Cache-Control") == get.header("Cache-Control"))
            // With -I curl writes the head where the body would go: nothing else may be there.
            #expect(head.bodyText.hasPrefix("HTTP/1.1 200") && head.bodyText.hasSuffix("\r\n\r\n"), "bytes after the HEAD response head")

            // curl never reads a body after HEAD; a raw socket shows none is sent: the next
            // pipelined response starts right after the HEAD response's head.
            let connection = try RawConnection(port: server.mediaPort)
            try connection.send("HEAD \(path) HTTP/1.1\r\nHost: t\r\n\r\nGET \(MediaFixtures.small) HTTP/1.1\r\nHost: t\r\n\r\n")
            let headResponse = try connection.readResponse(bodyless: true)
            #expect(headResponse.status == 200)
            #expect(headResponse.header("Content-Length") == "\(size)")
            let next = try connection.readResponse()
            #expect(next.status == 200, "the response after HEAD does not start where the HEAD head ended")
            #expect(sameBytes(next.body, smallBytes), "\(mismatch(next.body, smallBytes))")
        }
    }

    // MARK: - Ranges

    struct RangeCase: Sendable, CustomTestStringConvertible {
        var path: String
        var testDescription: String
        /// `files.large_files` for files over the memory limit: "send" (mapped, the default) or "splice".
        var largeFiles = "send"

        var environment: [String: String] { ["MARQUEE_FILES_LARGE_FILES": largeFiles] }
        var isSpliced: Bool { largeFiles == "splice" && path != MediaFixtures.small && !path.hasSuffix(".m3u8") }
    }

    /// Both ways a large file leaves the server.
    static let largeFileModes = ["send", "splice"]

    @Test(
        "Single ranges give 206 with the exact bytes, unsatisfiable ones 416, several ranges the whole file",
        arguments: [
            RangeCase(path: MediaFixtures.big, testDescription: "2.5 MB file sent from its mapping"),
            RangeCase(path: MediaFixtures.big, testDescription: "2.5 MB spliced file", largeFiles: "splice"),
            RangeCase(path: MediaFixtures.small, testDescription: "3 kB in-memory file"),
        ])
    func ranges(_ file: RangeCase) throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root, environment: file.environment)
        defer { server.stop() }
        let content = try fixtures.contents(file.path)
        let length = content.count

        // (Range header value, first byte, last byte)
        let cases: [(String, Int, Int)] = [
            ("bytes=0-99", 0, 99),
            ("bytes=-500", length - 500, length - 1),
            ("bytes=\(length - 1000)-", length - 1000, length - 1),
            ("bytes=1000-1999", 1000, 1999),
            ("bytes=\(length / 2)-\(length + 5000)", length / 2, length - 1),
            ("bytes=\(length - 1)-", length - 1, length - 1),
        ]
        for (range, first, last) in cases {
            let response = try Curl.fetch(server.url(file.path), ["-H", "Range: \(range)"])
            #expect(response.status == 206, "\(range)")
            #expect(response.header("Content-Range") == "bytes \(first)-\(last)/\(length)", "\(range)")
            #expect(response.header("Content-Length") == "\(last - first + 1)", "\(range)")
            let slice = content.subdata(in: first..<(last + 1))
            #expect(sameBytes(response.body, slice), "\(range): bytes differ from the file: \(mismatch(response.body, slice))")
        }
        if file.path == MediaFixtures.big {
            // Spread over the whole file, crossing splice-chunk boundaries.
            let response = try Curl.fetch(server.url(file.path), ["-r", "65530-1300000"])
            #expect(response.status == 206)
            let slice = content.subdata(in: 65530..<1_300_001)
            #expect(sameBytes(response.body, slice), "\(mismatch(response.body, slice))")
        }

        for range in ["bytes=\(length)-", "bytes=\(length + 10)-\(length + 20)", "bytes=-0"] {
            let response = try Curl.fetch(server.url(file.path), ["-H", "Range: \(range)"])
            #expect(response.status == 416, "\(range)")
            #expect(response.header("Content-Range") == "bytes */\(length)", "\(range)")
        }

        let several = try Curl.fetch(server.url(file.path), ["-H", "Range: bytes=0-1,5-6"])
        #expect(several.status == 200)
        #expect(several.header("Content-Range") == nil)
        #expect(sameBytes(several.body, content), "\(mismatch(several.body, content))")

        // Which sending path served it: only files over 64 KiB, and only in splice mode, are spliced.
        let spliced = try server.metric("marquee_http_spliced_bytes_total")
        if file.isSpliced {
            #expect(spliced > 0, "the large file was not spliced")
        } else {
            #expect(spliced == 0, "the file was spliced instead of sent from memory or its mapping")
        }
    }

    // MARK: - Conditional requests

    @Test("If-None-Match and If-Modified-Since give 304 without a body")
    func notModified() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }

        for path in [MediaFixtures.hlsSegment, MediaFixtures.big] {
            let first = try Curl.fetch(server.url(path))
            let etag = try #require(first.header("ETag"))
            let lastModified = try #require(first.header("Last-Modified"))

            for condition in ["If-None-Match: \(etag)", "If-None-Match: \"other\", \(etag)", "If-None-Match: *", "If-Modified-Since: \(lastModified)"] {
                let response = try Curl.fetch(server.url(path), ["-H", condition])
                #expect(response.status == 304, "\(path) \(condition)")
                #expect(response.body.isEmpty)
                #expect(response.header("ETag") == etag)
            }
            let older = Self.httpDate(Date().addingTimeInterval(-86400 * 365 * 20))
            for condition in ["If-None-Match: \"other\"", "If-Modified-Since: \(older)"] {
                let response = try Curl.fetch(server.url(path), ["-H", condition])
                #expect(response.status == 200, "\(path) \(condition)")
                let fileBytes = try fixtures.contents(path)
                #expect(sameBytes(response.body, fileBytes), "\(mismatch(response.body, fileBytes))")
            }
        }
    }

    @Test("If-Range: a stale validator gets the whole file, the current one the range")
    func ifRange() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }
        let content = try fixtures.contents(MediaFixtures.big)
        let first = try Curl.fetch(server.url(MediaFixtures.big), ["-I"])
        let etag = try #require(first.header("ETag"))
        let lastModified = try #require(first.header("Last-Modified"))

        for stale in ["\"stale-etag\"", "W/\(etag)", Self.httpDate(Date(timeIntervalSince1970: 1_000_000_000))] {
            let response = try Curl.fetch(server.url(MediaFixtures.big), ["-r", "0-99", "-H", "If-Range: \(stale)"])
            #expect(response.status == 200, "If-Range: \(stale)")
            #expect(response.header("Content-Range") == nil)
            #expect(sameBytes(response.body, content), "If-Range: \(stale) did not get the whole file: \(mismatch(response.body, content))")
        }
        for current in [etag, lastModified] {
            let response = try Curl.fetch(server.url(MediaFixtures.big), ["-r", "0-99", "-H", "If-Range: \(current)"])
            #expect(response.status == 206, "If-Range: \(current)")
            #expect(sameBytes(response.body, content.subdata(in: 0..<100)), "\(mismatch(response.body, content.subdata(in: 0..<100)))")
        }
    }

    @Test("If-Match with another entity tag gets 412")
    func ifMatch() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }
        let etag = try #require(try Curl.fetch(server.url(MediaFixtures.small), ["-I"]).header("ETag"))

        let refused = try Curl.fetch(server.url(MediaFixtures.small), ["-H", "If-Match: \"not-this-one\""])
        #expect(refused.status == 412)
        #expect(refused.bodyText.contains("precondition"), "412 body does not say why: \(refused.bodyText.debugDescription)")
        let match = try Curl.fetch(server.url(MediaFixtures.small), ["-H", "If-Match: \(etag)"])
        #expect(match.status == 200)
        let smallBytes = try fixtures.contents(MediaFixtures.small)
        #expect(sameBytes(match.body, smallBytes), "\(mismatch(match.body, smallBytes))")
    }

    // MARK: - CORS

    @Test("A cross-origin GET gets Allow-Origin and the exposed headers; without Origin there is no CORS")
    func corsSimpleRequest() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }
        let exposed = "Content-Length, Content-Range, Accept-Ranges, ETag, Date"

        for options in [[], ["-r", "0-9"]] {
            let response = try Curl.fetch(server.url(MediaFixtures.hlsSegment), ["-H", "Origin: https://player.example"] + options)
            #expect([200, 206].contains(response.status))
            #expect(response.header("Access-Control-Allow-Origin") == "*")
            #expect(response.header("Access-Control-Expose-Headers") == exposed)
        }
        // A browser player must be able to read why a request failed, too.
        let missing = try Curl.fetch(server.url("/titles/demo/1/hls/nope.m4s"), ["-H", "Origin: https://player.example"])
        #expect(missing.status == 404)
        #expect(missing.header("Access-Control-Allow-Origin") == "*")

        let plain = try Curl.fetch(server.url(MediaFixtures.hlsSegment))
        #expect(plain.header("Access-Control-Allow-Origin") == nil)
    }

    @Test("A CORS preflight gets 204 with the allowed methods, the requested headers and a max age")
    func corsPreflight() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }

        let response = try Curl.fetch(
            server.url(MediaFixtures.hlsMaster),
            [
                "-X", "OPTIONS", "-H", "Origin: https://player.example", "-H", "Access-Control-Request-Method: GET",
                "-H", "Access-Control-Request-Headers: range, x-player-session",
            ])
        #expect(response.termination == .exited(0), "\(response.stderr)")
        #expect(response.status == 204)
        #expect(response.header("Access-Control-Allow-Origin") == "*")
        #expect(response.header("Access-Control-Allow-Methods") == "GET, HEAD, OPTIONS")
        #expect(response.header("Access-Control-Allow-Headers") == "range, x-player-session")
        let maxAge = try #require(response.header("Access-Control-Max-Age"))
        #expect((Int(maxAge) ?? 0) > 0, "Access-Control-Max-Age: \(maxAge)")
        #expect(response.body.isEmpty)

        // OPTIONS that is not a preflight just lists the methods.
        let options = try Curl.fetch(server.url(MediaFixtures.hlsMaster), ["-X", "OPTIONS"])
        #expect(options.status == 204)
        #expect(options.header("Allow") == "GET, HEAD, OPTIONS")
    }

    @Test("With a list of allowed origins only those get Allow-Origin, with Vary: Origin")
    func corsAllowedOrigins() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(
            root: fixtures.root, environment: ["MARQUEE_CORS_ALLOWED_ORIGINS": "https://a.example,https://b.example"])
        defer { server.stop() }

        for origin in ["https://a.example", "https://b.example"] {
            let response = try Curl.fetch(server.url(MediaFixtures.small), ["-H", "Origin: \(origin)"])
            #expect(response.status == 200)
            #expect(response.header("Access-Control-Allow-Origin") == origin)
            #expect(response.headers(named: "Vary").contains("Origin"))
        }
        let other = try Curl.fetch(server.url(MediaFixtures.small), ["-H", "Origin: https://evil.example"])
        #expect(other.status == 200)
        #expect(other.header("Access-Control-Allow-Origin") == nil)
        #expect(other.headers(named: "Vary").contains("Origin"), "a shared cache must not reuse one origin's answer for another")
    }

    // MARK: - Errors

    @Test("Methods other than GET, HEAD and OPTIONS get 405 with Allow", arguments: ["POST", "PUT", "DELETE", "PATCH", "TRACE", "BREW"])
    func methodNotAllowed(_ method: String) throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }

        let response = try Curl.fetch(server.url(MediaFixtures.small), ["-X", method])
        #expect(response.status == 405)
        #expect(response.header("Allow") == "GET, HEAD, OPTIONS")
        #expect(!response.bodyText.isEmpty, "405 without a body saying why")
    }

    @Test("Missing files, hidden files and directories get 404 with a body that says why")
    func notFound() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }

        let cases: [(path: String, reason: String)] = [
            ("/titles/demo/1/hls/seg_999.m4s", "no such file"),
            ("/titles/demo/2/master.m3u8", "no such file"),
            ("/files/dir", "no such file"),
            ("/files/dir/", "no such file"),
            ("/.git/config", "hidden"),
            ("/titles/.env", "hidden"),
        ]
        for (path, reason) in cases {
            let response = try Curl.fetch(server.url(path))
            #expect(response.status == 404, "\(path)")
            #expect(response.header("Content-Type")?.hasPrefix("text/plain") == true)
            #expect(response.bodyText.contains(reason), "\(path): body \(response.bodyText.debugDescription) does not say \(reason.debugDescription)")
            #expect(!response.bodyText.contains("secret"))
        }
    }

    // MARK: - Large and parallel downloads

    @Test("A 2.5 MB download is byte-identical", arguments: largeFileModes)
    func largeDownloadIsByteIdentical(mode: String) throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root, environment: ["MARQUEE_FILES_LARGE_FILES": mode])
        defer { server.stop() }

        let response = try Curl.fetch(server.url(MediaFixtures.big))
        #expect(response.termination == .exited(0), "\(response.stderr)")
        #expect(response.status == 200)
        #expect(response.header("Content-Length") == "\(MediaFixtures.bigSize)")
        let bigBytes = try fixtures.contents(MediaFixtures.big)
        #expect(sameBytes(response.body, bigBytes), "downloaded bytes differ from the file: \(mismatch(response.body, bigBytes))")
        // Counted as the kernel takes the bytes, which may be a moment after curl has them.
        let expectedSpliced = mode == "splice" ? Double(MediaFixtures.bigSize) : 0
        #expect(try waitUntil(timeout: .seconds(5)) { try server.metric("marquee_http_spliced_bytes_total") == expectedSpliced }, "spliced bytes do not match the \(mode) mode")
    }

    @Test("With the memory limit raised, the 2.5 MB file is sent from memory, byte-identical, ranges too")
    func largeFileFromMemory() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root, environment: ["MARQUEE_FILES_MEMORY_MAX_BYTES": "4194304"])
        defer { server.stop() }
        let content = try fixtures.contents(MediaFixtures.big)

        let whole = try Curl.fetch(server.url(MediaFixtures.big))
        #expect(whole.status == 200)
        #expect(sameBytes(whole.body, content), "\(mismatch(whole.body, content))")
        let tail = try Curl.fetch(server.url(MediaFixtures.big), ["-r", "-70000"])
        #expect(tail.status == 206)
        let tailBytes = content.subdata(in: (content.count - 70000)..<content.count)
        #expect(sameBytes(tail.body, tailBytes), "\(mismatch(tail.body, tailBytes))")
        #expect(try server.metric("marquee_http_spliced_bytes_total") == 0, "spliced although under the memory limit")
    }

    @Test("20 concurrent downloads of the 2.5 MB file are all byte-identical", arguments: largeFileModes)
    func parallelDownloadsAreByteIdentical(mode: String) throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root, environment: ["MARQUEE_FILES_LARGE_FILES": mode])
        defer { server.stop() }
        let expected = try fixtures.contents(MediaFixtures.big)

        let transfers = try (0..<20).map { _ in try Curl.start(server.url(MediaFixtures.big)) }
        let responses = try transfers.map { try $0.finish() }
        for (i, response) in responses.enumerated() {
            #expect(response.termination == .exited(0), "transfer \(i): \(response.stderr)")
            #expect(response.status == 200, "transfer \(i)")
            #expect(sameBytes(response.body, expected), "transfer \(i) got \(response.body.count) bytes that differ from the file: \(mismatch(response.body, expected))")
        }
        #expect(try waitUntil(timeout: .seconds(5)) { try server.metric(ServerProcess.responses(200)) == 20 })
    }

    // MARK: - Files changing on disk

    static func replaceAtomically(_ url: URL, with data: Data) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".tmp-\(UUID().uuidString)")
        try data.write(to: temporary)
        guard rename(temporary.path, url.path) == 0 else { throw ToolError(description: "rename: \(String(cString: strerror(errno)))") }
    }

    static func rewriteInPlace(_ url: URL, with data: Data) throws {
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: data)
    }

    @Test(
        "A file replaced by rename or rewritten in place is served new, with a new ETag",
        arguments: [
            RangeCase(path: "/live/playlist.m3u8", testDescription: "in-memory playlist"),
            RangeCase(path: "/live/big.m4s", testDescription: "mapped segment"),
            RangeCase(path: "/live/big.m4s", testDescription: "spliced segment", largeFiles: "splice"),
        ])
    func changedFilesAreServedNew(_ file: RangeCase) throws {
        let root = try Scratch.newDirectory("changing")
        defer { try? FileManager.default.removeItem(at: root) }
        let url = root.appendingPathComponent(String(file.path.dropFirst()))
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        var generator = SeededGenerator(seed: 42)
        let size = file.path.hasSuffix(".m3u8") ? 400 : 300_000
        let versions = (0..<3).map { Data(generator.bytes(size + $0 * 7)) }
        try versions[0].write(to: url)

        let server = try ServerProcess(root: root, environment: file.environment.merging(["MARQUEE_FILES_REVALIDATE_MS": "0"]) { $1 })
        defer { server.stop() }

        let first = try Curl.fetch(server.url(file.path))
        #expect(sameBytes(first.body, versions[0]), "\(mismatch(first.body, versions[0]))")
        let firstTag = try #require(first.header("ETag"))

        try Self.replaceAtomically(url, with: versions[1])
        let renamed = try Curl.fetch(server.url(file.path), ["-H", "If-None-Match: \(firstTag)"])
        #expect(renamed.status == 200, "the old ETag still matched after the file was replaced")
        #expect(sameBytes(renamed.body, versions[1]), "old content served after an atomic replace: \(mismatch(renamed.body, versions[1]))")
        let renamedTag = try #require(renamed.header("ETag"))
        #expect(renamedTag != firstTag)

        try Self.rewriteInPlace(url, with: versions[2])
        let rewritten = try Curl.fetch(server.url(file.path))
        #expect(rewritten.status == 200)
        #expect(sameBytes(rewritten.body, versions[2]), "old content served after an in-place rewrite: \(mismatch(rewritten.body, versions[2]))")
        #expect(rewritten.header("Content-Length") == "\(versions[2].count)")
        #expect(rewritten.header("ETag") != renamedTag)
        #expect(rewritten.header("ETag") != firstTag)
    }

    @Test("With the default revalidation interval a change shows within a few seconds")
    func changeIsNoticedAfterTheRevalidationInterval() throws {
        let root = try Scratch.newDirectory("revalidate")
        defer { try? FileManager.default.removeItem(at: root) }
        let url = root.appendingPathComponent("index.m3u8")
        try Data("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\n".utf8).write(to: url)
        let server = try ServerProcess(root: root)
        defer { server.stop() }

        let before = try Curl.fetch(server.url("/index.m3u8"))
        #expect(before.bodyText.contains("SEQUENCE:1"))
        try Self.replaceAtomically(url, with: Data("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:2\n".utf8))
        // The default interval is one second; give it a generous deadline.
        let noticed = try waitUntil(timeout: .seconds(6), interval: .milliseconds(100)) {
            try Curl.fetch(server.url("/index.m3u8")).bodyText.contains("SEQUENCE:2")
        }
        #expect(noticed, "the new playlist was not served within 6 s")
    }

    // MARK: - Connections

    @Test("curl fetching several URLs in one invocation reuses one kept-alive connection")
    func keepAliveReusesOneConnection() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }

        let paths = [MediaFixtures.hlsMaster, MediaFixtures.hlsMedia, MediaFixtures.hlsSegment, MediaFixtures.big, MediaFixtures.small]
        var arguments = ["-w", "%{num_connects} %{http_code}\\n"]
        for path in paths { arguments += ["-o", "/dev/null", server.url(path)] }
        let result = try Curl.run(arguments)
        #expect(result.termination == .exited(0), "\(result.stderrText)")
        let lines = result.stdoutText.split(separator: "\n").map { $0.split(separator: " ") }
        #expect(lines.count == paths.count)
        #expect(lines.allSatisfy { $0.count == 2 && $0[1] == "200" }, "\(result.stdoutText)")
        let connects = lines.compactMap { Int($0.first ?? "") }.reduce(0, +)
        #expect(connects == 1, "curl opened \(connects) connections for \(paths.count) requests")
        #expect(try server.metric("marquee_connections_accepted_total") == 1)
    }

    @Test("HTTP/1.0 is answered and closed unless it asks for keep-alive")
    func http10() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }
        let smallBytes = try fixtures.contents(MediaFixtures.small)

        let plain = try RawConnection(port: server.mediaPort)
        try plain.send("GET \(MediaFixtures.small) HTTP/1.0\r\n\r\n")
        let (bytes, ending) = plain.readToEnd(timeout: .seconds(5))
        let (responses, _) = try HTTPResponse.parseAll(bytes)
        #expect(responses.count == 1)
        #expect(responses.first?.status == 200)
        if let body = responses.first?.body { #expect(sameBytes(body, smallBytes), "\(mismatch(body, smallBytes))") }
        #expect(ending.isClosed, "an HTTP/1.0 connection without keep-alive was left open")

        let keptAlive = try RawConnection(port: server.mediaPort)
        try keptAlive.send("GET \(MediaFixtures.small) HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        let first = try keptAlive.readResponse()
        #expect(first.status == 200)
        #expect(first.header("Connection")?.lowercased() == "keep-alive")
        try keptAlive.send("GET \(MediaFixtures.hlsMaster) HTTP/1.0\r\n\r\n")
        let second = try keptAlive.readResponse()
        #expect(second.status == 200)
        #expect(keptAlive.waitForClose(timeout: .seconds(5)).isClosed)
    }

    @Test("Three requests in one write get three responses, in order")
    func pipelinedRequestsAnswerInOrder() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }

        let connection = try RawConnection(port: server.mediaPort)
        try connection.send(
            "GET \(MediaFixtures.small) HTTP/1.1\r\nHost: t\r\n\r\n"
                + "GET \(MediaFixtures.hlsMaster) HTTP/1.1\r\nHost: t\r\n\r\n"
                + "GET /files/nothing-here HTTP/1.1\r\nHost: t\r\n\r\n"
                + "GET \(MediaFixtures.big) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let first = try connection.readResponse()
        let second = try connection.readResponse()
        let third = try connection.readResponse()
        let fourth = try connection.readResponse()
        #expect(first.status == 200)
        let smallBytes = try fixtures.contents(MediaFixtures.small)
        #expect(sameBytes(first.body, smallBytes), "\(mismatch(first.body, smallBytes))")
        #expect(second.status == 200)
        let masterBytes = try fixtures.contents(MediaFixtures.hlsMaster)
        #expect(sameBytes(second.body, masterBytes), "\(mismatch(second.body, masterBytes))")
        #expect(third.status == 404)
        #expect(fourth.status == 200)
        let bigBytes = try fixtures.contents(MediaFixtures.big)
        #expect(sameBytes(fourth.body, bigBytes), "\(mismatch(fourth.body, bigBytes))")
        #expect(fourth.header("Connection") == "close")
        #expect(connection.waitForClose(timeout: .seconds(5)).isClosed, "Connection: close was not honoured")
    }
}
