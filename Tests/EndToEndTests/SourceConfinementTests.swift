import Foundation
import MarqueeTestSupport
import Testing

/// `marquee probe` and `marquee package` read the one file they are given. Another publisher's
/// title sits on the same disk (a `marquee test-clip` clip and its `marquee package` package);
/// uploads that are really playlists, manifests, lists or image sequences pointing at it, in
/// every spelling, are refused with a clear reason, and not a byte of the victim's media reaches
/// any output. Real single-file sources still probe and package, and a frame stamped hours past
/// a source's end neither lengthens the package nor keeps the packager busy for hours.
@Suite("marquee probe and package read only the source file")
struct SourceConfinementTests {
    /// The victim's files: `clip.mp4` (test-clip), `clip.ts` (the same, remuxed), `frame001.jpg`...
    /// (its first 50 pictures) and `title/v1/` (its package).
    struct Victim: Sendable {
        let root: URL
        var folder: URL { root.appendingPathComponent("victim") }
        var clip: URL { folder.appendingPathComponent("clip.mp4") }
        var transportStream: URL { folder.appendingPathComponent("clip.ts") }
        var package: URL { folder.appendingPathComponent("title/v1") }
    }

    static let victim: Result<Victim, any Error> = Result {
        let victim = Victim(root: try Scratch.newDirectory("confinement"))
        try FileManager.default.createDirectory(at: victim.folder, withIntermediateDirectories: true)
        let marquee = try MarqueeBinary.locate().path
        let steps: [(String, [String])] = [
            (marquee, ["test-clip", victim.clip.path, "--seconds", "3", "--size", "320x240"]),
            (marquee, ["package", victim.clip.path, "--out", victim.package.path, "--ladder", "240", "--segment", "1", "--preset", "ultrafast"]),
            ("/usr/bin/ffmpeg", ["-nostdin", "-v", "error", "-i", victim.clip.path, "-c", "copy", victim.transportStream.path]),
            ("/usr/bin/ffmpeg", ["-nostdin", "-v", "error", "-i", victim.clip.path, "-frames:v", "50", "-q:v", "3", victim.folder.appendingPathComponent("frame%03d.jpg").path]),
        ]
        for (tool, arguments) in steps {
            let result = try Tool.run(tool, arguments, timeout: .seconds(180))
            guard result.termination == .exited(0) else { throw ToolError(description: "\(tool) \(arguments): \(result.termination) \(result.stderrText)") }
        }
        return victim
    }

    /// One hostile upload: its file name, its text (or nil for a file made otherwise) and the
    /// demuxer libavformat would pick for it.
    struct Hostile: Sendable, CustomTestStringConvertible {
        let label: String
        let format: String
        let make: @Sendable (Victim) throws -> URL
        var testDescription: String { label }

        /// An HLS media playlist listing `segments` (after an `#EXT-X-MAP` of `initSegment`).
        static func playlist(_ segments: [String], initSegment: String? = nil) -> String {
            var text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n"
            if let initSegment { text += "#EXT-X-MAP:URI=\"\(initSegment)\"\n" }
            for segment in segments { text += "#EXTINF:1.0,\n\(segment)\n" }
            return text + "#EXT-X-ENDLIST\n"
        }

        /// Writes `text` as `name` in a new upload folder beside `victim/`.
        static func upload(_ name: String, _ text: String, in victim: Victim) throws -> URL {
            let folder = victim.root.appendingPathComponent("upload-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let file = folder.appendingPathComponent(name)
            try Data(text.utf8).write(to: file)
            return file
        }

        static let all: [Hostile] = [
            Hostile(label: "HLS, absolute path, named source", format: "hls") { victim in
                try upload("source", playlist([victim.transportStream.path]), in: victim)
            },
            Hostile(label: "HLS, ../ path, named x.mp4", format: "hls") { victim in
                try upload("x.mp4", playlist(["../victim/clip.ts"]), in: victim)
            },
            Hostile(label: "HLS, file: URL, named x.mkv", format: "hls") { victim in
                try upload("x.mkv", playlist(["file:" + victim.transportStream.path]), in: victim)
            },
            Hostile(label: "HLS over the victim's packaged CMAF segments, named source", format: "hls") { victim in
                let names = try FileManager.default.contentsOfDirectory(atPath: victim.package.path)
                let initSegment = try #require(names.first { $0.hasPrefix("init-stream0") })
                let segments = names.filter { $0.hasPrefix("chunk-stream0-") }.sorted().map { victim.package.appendingPathComponent($0).path }
                return try upload("source", playlist(segments, initSegment: victim.package.appendingPathComponent(initSegment).path), in: victim)
            },
            Hostile(label: "DASH, the victim's manifest with a file: BaseURL, named x.mp4", format: "dash") { victim in
                var manifest = try String(contentsOf: victim.package.appendingPathComponent("manifest.mpd"), encoding: .utf8)
                let period = try #require(manifest.range(of: "<Period"))
                manifest.insert(contentsOf: "<BaseURL>file:\(victim.package.path)/</BaseURL>\n", at: period.lowerBound)
                return try upload("x.mp4", manifest, in: victim)
            },
            Hostile(label: "ffconcat, named list.mkv", format: "concat") { victim in
                // The concat demuxer's safe mode allows paths below its own folder only: the
                // list sits above the victim's.
                let file = victim.root.appendingPathComponent("list-\(UUID().uuidString.prefix(8)).mkv")
                try Data("ffconcat version 1.0\nfile victim/clip.mp4\nfile victim/clip.mp4\n".utf8).write(to: file)
                return file
            },
            Hostile(label: "image sequence, a file named frame%03d.jpg", format: "jpeg_pipe") { victim in
                let file = victim.folder.appendingPathComponent("frame%03d.jpg")
                if !FileManager.default.fileExists(atPath: file.path) {
                    try? FileManager.default.copyItem(at: victim.folder.appendingPathComponent("frame001.jpg"), to: file)
                }
                return file
            },
        ]
    }

