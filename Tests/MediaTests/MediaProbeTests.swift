import Foundation
import Glibc
import MarqueeMedia
import MarqueeTestSupport
import Testing

/// Sources generated with the ffmpeg CLI (lavfi test sources), each with one of the odd
/// properties real uploads have, and a corpus of bad inputs that must be refused with a reason.
@Suite("Probing sources with libavformat")
struct MediaProbeTests {
    static let folder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-probe-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// Makes (once per test process) `name` with the given ffmpeg arguments.
    static func clip(_ name: String, _ arguments: [String]) throws -> String {
        let path = folder.appendingPathComponent(name).path
        if FileManager.default.fileExists(atPath: path) { return path }
        // Tests running at once may make the same clip: each writes its own file and renames it
        // over the other's (rename(2) replaces atomically; both are the same clip).
        let temporary = path + ".\(UUID().uuidString.prefix(8)).tmp." + (name as NSString).pathExtension
        let made = try Subprocess.run("/usr/bin/ffmpeg", ["-nostdin", "-v", "error", "-y"] + arguments + [temporary])
        guard made.succeeded else { throw TestEnvironmentError("ffmpeg failed making \(name): \(made.output)") }
        guard rename(temporary, path) == 0 else { throw TestEnvironmentError("cannot move \(temporary) to \(path)") }
        return path
    }

    static let video = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=3"]
    static let tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3"]

    @Test("A plain H.264/AAC MP4")
    func plain() throws {
        let path = try Self.clip("plain.mp4", Self.video + Self.tone + ["-c:v", "libx264", "-c:a", "aac", "-shortest"])
        let info = try MediaProbe.probe(path)
        #expect(info.container.contains("mp4"))
        #expect(abs(info.durationSeconds - 3) < 0.2)
        #expect(info.video.codec == "h264" && info.video.width == 640 && info.video.height == 360)
        #expect(info.video.frameRate == Rational(25, 1) && !info.video.variableFrameRate && !info.video.interlaced)
        #expect(info.video.bitDepth == 8 && info.video.rotation == 0)
        #expect(info.audio.first?.codec == "aac" && info.audio.first?.layout == "mono" && info.audio.first?.sampleRate == 48000)
    }

