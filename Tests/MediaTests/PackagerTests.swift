import Foundation
import MarqueeMedia
import MarqueeTestSupport
import Testing

/// Packages generated clips with the odd properties real uploads have and checks what players
/// and the authoring specification care about: every rendition decodes over HLS and DASH, every
/// segment starts with a keyframe, BANDWIDTH covers every segment's rate, sizes keep the display
/// aspect ratio, nothing is upscaled, and a bad source leaves no manifest.
@Suite("Transcoding and packaging in-process")
struct PackagerTests {
    static func settings() -> TranscodeSettings {
        var settings = TranscodeSettings()
        settings.ladderHeights = [480, 360]
        settings.segmentSeconds = 2
        settings.preset = "ultrafast"
        return settings
    }

    static func package(_ clip: String) throws -> (URL, PackageSummary) {
        let out = MediaProbeTests.folder.appendingPathComponent("pkg-\(UUID().uuidString.prefix(8))")
        return (out, try Packager.package(source: clip, into: out.path, settings: settings()))
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let result = try Subprocess.run(tool, arguments, discardErrors: true)
        guard result.succeeded else { throw TestEnvironmentError("\(tool) \(arguments) failed") }
        return result.output
    }

    /// Checks one package: manifests present, decodes fully over HLS and DASH, keyframes at every
    /// segment start, BANDWIDTH ≥ each segment's rate and within 10% of the peak.
    static func verify(_ out: URL, _ summary: PackageSummary, expectAudio: Bool) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: out.path)
        #expect(files.contains("master.m3u8") && files.contains("manifest.mpd"))
        _ = try run("/usr/bin/ffmpeg", ["-v", "error", "-i", out.appendingPathComponent("master.m3u8").path, "-map", "0", "-f", "null", "-"])
        _ = try run("/usr/bin/ffmpeg", ["-v", "error", "-i", out.appendingPathComponent("manifest.mpd").path, "-map", "0", "-f", "null", "-"])
        let master = try String(contentsOf: out.appendingPathComponent("master.m3u8"), encoding: .utf8)
        #expect(master.contains("AVERAGE-BANDWIDTH=") && master.contains("FRAME-RATE=") && master.contains("CODECS=\"avc1."))
        #expect(master.contains("mp4a.40.2") == expectAudio)
        for (index, rendition) in summary.renditions.enumerated() {
            let playlist = try String(contentsOf: out.appendingPathComponent(rendition.playlist), encoding: .utf8)
            #expect(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.hasSuffix("#EXT-X-ENDLIST\n"))
            let segments = playlist.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
            let durations = playlist.split(separator: "\n").filter { $0.hasPrefix("#EXTINF:") }.map { Double($0.dropFirst(8).prefix { $0 != "," }) ?? 0 }
            let initSegment = try Data(contentsOf: out.appendingPathComponent("init-stream\(index).m4s"))
            var peak = 0.0
            for (segment, duration) in zip(segments, durations) {
                let body = try Data(contentsOf: out.appendingPathComponent(segment))
                if duration > 0.5 { peak = max(peak, Double(body.count * 8) / duration) }
                let joined = MediaProbeTests.folder.appendingPathComponent("joined-\(UUID().uuidString.prefix(6)).mp4")
                try (initSegment + body).write(to: joined)
                let first = try run("/usr/bin/ffprobe", ["-v", "error", "-select_streams", "v", "-show_frames", "-read_intervals", "%+#1", "-show_entries", "frame=key_frame", "-of", "csv=p=0", joined.path])
                #expect(first.hasPrefix("1"), "\(rendition.name) \(segment) starts with a keyframe")
                try? FileManager.default.removeItem(at: joined)
            }
            #expect(Double(rendition.bandwidth) >= peak, "BANDWIDTH covers the video peak")
            #expect(Double(rendition.bandwidth) <= peak * 1.1 + 300_000, "BANDWIDTH within 10% of the measured peak (plus audio)")
        }
    }

    @Test("A 720p source: 480p and 360p, decodable over HLS and DASH, keyframes at every segment")
    func plain() throws {
        let clip = try MediaProbeTests.clip(
            "ladder.mp4", ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=6"] + MediaProbeTests.tone.map { $0.replacingOccurrences(of: "duration=3", with: "duration=6") } + ["-c:v", "libx264", "-c:a", "aac", "-shortest"])
        let (out, summary) = try Self.package(clip)
        #expect(summary.renditions.map(\.height) == [480, 360])
        #expect(summary.renditions.map(\.width) == [854, 640])
        try Self.verify(out, summary, expectAudio: true)
        // Poster at the top rung's size; a thumbnail every 5 s in a sprite, indexed by WebVTT.
        #expect(try Self.run("/usr/bin/ffprobe", ["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", out.appendingPathComponent("poster.jpg").path]).hasPrefix("854,480"))
        let vtt = try String(contentsOf: out.appendingPathComponent("thumbnails.vtt"), encoding: .utf8)
        #expect(vtt.hasPrefix("WEBVTT\n"))
        #expect(vtt.components(separatedBy: " --> ").count - 1 == 2, "6 s at one thumbnail per 5 s")
        #expect(vtt.contains("00:00:05.000 --> 00:00:06.000\nthumbnails-0.jpg#xywh=160,0,160,90"))
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("thumbnails-0.jpg").path))
    }

    @Test("Rotated, anamorphic, 10-bit, 5.1, silent and variable-rate sources come out upright, square-pixeled, 8-bit and stereo")
    func oddSources() throws {
        let rotated = try MediaProbeTests.clip("rotated.mp4", ["-i", try MediaProbeTests.clip("upright.mp4", MediaProbeTests.video + ["-c:v", "libx264"]), "-c", "copy", "-metadata:s:v:0", "rotate=90"])
        let (rotatedOut, rotatedSummary) = try Self.package(rotated)
        #expect(rotatedSummary.renditions.first.map { $0.width < $0.height } == true, "portrait after rotation: \(rotatedSummary.renditions.map { "\($0.width)x\($0.height)" })")
        try Self.verify(rotatedOut, rotatedSummary, expectAudio: false)
        let poster = try Self.run("/usr/bin/ffprobe", ["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", rotatedOut.appendingPathComponent("poster.jpg").path])
        let sides = poster.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").compactMap { Int($0) }
        #expect(sides.count == 2 && sides[0] < sides[1], "the poster is upright too: \(poster)")

        let (anamorphicOut, anamorphic) = try Self.package(try MediaProbeTests.clip("anamorphic.mp4", MediaProbeTests.video + ["-vf", "setsar=4/3", "-c:v", "libx264"]))
        #expect(anamorphic.renditions.first?.height == 360 && anamorphic.renditions.first?.width == 854, "640x360 at 4:3 pixels shows as 853x360: \(anamorphic.renditions.map { "\($0.width)x\($0.height)" })")
        try Self.verify(anamorphicOut, anamorphic, expectAudio: false)

        let (tenBitOut, tenBit) = try Self.package(try MediaProbeTests.clip("10bit.mkv", MediaProbeTests.video + ["-pix_fmt", "yuv420p10le", "-c:v", "libx264"]))
        try Self.verify(tenBitOut, tenBit, expectAudio: false)
        // ffprobe, not MediaProbe: a manifest is not a source (MediaProbe refuses it).
        let tenBitFormat = try Self.run("/usr/bin/ffprobe", ["-v", "error", "-select_streams", "v", "-show_entries", "stream=pix_fmt", "-of", "csv=p=0", tenBitOut.appendingPathComponent("manifest.mpd").path])
        #expect(tenBitFormat.split(whereSeparator: \.isNewline).allSatisfy { $0 == "yuv420p" }, "8-bit 4:2:0: \(tenBitFormat)")

        let surround = try MediaProbeTests.clip(
            "surround.mp4", MediaProbeTests.video + ["-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000:duration=3", "-filter_complex", "[1:a]pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0[a]", "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-c:a", "aac"])
        let (surroundOut, surroundSummary) = try Self.package(surround)
        try Self.verify(surroundOut, surroundSummary, expectAudio: true)
        let audio = try Self.run("/usr/bin/ffprobe", ["-v", "error", "-select_streams", "a", "-show_entries", "stream=channels", "-of", "csv=p=0", surroundOut.appendingPathComponent("manifest.mpd").path])
        let channels = audio.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        #expect(!channels.isEmpty && channels.allSatisfy { $0 == "2" }, "5.1 is downmixed to stereo: \(channels)")

        // Interlaced: two instants per frame (50 fields/s woven top first), fields coded. ffmpeg's
        // idet sees combing in the source; the package must come out progressive.
        let interlaced = try MediaProbeTests.clip(
            "combed.mp4", ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=50:duration=3", "-vf", "tinterlace=mode=interleave_top,setfield=tff", "-c:v", "libx264", "-flags", "+ilme+ildct", "-top", "1"])
        #expect(try MediaProbe.probe(interlaced).video.interlaced)
        let (interlacedOut, interlacedSummary) = try Self.package(interlaced)
        try Self.verify(interlacedOut, interlacedSummary, expectAudio: false)
        func detection(_ path: String) throws -> (combed: Int, progressive: Int) {
            let text = try Subprocess.run("/usr/bin/ffmpeg", ["-nostdin", "-i", path, "-vf", "idet", "-f", "null", "-"]).output
            let line = text.split(separator: "\n").last { $0.contains("Multi frame detection") } ?? ""
            let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            return numbers.count >= 3 ? (numbers[numbers.count - 4] + numbers[numbers.count - 3], numbers[numbers.count - 2]) : (0, 0)
        }
        let before = try detection(interlaced)
        let after = try detection(interlacedOut.appendingPathComponent("master.m3u8").path)
        #expect(before.combed > before.progressive, "the source is combed: \(before)")
        #expect(after.progressive > after.combed * 5, "the package is progressive: \(after)")

        let variable = try MediaProbeTests.clip(
            "vfr.mkv", ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=3", "-vf", "select='not(mod(n\\,3))+lt(t\\,1)'", "-fps_mode", "vfr", "-c:v", "libx264"])
        let (variableOut, variableSummary) = try Self.package(variable)
        try Self.verify(variableOut, variableSummary, expectAudio: false)
    }

    @Test("A bad source fails with its reason and leaves no manifest and no working files")
    func badSource() throws {
        let text = MediaProbeTests.folder.appendingPathComponent("bad-source.mp4")
        try Data("not a movie".utf8).write(to: text)
        let out = MediaProbeTests.folder.appendingPathComponent("pkg-bad")
        #expect(throws: ProbeRefusal.self) { try Packager.package(source: text.path, into: out.path, settings: Self.settings()) }
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("master.m3u8").path))
        // Truncated: found while transcoding (the file is read once), still refused with the reason.
        let whole = try MediaProbeTests.clip("faststart6.mp4", ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=6", "-c:v", "libx264", "-movflags", "+faststart"])
        let data = try Data(contentsOf: URL(fileURLWithPath: whole))
        let cut = MediaProbeTests.folder.appendingPathComponent("truncated6.mp4")
        try data.prefix(data.count / 3).write(to: cut)
        let cutOut = MediaProbeTests.folder.appendingPathComponent("pkg-cut")
        do {
            _ = try Packager.package(source: cut.path, into: cutOut.path, settings: Self.settings())
            Issue.record("a truncated source was packaged")
        } catch let refusal as ProbeRefusal {
            #expect([.truncated, .corrupt].contains(refusal.kind), "\(refusal)")
        }
        #expect(!FileManager.default.fileExists(atPath: cutOut.appendingPathComponent("master.m3u8").path))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: MediaProbeTests.folder.path).filter { $0.hasPrefix(".incoming-pkg-bad") || $0.hasPrefix(".incoming-pkg-cut") }
        #expect(leftovers.isEmpty)
    }
}
