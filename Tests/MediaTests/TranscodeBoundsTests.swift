import Foundation
@testable import MarqueeMedia
import MarqueeTestSupport
import Testing

/// The work a source can cause is bounded by what the probe found: a frame timed far past the
/// source's duration does not lengthen the package (nor make the constant-rate output repeat a
/// picture until then), a long repeat can be stopped, and every decoded frame, not only the
/// stream's header, must be within the size limits.
@Suite("Transcoding stays within what the probe found")
struct TranscodeBoundsTests {
    /// A 4 s MPEG-TS clip (640x360, 25 fps, with audio) whose 11th video packet is stamped
    /// `jump` seconds later than it belongs (pts only, so the file stays well-formed). The
    /// container's duration, read from the file's end, stays 4 s.
    static func jumpingClip(_ name: String, jump: Int) throws -> String {
        let clean = try MediaProbeTests.clip(
            "clean4.ts",
            ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=4", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
             "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest"])
        return try MediaProbeTests.clip(name, ["-i", clean, "-c", "copy", "-bsf:v", "setts=pts=if(eq(N\\,10)\\,PTS+\(jump)/TB\\,PTS)"])
    }

    /// Seconds of media a package's playlists list, the longest of its renditions.
    static func listedSeconds(_ folder: URL) throws -> Double {
        let playlists = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("media_") && $0.hasSuffix(".m3u8") }
        #expect(!playlists.isEmpty)
        return try playlists.map { name in
            try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8).split(separator: "\n")
                .filter { $0.hasPrefix("#EXTINF:") }.map { Double($0.dropFirst(8).prefix { $0 != "," }) ?? 0 }.reduce(0, +)
        }.max() ?? 0
    }

    @Test("A frame stamped a minute past a 4 s source's end is dropped: the package stays 4 s long")
    func farFutureFrame() throws {
        let clip = try Self.jumpingClip("jump60.ts", jump: 60)
        let info = try MediaProbe.probe(clip, thorough: false)
        #expect(info.durationSeconds < 5, "the container says 4 s: \(info.durationSeconds)")
        let (out, summary) = try PackagerTests.package(clip)
        let listed = try Self.listedSeconds(out)
        #expect(listed <= Transcoder.outputLimit(forDuration: info.durationSeconds), "\(listed) s listed for a \(info.durationSeconds) s source")
        #expect(listed >= 3.5, "the source's own 4 s are all there: \(listed) s")
        try PackagerTests.verify(out, summary, expectAudio: true)
    }

    @Test("A long run of repeated pictures stops when the job says stop, not after the run")
    func stopInsideRepeats() throws {
        // One second of frames, then a jump of 59 s and another second: the container says 61 s,
        // so the gap is legitimately filled by repeating the last picture before it.
        let clip = try MediaProbeTests.clip(
            "gap.ts",
            ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=2", "-vf", "setpts='if(gte(N,25),PTS+59/TB,PTS)'", "-fps_mode", "passthrough",
             "-c:v", "libx264", "-preset", "ultrafast"])
        let info = try MediaProbe.probe(clip, thorough: false)
        #expect(info.durationSeconds > 55, "the gap is inside the declared duration: \(info.durationSeconds)")
        let folder = MediaProbeTests.folder.appendingPathComponent("transcode-gap-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let transcoder = Transcoder(source: clip, folder: folder.path, settings: PackagerTests.settings(), info: info)
        var asked = 0
        do {
            _ = try transcoder.run(shouldContinue: {
                asked += 1
                return asked <= 40
            })
            Issue.record("the transcode did not stop")
        } catch {
            #expect(error.description == "stopped before the end")
        }
        // Asked before every picture: it stops within a few of the 40th, long before the gap's
        // 1,475 repeats are submitted.
        #expect(transcoder.nextSlot <= 45, "\(transcoder.nextSlot) pictures submitted after being told to stop at 40 questions")
    }

    @Test(
        "A stream whose pictures change size beyond the limits mid-way is refused",
        arguments: [("grows", 1280, 720), ("shrinks", 96, 64)])
    func sizeChangeMidStream(_ label: String, _ width: Int, _ height: Int) throws {
        // Two encodes back to back in one transport stream: 640x360 for 2 s, then the other size for
        // 1 s (in-band parameter sets, so decoders follow the change). The header says 640x360.
        let first = try MediaProbeTests.clip(
            "size-640x360.ts", ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=2", "-c:v", "libx264", "-preset", "ultrafast"])
        let second = try MediaProbeTests.clip(
            "size-\(width)x\(height).ts",
            ["-f", "lavfi", "-i", "testsrc2=size=\(width)x\(height):rate=25:duration=1", "-c:v", "libx264", "-preset", "ultrafast", "-output_ts_offset", "2"])
        let mixed = MediaProbeTests.folder.appendingPathComponent("size-\(label)-\(UUID().uuidString.prefix(8)).ts")
        try (try Data(contentsOf: URL(fileURLWithPath: first)) + Data(contentsOf: URL(fileURLWithPath: second))).write(to: mixed)
        var limits = ProbeLimits()
        limits.maximumWidth = 1000
        limits.maximumHeight = 1000
        let header = try MediaProbe.probe(mixed.path, limits: limits, thorough: false)
        #expect(header.video.width == 640 && header.video.height == 360)

        let out = MediaProbeTests.folder.appendingPathComponent("pkg-size-\(label)-\(UUID().uuidString.prefix(8))")
        do {
            _ = try Packager.package(source: mixed.path, into: out.path, settings: PackagerTests.settings(), limits: limits)
            Issue.record("a stream that turns \(width)x\(height) was packaged")
        } catch let refusal as ProbeRefusal {
            #expect(refusal.kind == .resolutionOutOfRange && refusal.description.contains("\(width)x\(height)"), "\(refusal)")
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }
}
