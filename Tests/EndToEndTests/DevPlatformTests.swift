import Foundation
import Glibc
import MarqueeTestSupport
import Testing

/// `marquee dev` as a newcomer runs it: the whole platform in one process on a fresh data folder,
/// the demo title ingested through the real upload path, then played in headless Chromium
/// through the player page, and in ffmpeg from the printed signed URL; Ctrl-C stops it cleanly
/// and a second run resumes without ingesting again.
@Suite("marquee dev", .serialized)
struct DevPlatformTests {
    /// A running `marquee dev`, its output read as it comes.
    final class DevProcess {
        let process: Process
        let output: OutputLog

        init(data: URL, port: UInt16, extra: [String] = []) throws {
            process = Process()
            process.executableURL = try MarqueeBinary.locate()
            process.arguments = ["dev", "--data", data.path, "--listen", "127.0.0.1:\(port)"] + extra
            process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MARQUEE_") }
            let pipe = Pipe()
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            try? pipe.fileHandleForWriting.close()
            output = OutputLog(reading: pipe.fileHandleForReading)
        }

        /// The value of the first `name: value` line, waiting for it.
        func line(_ name: String, timeout: Duration) -> String? {
            guard let text = output.wait(timeout: timeout, for: { $0.contains("\n\(name): ") }) else { return nil }
            let line = text.split(separator: "\n").first { $0.hasPrefix("\(name): ") }
            return line.map { String($0.dropFirst(name.count + 2)).trimmingCharacters(in: .whitespaces) }
        }

        /// Ctrl-C, then the exit status (nil if it did not stop within `timeout`).
        func interrupt(timeout: Duration) -> Int32? {
            kill(process.processIdentifier, SIGINT)
            guard waitUntil(timeout: timeout, interval: .milliseconds(50), { !self.process.isRunning }) else {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                return nil
            }
            return process.terminationStatus
        }

        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
    }

    /// Where screenshots go: kept after the run (the scratch folder is not).
    static let outputFolder = PythonEnvironment.packageRoot.appendingPathComponent(".build/test-output")

    @Test("marquee dev --tls: a local CA's certificate, every printed address https, curl trusting the CA, ffmpeg and Chromium playing through the player page")
    func servesOverHTTPS() throws {
        let data = try Scratch.newDirectory("dev-tls-data")
        let port = try RedisServer.freePort()
        let base = "https://127.0.0.1:\(port)"
        let dev = try DevProcess(data: data, port: port, extra: ["--tls", "--demo-seconds", "12"])
        let playlist = try #require(dev.line("playlist", timeout: .seconds(600)), "no playlist line: \(dev.output.text)")
        let player = try #require(dev.line("player", timeout: .seconds(5)))
        #expect(player == "\(base)/player/")
        #expect(playlist.hasPrefix("\(base)/t/v1."), "the signed URL is not https: \(playlist)")
        let authority = data.appendingPathComponent("tls/ca.pem").path
        #expect(dev.output.text.contains("curl --cacert \(authority)"), "\(dev.output.text)")

        let fetched = try Curl.fetch(playlist, ["--cacert", authority])
        #expect(fetched.status == 200, "\(fetched.stderr)")
        #expect(fetched.bodyText.hasPrefix("#EXTM3U"))
        let untrusted = try Curl.fetch(playlist)
        #expect(untrusted.status == 0, "a certificate of the local CA passed without it")
        #expect(try Curl.fetch(playlist.replacingOccurrences(of: "https://", with: "http://")).status == 400)

        let decoded = try PlaybackTests.decode(playlist)
        #expect(decoded.termination == .exited(0), "ffmpeg failed: \(decoded.stderr)")
        #expect(decoded.frames(stream: 0) >= 12 * 25 - 2, "video frames: \(decoded.frames(stream: 0))")

        let text = dev.output.text
        let viewerPassword = try #require(Self.value(after: "viewer:    viewer@demo.marquee password ", in: text))
        let titleID = try String(contentsOf: data.appendingPathComponent("demo-title-id"), encoding: .utf8).trimmingCharacters(in: .newlines)
        let screenshot = Self.outputFolder.appendingPathComponent("dev-player-tls.png")
        try FileManager.default.createDirectory(at: Self.outputFolder, withIntermediateDirectories: true)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts/play_in_browser.py")
        let browser = try Tool.run(
            try PythonEnvironment.python().path, [script.path, player, "viewer@demo.marquee", viewerPassword, titleID, screenshot.path, "5"],
            timeout: .seconds(180))
        #expect(browser.termination == .exited(0), "Chromium did not play: \(browser.stderrText) \(browser.stdoutText)")
        let report = (try? JSONSerialization.jsonObject(with: Data(browser.stdoutText.utf8))) as? [String: Any] ?? [:]
        #expect(report["secure_context"] as? Bool == true, "\(report)")
        #expect((report["currentTime"] as? Double ?? 0) > 5, "\(report)")
        #expect((report["errors"] as? [Any])?.isEmpty == true, "\(report)")
        #expect(dev.interrupt(timeout: .seconds(30)) == 0, "did not stop cleanly: \(dev.output.text)")
    }

