import Foundation
import MarqueeMedia
import MarqueeTestSupport
import Testing

/// The generated clip `marquee dev` ingests: what ingest's probe and ffmpeg see in it.
@Suite("Test clips")
struct TestClipTests {
    @Test("A generated clip is H.264 + stereo AAC of the asked size, rate and length, and decodes without an error")
    func generated() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-clip-\(UUID().uuidString.prefix(8)).mp4").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TestClip.write(to: path, options: TestClip.Options(width: 320, height: 240, framesPerSecond: 30, seconds: 4))
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
        let info = try MediaProbe.probe(path)
        #expect(info.video.codec == "h264")
        #expect(info.video.width == 320 && info.video.height == 240)
        #expect(abs(info.video.frameRate.value - 30) < 0.01)
        #expect(abs(info.durationSeconds - 4) < 0.1)
        #expect(info.audio.first?.codec == "aac")
        #expect(info.audio.first?.channels == 2)
        let decoded = try Subprocess.run("/usr/bin/ffmpeg", ["-nostdin", "-v", "error", "-i", path, "-f", "framecrc", "-"], separateErrors: true)
        #expect(decoded.succeeded && decoded.errors.isEmpty, "\(decoded.errors)")
        let frames = decoded.output.split(separator: "\n").filter { $0.hasPrefix("0,") }.count
        #expect(frames == 120)
    }

    @Test("Impossible options are refused with a reason, and no file is left")
    func refused() {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-clip-\(UUID().uuidString.prefix(8)).mp4").path
        for options in [TestClip.Options(width: 321, height: 240), TestClip.Options(width: 32, height: 32), TestClip.Options(seconds: 0)] {
            #expect(throws: TranscodeError.self) { try TestClip.write(to: path, options: options) }
        }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
    }
}
