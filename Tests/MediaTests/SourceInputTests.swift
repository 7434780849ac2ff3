import CFFmpeg
import Foundation
@testable import MarqueeMedia
import MarqueeTestSupport
import Testing

/// A source is one file holding one movie. Playlists, manifests, lists and image sequences that
/// name another title's files on the same machine (the attack: a publisher uploads a few lines of
/// text and gets someone else's title packaged as theirs) are refused by the probe, by the
/// packager and by the transcoder alone, under any file name; real single-file containers still
/// probe.
@Suite("Sources are single-file movie containers that open nothing else")
struct SourceInputTests {
    /// Another publisher's title on this machine: a clip, its MPEG-TS copy, its DASH package and its
    /// frames as a JPEG sequence, in `victim/` beside the attackers' folders.
    struct Victim: Sendable {
        let folder: URL
        var clip: String { folder.appendingPathComponent("clip.mp4").path }
        var transportStream: String { folder.appendingPathComponent("clip.ts").path }
        var dash: URL { folder.appendingPathComponent("dash") }
    }

    static let victim: Result<Victim, any Error> = Result {
        let folder = MediaProbeTests.folder.appendingPathComponent("victim")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("dash"), withIntermediateDirectories: true)
        let victim = Victim(folder: folder)
        let ffmpeg = ["-nostdin", "-v", "error", "-y"]
        let steps: [[String]] = [
            MediaProbeTests.video + MediaProbeTests.tone + ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", victim.clip],
            ["-i", victim.clip, "-c", "copy", victim.transportStream],
            ["-i", victim.clip, "-c", "copy", "-f", "dash", "-seg_duration", "1", victim.dash.appendingPathComponent("manifest.mpd").path],
            ["-i", victim.clip, "-frames:v", "50", "-q:v", "3", folder.appendingPathComponent("frame%03d.jpg").path],
        ]
        for arguments in steps {
            let made = try Subprocess.run("/usr/bin/ffmpeg", ffmpeg + arguments)
            guard made.succeeded else { throw TestEnvironmentError("ffmpeg \(arguments) failed: \(made.output)") }
        }
        return victim
    }

    /// The spellings of the attack: what the publisher uploads, under which name, and the demuxer
    /// libavformat would have picked for it.
    enum Hostile: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case hlsAbsolutePath, hlsRelativePath, hlsFileURL, dashManifest, ffconcat, imageSequence

        var testDescription: String { rawValue }

        /// The demuxer libavformat detects; the refusal names it.
        var format: String {
            switch self {
            case .hlsAbsolutePath, .hlsRelativePath, .hlsFileURL: "hls"
            case .dashManifest: "dash"
            case .ffconcat: "concat"
            case .imageSequence: "jpeg_pipe"
            }
        }

        /// Writes the hostile source in a fresh attacker folder (beside `victim/`, or for ffconcat,
        /// whose safe mode allows only paths below its own folder, above it) and returns its path.
        func write(against victim: Victim) throws -> String {
            let files = FileManager.default
            let attacker = MediaProbeTests.folder.appendingPathComponent("attacker-\(UUID().uuidString.prefix(8))")
            try files.createDirectory(at: attacker, withIntermediateDirectories: true)
            func playlist(_ segment: String) -> String {
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:3.0,\n\(segment)\n#EXT-X-ENDLIST\n"
            }
            let (name, text): (String, String)
            switch self {
            case .hlsAbsolutePath: (name, text) = ("source", playlist(victim.transportStream))
            case .hlsRelativePath: (name, text) = ("x.mp4", playlist("../victim/clip.ts"))
            case .hlsFileURL: (name, text) = ("x.mkv", playlist("file:" + victim.transportStream))
            case .dashManifest:
                let manifest = try String(contentsOf: victim.dash.appendingPathComponent("manifest.mpd"), encoding: .utf8)
                guard let period = manifest.range(of: "<Period") else { throw TestEnvironmentError("no Period in the victim's manifest") }
                var hostile = manifest
                hostile.insert(contentsOf: "<BaseURL>file:\(victim.dash.path)/</BaseURL>\n", at: period.lowerBound)
                (name, text) = ("source", hostile)
            case .ffconcat:
                let path = MediaProbeTests.folder.appendingPathComponent("list-\(UUID().uuidString.prefix(8)).mp4")
                try Data("ffconcat version 1.0\nfile victim/clip.mp4\n".utf8).write(to: path)
                return path.path
            case .imageSequence:
                // A file literally named with a pattern: given the name, libavformat's image2 reads
                // frame001.jpg, frame002.jpg, ... beside it.
                let path = victim.folder.appendingPathComponent("frame%03d.jpg")
                if !files.fileExists(atPath: path.path) {
                    try? files.copyItem(at: victim.folder.appendingPathComponent("frame001.jpg"), to: path)
                }
                return path.path
            }
            let path = attacker.appendingPathComponent(name)
            try Data(text.utf8).write(to: path)
            return path.path
        }
    }

    @Test("A hostile source is refused by the probe, naming its format", arguments: Hostile.allCases)
    func probeRefuses(_ hostile: Hostile) throws {
        let source = try hostile.write(against: try Self.victim.get())
        #expect(throws: ProbeRefusal.unsupportedContainer(hostile.format)) { try MediaProbe.probe(source) }
        #expect(ProbeRefusal.unsupportedContainer(hostile.format).description == "not a single-file movie container: \(hostile.format)")
    }

    @Test("A hostile source is refused by the packager and writes nothing", arguments: Hostile.allCases)
    func packagerRefuses(_ hostile: Hostile) throws {
        let source = try hostile.write(against: try Self.victim.get())
        let out = MediaProbeTests.folder.appendingPathComponent("pkg-hostile-\(UUID().uuidString.prefix(8))")
        #expect(throws: ProbeRefusal.unsupportedContainer(hostile.format)) {
            try Packager.package(source: source, into: out.path, settings: PackagerTests.settings())
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    @Test("The transcoder opens the source the same way, even when handed a probe of another file", arguments: Hostile.allCases)
    func transcoderRefuses(_ hostile: Hostile) throws {
        let victim = try Self.victim.get()
        let source = try hostile.write(against: victim)
        let folder = MediaProbeTests.folder.appendingPathComponent("transcode-hostile-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let transcoder = Transcoder(source: source, folder: folder.path, settings: PackagerTests.settings(), info: try MediaProbe.probe(victim.clip))
        do {
            _ = try transcoder.run()
            Issue.record("\(hostile) was transcoded")
        } catch {
            #expect(error.refusal == .unsupportedContainer(hostile.format), "\(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test(
        "Single-file containers made from the same clip still probe",
        arguments: [
            ("clip.mkv", ["-c", "copy"], "matroska,webm"), ("clip.ts", ["-c", "copy"], "mpegts"), ("clip.avi", ["-c", "copy"], "avi"),
            // H.264 in a program stream is not what DVDs and editors wrote: MPEG-2 video.
            ("clip.flv", ["-c", "copy"], "flv"), ("clip.mpg", ["-c:v", "mpeg2video", "-c:a", "mp2", "-f", "vob"], "mpeg"),
            ("clip.mov", ["-c", "copy"], "mov,mp4,m4a,3gp,3g2,mj2"),
        ])
    func singleFileContainers(_ name: String, _ arguments: [String], _ format: String) throws {
        let victim = try Self.victim.get()
        let path = try MediaProbeTests.clip("container-" + name, ["-i", victim.clip] + arguments)
        let info = try MediaProbe.probe(path)
        #expect(info.container == format)
        #expect(info.video.codec == (format == "mpeg" ? "mpeg2video" : "h264") && info.video.width == 640 && info.video.height == 360)
        #expect(abs(info.durationSeconds - 3) < 0.3, "\(info.durationSeconds)")
    }

    @Test("Accepted, refused for its container or refused later, the source's descriptor is closed when the probe returns")
    func descriptorsClosed() throws {
        let victim = try Self.victim.get()
        // Copies of their own, so the check is not confused by other tests opening the same files.
        let folder = MediaProbeTests.folder.appendingPathComponent("descriptors-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let good = folder.appendingPathComponent("good.mp4")
        try FileManager.default.copyItem(atPath: victim.clip, toPath: good.path)
        let playlist = URL(fileURLWithPath: try Hostile.hlsAbsolutePath.write(against: victim))
        let cut = folder.appendingPathComponent("cut.mp4")
        let data = try Data(contentsOf: good)
        try data.prefix(data.count / 2).write(to: cut)

        func openDescriptors(of file: URL) -> Int {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
            return fds.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == file.path }.count
        }
        // The check sees a descriptor that is open.
        let held = try FileHandle(forReadingFrom: cut)
        #expect(openDescriptors(of: cut) == 1)
        try held.close()

        _ = try MediaProbe.probe(good.path)
        #expect(throws: ProbeRefusal.self) { try MediaProbe.probe(playlist.path) }
        #expect(throws: ProbeRefusal.self) { try MediaProbe.probe(cut.path) }
        let folderOut = folder.appendingPathComponent("transcode")
        try FileManager.default.createDirectory(at: folderOut, withIntermediateDirectories: true)
        do {
            _ = try Transcoder(source: playlist.path, folder: folderOut.path, settings: PackagerTests.settings(), info: try MediaProbe.probe(good.path)).run()
        } catch {}
        for file in [good, playlist, cut] { #expect(openDescriptors(of: file) == 0, "\(file.lastPathComponent) is still open") }
    }

    @Test("Even an allowed demuxer cannot open another file: io_open refuses, and no protocol or other format is whitelisted")
    func nothingElseOpens() throws {
        let victim = try Self.victim.get()
        let input = try SourceInput.open(victim.clip)
        defer { withExtendedLifetime(input) {} }
        let format = input.format
        #expect(String(cString: format.pointee.iformat.pointee.name) == "mov,mp4,m4a,3gp,3g2,mj2")
        // What an MP4 data reference, were they followed, would ask for.
        var other: UnsafeMutablePointer<AVIOContext>? = nil
        let opened = format.pointee.io_open(format, &other, victim.transportStream, AVIO_FLAG_READ, nil)
        #expect(opened == mq_averror(EPERM) && other == nil)
        #expect(format.pointee.protocol_whitelist.map { String(cString: $0) } == "")
        #expect(format.pointee.format_whitelist.map { String(cString: $0) } == SourceInput.formatWhitelist)
        #expect(!SourceInput.formatWhitelist.split(separator: ",").contains("hls"))
    }

    @Test("What is not a regular file is refused before libavformat sees it")
    func notRegularFiles() throws {
        #expect(throws: ProbeRefusal.notMedia("not a regular file")) { try MediaProbe.probe("/dev/zero") }
        #expect(throws: ProbeRefusal.notMedia("not a regular file")) { try MediaProbe.probe(MediaProbeTests.folder.path) }
    }
}