    @Test("A hostile upload is refused by marquee probe and marquee package; no output holds the victim's media", arguments: Hostile.all)
    func hostileSource(_ hostile: Hostile) throws {
        let victim = try Self.victim.get()
        let source = try hostile.make(victim)
        let marquee = try MarqueeBinary.locate().path
        let reason = "not a single-file movie container: \(hostile.format)"

        let probed = try Tool.run(marquee, ["probe", source.path], timeout: .seconds(120))
        #expect(probed.termination == .exited(1), "\(probed.stdoutText)")
        #expect(probed.stderrText.contains(reason), "\(probed.stderrText)")
        #expect(probed.stdout.isEmpty, "nothing is reported about the victim's streams")

        let out = victim.root.appendingPathComponent("out-\(UUID().uuidString.prefix(8))/title/v1")
        let packaged = try Tool.run(marquee, ["package", source.path, "--out", out.path, "--ladder", "240", "--segment", "1", "--preset", "ultrafast"], timeout: .seconds(300))
        #expect(packaged.termination == .exited(1), "\(packaged.stdoutText)")
        #expect(packaged.stderrText.contains(reason), "\(packaged.stderrText)")
        // Nothing written: no package folder, and no working folder left beside it.
        let parent = out.deletingLastPathComponent()
        #expect(!FileManager.default.fileExists(atPath: out.path))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []).isEmpty)
    }

    @Test("Real single-file sources still probe and package: MP4, Matroska, MPEG-TS", arguments: [("mp4", "mov,mp4,m4a,3gp,3g2,mj2"), ("mkv", "matroska,webm"), ("ts", "mpegts")])
    func realSources(_ suffix: String, _ format: String) throws {
        let victim = try Self.victim.get()
        let marquee = try MarqueeBinary.locate().path
        let source = victim.root.appendingPathComponent("real-\(UUID().uuidString.prefix(8)).\(suffix)")
        let remuxed = try Tool.run("/usr/bin/ffmpeg", ["-nostdin", "-v", "error", "-i", victim.clip.path, "-c", "copy", source.path])
        #expect(remuxed.termination == .exited(0), "\(remuxed.stderrText)")

        let probed = try Tool.run(marquee, ["probe", source.path], timeout: .seconds(120))
        #expect(probed.termination == .exited(0), "\(probed.stderrText)")
        let info = try JSONSerialization.jsonObject(with: probed.stdout) as? [String: Any]
        #expect(info?["container"] as? String == format)

        let out = victim.root.appendingPathComponent("real-out-\(UUID().uuidString.prefix(8))")
        let packaged = try Tool.run(marquee, ["package", source.path, "--out", out.path, "--ladder", "240", "--segment", "1", "--preset", "ultrafast"], timeout: .seconds(300))
        #expect(packaged.termination == .exited(0), "\(packaged.stderrText)")
        let played = try Tool.run("/usr/bin/ffmpeg", ["-nostdin", "-v", "error", "-i", out.appendingPathComponent("master.m3u8").path, "-map", "0", "-f", "null", "-"], timeout: .seconds(120))
        #expect(played.termination == .exited(0) && played.stderrText.isEmpty, "\(played.stderrText)")
    }

    @Test("A frame stamped 10 hours past a 4 s source's end: the package is 4 s long and made at once")
    func farFutureFrame() throws {
        let root = try Scratch.newDirectory("far-future")
        let clean = root.appendingPathComponent("clean.ts")
        let source = root.appendingPathComponent("jump.ts")
        for arguments in [
            ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4", "-c:v", "libx264", "-preset", "ultrafast", clean.path],
            // The 11th packet's presentation time moved 36,000 s on; the file ends at 4 s.
            ["-i", clean.path, "-c", "copy", "-bsf:v", "setts=pts=if(eq(N\\,10)\\,PTS+36000/TB\\,PTS)", source.path],
        ] {
            let made = try Tool.run("/usr/bin/ffmpeg", ["-nostdin", "-v", "error"] + arguments)
            #expect(made.termination == .exited(0), "\(made.stderrText)")
        }
        let marquee = try MarqueeBinary.locate().path
        let probed = try Tool.run(marquee, ["probe", source.path], timeout: .seconds(120))
        #expect(probed.termination == .exited(0), "\(probed.stderrText)")
        let declared = (try JSONSerialization.jsonObject(with: probed.stdout) as? [String: Any])?["durationSeconds"] as? Double ?? 0
        #expect(declared > 3.5 && declared < 5, "\(declared)")

        // Without the bound, 900,000 repeated pictures: the deadline is what a user would wait.
        let out = root.appendingPathComponent("package")
        let packaged = try Tool.run(marquee, ["package", source.path, "--out", out.path, "--ladder", "240", "--segment", "1", "--preset", "ultrafast"], timeout: .seconds(300))
        #expect(packaged.termination == .exited(0), "\(packaged.stderrText)")
        let playlists = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix("media_") && $0.hasSuffix(".m3u8") }
        #expect(!playlists.isEmpty)
        for name in playlists {
            let listed = try String(contentsOf: out.appendingPathComponent(name), encoding: .utf8).split(separator: "\n")
                .filter { $0.hasPrefix("#EXTINF:") }.map { Double($0.dropFirst(8).prefix { $0 != "," }) ?? 0 }.reduce(0, +)
            #expect(listed > 3.5 && listed <= declared + 2, "\(name) lists \(listed) s")
        }
    }
}