    @Test("Rotation, non-square pixels, 10-bit, interlacing, 5.1 audio and no audio are read as such")
    func oddProperties() throws {
        // ffmpeg 5.1 writes the display matrix only when the stream is copied.
        let upright = try Self.clip("upright.mp4", Self.video + ["-c:v", "libx264"])
        let rotated = try MediaProbe.probe(try Self.clip("rotated.mp4", ["-i", upright, "-c", "copy", "-metadata:s:v:0", "rotate=90"]))
        // The same convention as the ffmpeg CLI's autorotate (clockwise degrees from the matrix).
        #expect(rotated.video.rotation % 180 == 90)
        #expect(rotated.video.displaySize.width == 360 && rotated.video.displaySize.height == 640)

        let anamorphic = try MediaProbe.probe(try Self.clip("anamorphic.mp4", Self.video + ["-vf", "setsar=4/3", "-c:v", "libx264"]))
        #expect(anamorphic.video.sampleAspectRatio == Rational(4, 3))
        #expect(anamorphic.video.displaySize.width == 853)

        let tenBit = try MediaProbe.probe(try Self.clip("10bit.mkv", Self.video + ["-pix_fmt", "yuv420p10le", "-c:v", "libx264"]))
        #expect(tenBit.video.bitDepth == 10 && tenBit.container.contains("matroska"))

        let interlaced = try MediaProbe.probe(
            try Self.clip("interlaced.mp4", Self.video + ["-c:v", "libx264", "-flags", "+ilme+ildct", "-top", "1"]))
        #expect(interlaced.video.interlaced)

        let surround = try MediaProbe.probe(
            try Self.clip("surround.mp4", Self.video + ["-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000:duration=3", "-filter_complex", "[1:a]pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0[a]", "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-c:a", "aac"]))
        #expect(surround.audio.first?.channels == 6)
        #expect(surround.audio.first?.layout.hasPrefix("5.1") == true)

        let silent = try MediaProbe.probe(try Self.clip("silent.mp4", Self.video + ["-c:v", "libx264"]))
        #expect(silent.audio.isEmpty)

        let variable = try MediaProbe.probe(
            try Self.clip("vfr.mkv", ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=3", "-vf", "select='not(mod(n\\,3))+lt(t\\,1)'", "-fps_mode", "vfr", "-c:v", "libx264"]))
        #expect(variable.video.variableFrameRate, "frames 1/30 s apart for a second, then 1/10 s")
    }

    @Test("Bad inputs are refused with a reason a publisher understands")
    func refusals() throws {
        let text = Self.folder.appendingPathComponent("notes.txt")
        try Data("these are not the frames you are looking for\n".utf8).write(to: text)
        #expect(throws: ProbeRefusal.self) { try MediaProbe.probe(text.path) }
        #expect(throws: ProbeRefusal.self) { try MediaProbe.probe(Self.folder.appendingPathComponent("missing.mp4").path) }

        // Cut a fast-start MP4 in half: the header promises 3 s, the data stops early.
        let whole = try Self.clip("faststart.mp4", Self.video + ["-c:v", "libx264", "-movflags", "+faststart"])
        let data = try Data(contentsOf: URL(fileURLWithPath: whole))
        let cut = Self.folder.appendingPathComponent("truncated.mp4")
        try data.prefix(data.count / 2).write(to: cut)
        do {
            _ = try MediaProbe.probe(cut.path)
            Issue.record("a truncated file was accepted")
        } catch {
            #expect([.truncated, .corrupt].contains(error.kind), "\(error)")
        }

        let audioOnly = try Self.clip("audio.m4a", Self.tone + ["-c:a", "aac"])
        #expect(throws: ProbeRefusal.noVideo) { try MediaProbe.probe(audioOnly) }

        let ffv1 = try Self.clip("ffv1.mkv", Self.video + ["-c:v", "ffv1"])
        do {
            _ = try MediaProbe.probe(ffv1)
            Issue.record("ffv1 was accepted")
        } catch {
            #expect(error.kind == .unsupportedCodec && error.description.contains("ffv1"))
        }

        let tiny = try Self.clip("tiny.mp4", ["-f", "lavfi", "-i", "testsrc2=size=64x64:rate=25:duration=2", "-c:v", "libx264"])
        do {
            _ = try MediaProbe.probe(tiny)
            Issue.record("64x64 was accepted")
        } catch {
            #expect(error.kind == .resolutionOutOfRange && error.description.contains("64x64"))
        }

        let short = try Self.clip("short.mp4", ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=0.4", "-c:v", "libx264"])
        do {
            _ = try MediaProbe.probe(short)
            Issue.record("0.4 s was accepted")
        } catch {
            #expect(error.kind == .durationOutOfRange)
        }

        // Random bytes after a valid-looking MP4 signature.
        var generator = SeededGenerator(seed: 7)
        var garbage = Data([0, 0, 0, 0x20, 0x66, 0x74, 0x79, 0x70, 0x69, 0x73, 0x6F, 0x6D])
        garbage.append(contentsOf: (0..<200_000).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let noise = Self.folder.appendingPathComponent("noise.mp4")
        try garbage.write(to: noise)
        #expect(throws: ProbeRefusal.self) { try MediaProbe.probe(noise.path) }
    }
}

extension ProbeRefusal {
    enum Kind { case notMedia, unsupportedContainer, truncated, corrupt, noVideo, unsupportedCodec, resolutionOutOfRange, durationOutOfRange }
    var kind: Kind {
        switch self {
        case .notMedia: .notMedia
        case .unsupportedContainer: .unsupportedContainer
        case .truncated: .truncated
        case .corrupt: .corrupt
        case .noVideo: .noVideo
        case .unsupportedCodec: .unsupportedCodec
        case .resolutionOutOfRange: .resolutionOutOfRange
        case .durationOutOfRange: .durationOutOfRange
        }
    }
}
