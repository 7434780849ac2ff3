import Foundation
import MarqueeTestSupport
import Testing

/// ffmpeg as the player: it fetches the playlist or manifest, every init segment and media
/// segment, and decodes the whole title served by `marquee origin`.
@Suite("Playback")
struct PlaybackTests {
    /// Decoded frames per stream: one `framecrc` line per frame (stream, dts, pts, duration, size, crc).
    struct Decoded {
        var termination: Termination
        var stderr: String
        var lines: [String]

        func frames(stream: Int) -> Int { lines.filter { $0.hasPrefix("\(stream),") }.count }
    }

    /// Decodes the first video and first audio stream of `input` to per-frame checksums.
    static func decode(_ input: String) throws -> Decoded {
        let output = Scratch.newFile("framecrc")
        defer { try? FileManager.default.removeItem(at: output) }
        let result = try Tool.run(
            "/usr/bin/ffmpeg",
            ["-v", "error", "-nostdin", "-y", "-i", input, "-map", "0:v:0", "-map", "0:a:0", "-f", "framecrc", output.path],
            timeout: .seconds(60))
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        return Decoded(
            termination: result.termination, stderr: result.stderrText,
            lines: text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") })
    }

    static func playsToTheEnd(_ entry: String, files: Int) throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }

        let played = try decode(server.url(entry))
        #expect(played.termination == .exited(0), "ffmpeg failed: \(played.stderr)")
        #expect(played.stderr.isEmpty, "ffmpeg reported problems while playing: \(played.stderr)")
        let video = played.frames(stream: 0)
        let audio = played.frames(stream: 1)
        #expect(abs(video - MediaFixtures.videoFrames) <= 2, "decoded \(video) video frames, expected about 150 (6 s at 25 fps)")
        #expect(audio >= 250, "decoded \(audio) audio frames, expected about 258 (6 s of 44.1 kHz AAC)")

        // Bit-exact: the same frames as decoding the files straight from disk.
        let local = try decode(fixtures.file(entry).path)
        #expect(local.termination == .exited(0), "local decode failed: \(local.stderr)")
        #expect(played.lines == local.lines, "frames decoded over HTTP differ from the files on disk")

        // The player really fetched everything from the origin, and nothing was missing.
        func served() throws -> Double {
            try server.metric(ServerProcess.responses(200)) + server.metric(ServerProcess.responses(206))
        }
        // Counted once the last byte is handed to the kernel, which may be a moment after ffmpeg has it.
        let fetchedAll = try waitUntil(timeout: .seconds(5)) { try served() >= Double(files) }
        let successes = try served()
        #expect(fetchedAll, "only \(successes) successful responses for a title of \(files) files")
        #expect(try server.metric(ServerProcess.responses(404)) == 0)
    }

    @Test("ffmpeg plays the whole HLS title (fMP4 segments) through the master playlist")
    func hlsTitlePlaysToTheEnd() throws {
        // master + media playlist + init + 3 segments
        try Self.playsToTheEnd(MediaFixtures.hlsMaster, files: 6)
    }

    @Test("ffmpeg plays the whole DASH title")
    func dashTitlePlaysToTheEnd() throws {
        // manifest + 2 init segments + 3 video and 3 audio segments
        try Self.playsToTheEnd(MediaFixtures.dashManifest, files: 9)
    }
}
