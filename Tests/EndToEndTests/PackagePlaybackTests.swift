import Foundation
import MarqueeTestSupport
import Testing

/// `marquee package` on a generated clip, served by `marquee origin`, played in ffmpeg over HLS
/// and DASH (every rendition), its manifests parsed by the m3u8 and mpegdash libraries.
@Suite("Packages play through the origin")
struct PackagePlaybackTests {
    @Test("Every rendition decodes over HLS and over DASH; the manifests parse; a bad source leaves no manifest")
    func packageAndPlay() throws {
        let root = try Scratch.newDirectory("packaged")
        let source = root.appendingPathComponent("source.mp4").path
        let made = try Tool.run(
            "/usr/bin/ffmpeg",
            ["-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=8", "-f", "lavfi", "-i",
             "sine=frequency=330:sample_rate=44100:duration=8", "-ac", "2", "-c:v", "libx264", "-c:a", "aac", "-shortest", source])
        #expect(made.termination == .exited(0))
        let package = root.appendingPathComponent("titles/clip/v1").path
        let packaged = try Tool.run(
            MarqueeBinary.locate().path, ["package", source, "--out", package, "--ladder", "720,480,360", "--segment", "2", "--preset", "ultrafast"],
            timeout: .seconds(300))
        #expect(packaged.termination == .exited(0), "\(packaged.stderrText)")
        #expect(packaged.stderrText.contains("progress 100%"), "plain progress lines when not on a terminal")

        let server = try ServerProcess(root: root)
        defer { server.stop() }
        for manifest in ["master.m3u8", "manifest.mpd"] {
            let url = server.url("/titles/clip/v1/\(manifest)")
            let probe = try Tool.run("/usr/bin/ffprobe", ["-v", "error", "-show_entries", "stream=codec_type,width,height", "-of", "csv=p=0", url])
            let videos = probe.stdoutText.split(separator: "\n").filter { $0.hasPrefix("video") }
            #expect(Set(videos.map(String.init)) == ["video,1280,720", "video,854,480", "video,640,360"], "\(manifest): \(probe.stdoutText)")
            let played = try Tool.run("/usr/bin/ffmpeg", ["-nostdin", "-v", "error", "-i", url, "-map", "0", "-f", "null", "-"], timeout: .seconds(120))
            #expect(played.termination == .exited(0) && played.stderrText.isEmpty, "\(manifest): \(played.stderrText)")
        }

        let parsed = try PythonEnvironment.run(
            """
            import m3u8, mpegdash.parser, sys
            folder = sys.argv[1] if len(sys.argv) > 1 else '\(package)'
            master = m3u8.load(folder + '/master.m3u8')
            assert master.is_variant, 'master is a variant playlist'
            for p in master.playlists:
                info = p.stream_info
                assert info.bandwidth >= info.average_bandwidth > 0, info
                assert info.codecs.startswith('avc1.') and 'mp4a.40.2' in info.codecs, info.codecs
                assert info.frame_rate == 30.0, info.frame_rate
                media = m3u8.load(folder + '/' + p.uri)
                assert media.playlist_type == 'vod' and media.is_endlist and len(media.segments) == 4, p.uri
            mpd = mpegdash.parser.MPEGDASHParser.parse(folder + '/manifest.mpd')
            sets = mpd.periods[0].adaptation_sets
            print(len(master.playlists), sum(len(s.representations) for s in sets))
            """)
        #expect(parsed.trimmingCharacters(in: .whitespacesAndNewlines) == "3 4", "3 video variants; 3 video + 1 audio representations")

        let bad = root.appendingPathComponent("bad.mp4")
        try Data(repeating: 0x42, count: 4096).write(to: bad)
        let refused = try Tool.run(MarqueeBinary.locate().path, ["package", bad.path, "--out", root.appendingPathComponent("titles/bad/v1").path])
        #expect(refused.termination == .exited(1))
        #expect(refused.stderrText.contains("not a video"), "\(refused.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("titles/bad/v1/master.m3u8").path))
    }
}