    @Test("First start ingests the demo title; it plays in Chromium through the player page and fully in ffmpeg; a restart does not ingest again")
    func playsInABrowser() throws {
        let data = try Scratch.newDirectory("dev-data")
        let port = try RedisServer.freePort()
        let base = "http://127.0.0.1:\(port)"

        let first = try DevProcess(data: data, port: port)
        let playlist = try #require(first.line("playlist", timeout: .seconds(600)), "no playlist line: \(first.output.text)")
        let player = try #require(first.line("player", timeout: .seconds(5)))
        #expect(player == "\(base)/player/")
        #expect(playlist.hasPrefix("\(base)/t/v1."))
        #expect(playlist.hasSuffix("/master.m3u8"))
        let text = first.output.text
        let viewerPassword = try #require(Self.value(after: "viewer:    viewer@demo.marquee password ", in: text))
        #expect(text.contains("publisher: publisher@demo.marquee password "))
        for role in ["auth", "catalog", "ingest", "playback"] {
            #expect(text.contains("\n\(role):"), "no address printed for \(role)")
        }
        let titleID = try String(contentsOf: data.appendingPathComponent("demo-title-id"), encoding: .utf8).trimmingCharacters(in: .newlines)
        #expect(playlist.contains("/titles/\(titleID)/"))
        #expect(text.contains("demo: uploading"), "the demo did not go through the upload path: \(text)")

        // The printed URL decodes to the end in ffmpeg: a full minute of video and audio.
        let decoded = try PlaybackTests.decode(playlist)
        #expect(decoded.termination == .exited(0), "ffmpeg failed: \(decoded.stderr)")
        #expect(decoded.stderr.isEmpty, "ffmpeg reported problems: \(decoded.stderr)")
        #expect(decoded.frames(stream: 0) >= 60 * 25 - 2, "video frames: \(decoded.frames(stream: 0))")
        #expect(decoded.frames(stream: 1) >= 60 * 46, "audio frames: \(decoded.frames(stream: 1))")

        // The player page: sign in, pick the title, play; `playing`, then past 5 s, no error.
        try FileManager.default.createDirectory(at: Self.outputFolder, withIntermediateDirectories: true)
        let screenshot = Self.outputFolder.appendingPathComponent("dev-player.png")
        try? FileManager.default.removeItem(at: screenshot)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts/play_in_browser.py")
        let browser = try Tool.run(
            try PythonEnvironment.python().path, [script.path, player, "viewer@demo.marquee", viewerPassword, titleID, screenshot.path, "5"],
            timeout: .seconds(180))
        #expect(browser.termination == .exited(0), "Chromium did not play: \(browser.stderrText) \(browser.stdoutText)")
        let report = (try? JSONSerialization.jsonObject(with: Data(browser.stdoutText.utf8))) as? [String: Any] ?? [:]
        #expect((report["currentTime"] as? Double ?? 0) > 5)
        #expect((report["errors"] as? [Any])?.isEmpty == true)
        #expect(report["poster_status"] as? Int == 200, "the poster did not load: \(report)")
        #expect(report["sprite_status"] as? Int == 200, "the scrubbing thumbnails did not load: \(report)")
        #expect((report["preview"] as? [String: Any])?["visible"] as? Bool == true)
        #expect(FileManager.default.fileExists(atPath: screenshot.path))

        // The viewer's session was recorded by playback (the browser's and the one dev printed).
        #expect(first.interrupt(timeout: .seconds(30)) == 0, "did not stop cleanly: \(first.output.text)")
        #expect(first.output.text.contains("marquee dev: stopped"))

        // Again on the same data: no new upload, no new job, the same title, a new signed URL.
        let second = try DevProcess(data: data, port: port)
        let again = try #require(second.line("playlist", timeout: .seconds(120)), "no playlist on restart: \(second.output.text)")
        #expect(again.contains("/titles/\(titleID)/"))
        #expect(second.output.text.contains("demo: title \(titleID) is published"))
        #expect(!second.output.text.contains("demo: uploading"))
        #expect(!second.output.text.contains("demo: created title"))
        let replay = try Curl.fetch(again)
        #expect(replay.status == 200)

        // `marquee loadtest --api`: viewers on accounts it registers (funded through self-service
        // deposits) start real playback sessions, play their signed URLs, and end them.
        let json = Scratch.newFile("loadtest-api.json")
        let load = try Tool.run(
            try MarqueeBinary.locate().path,
            ["loadtest", "--api", base, "--title", titleID, "--viewers", "4", "--duration", "8", "--deposit", "500", "--json", json.path], timeout: .seconds(180))
        #expect(load.termination == .exited(0), "\(load.stderrText)")
        let loadReport = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any], "\(load.stderrText)")
        #expect(loadReport["viewers_started"] as? Int == 4 && loadReport["stalls"] as? Int == 0, "\(loadReport)")
        let sessions = loadReport["sessions"] as? [String: Any]
        #expect(sessions?["started"] as? Int == 4 && sessions?["ended"] as? Int == 4, "\(String(describing: sessions))")
        #expect(Set(sessions?["ids"] as? [String] ?? []).count == 4)
        // Each session that played, with its viewer's stalls (none on this link).
        let played = sessions?["played"] as? [[String: Any]] ?? []
        #expect(Set(played.compactMap { $0["id"] as? String }) == Set(sessions?["ids"] as? [String] ?? []), "\(played)")
        #expect(played.allSatisfy { $0["stalls"] as? Int == 0 && $0["stalled_ms"] as? Int == 0 }, "\(played)")
        let segments = (loadReport["by_kind"] as? [String: [String: Any]])?["segment"]
        #expect((segments?["statuses"] as? [String: Int])?.keys.sorted() == ["200"], "\(String(describing: segments))")
        // Our packages carry audio as a track of its own: the viewers fetched it too.
        let audio = (loadReport["by_kind"] as? [String: [String: Any]])?["audio"]
        #expect((audio?["requests"] as? Int ?? 0) > 0 && (audio?["statuses"] as? [String: Int])?.keys.sorted() == ["200"], "\(String(describing: audio))")
        #expect(second.interrupt(timeout: .seconds(30)) == 0, "did not stop cleanly: \(second.output.text)")
        let packages = try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent("media/titles/\(titleID)").path)
        #expect(packages.filter { !$0.hasPrefix(".") }.count == 1, "one package version expected: \(packages)")
    }

    static func value(after prefix: String, in text: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }
}
