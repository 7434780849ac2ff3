import MarqueeTestSupport
import Foundation
import Glibc

/// The served folder every test reads from, built once per test run: an HLS title with fMP4
/// (CMAF) segments and a DASH title encoded by ffmpeg, a spliced-size and a memory-size file, one
/// file per media type, hidden files, a directory, and symlinks that try to leave the root.
///
/// Tests that change files make their own root with `makeScratchRoot`.
struct MediaFixtures: Sendable {
    /// The served root.
    let root: URL
    /// A folder beside the root, holding `secret.txt`; nothing in it may ever be served.
    let outside: URL

    static let secret = "MARQUEE-E2E-SECRET-3c1f9a: this must never be served"

    // URL paths under the root.
    static let hlsMaster = "/titles/demo/1/hls/master.m3u8"
    static let hlsMedia = "/titles/demo/1/hls/index.m3u8"
    static let hlsInit = "/titles/demo/1/hls/init.mp4"
    static let hlsSegment = "/titles/demo/1/hls/seg_000.m4s"
    static let dashManifest = "/titles/demo/1/dash/manifest.mpd"
    static let dashSegment = "/titles/demo/1/dash/chunk-stream0-00001.m4s"
    /// 2.5 MB: above the 64 KiB memory limit, so it is spliced.
    static let big = "/files/big.bin"
    static let bigSize = 2_500_000
    /// 3000 bytes: served from memory.
    static let small = "/files/small.bin"
    static let smallSize = 3000

    /// Frames in the titles: 6 s at 25 fps.
    static let videoFrames = 150

    /// The fixtures, made on first use (thread-safe: a `static let` is initialised once).
    static func shared() throws -> MediaFixtures { try built.get() }
    private static let built: Result<MediaFixtures, any Error> = Result { try MediaFixtures.build() }

    func file(_ path: String) -> URL { root.appendingPathComponent(String(path.dropFirst())) }

    func contents(_ path: String) throws -> Data { try Data(contentsOf: file(path)) }

    private static func build() throws -> MediaFixtures {
        let base = try Scratch.newDirectory("fixtures")
        let root = base.appendingPathComponent("media")
        let outside = base.appendingPathComponent("outside")
        let fm = FileManager.default
        let hls = root.appendingPathComponent("titles/demo/1/hls")
        let dash = root.appendingPathComponent("titles/demo/1/dash")
        for folder in [hls, dash, outside, root.appendingPathComponent("files/dir"), root.appendingPathComponent("types"),
            root.appendingPathComponent(".git")]
        {
            try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        }

        // Both encodes at once: about a second each on two cores.
        let source = [
            "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
            "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac",
        ]
        let hlsEncode = try RunningTool(
            "/usr/bin/ffmpeg",
            source + [
                "-f", "hls", "-hls_time", "2", "-hls_segment_type", "fmp4", "-hls_playlist_type", "vod",
                "-master_pl_name", "master.m3u8", "-hls_segment_filename", hls.appendingPathComponent("seg_%03d.m4s").path,
                hls.appendingPathComponent("index.m3u8").path,
            ])
        // The segment timeline lists exactly the segments written (a bare template makes players
        // ask for one past the end of the shorter stream).
        let dashEncode = try RunningTool(
            "/usr/bin/ffmpeg", source + ["-f", "dash", "-seg_duration", "2", dash.appendingPathComponent("manifest.mpd").path])
        for (name, encode) in [("HLS", hlsEncode), ("DASH", dashEncode)] {
            let result = try encode.finish(timeout: .seconds(120))
            guard result.termination == .exited(0) else {
                throw ToolError(description: "ffmpeg \(name) encode failed (\(result.termination)): \(result.stderrText)")
            }
        }
        for path in [hlsMaster, hlsMedia, hlsInit, hlsSegment, dashManifest, dashSegment] {
            guard fm.fileExists(atPath: root.appendingPathComponent(String(path.dropFirst())).path) else {
                throw ToolError(description: "ffmpeg did not write \(path)")
            }
        }

        var generator = SeededGenerator(seed: 0x6d61_7271_7565_65)
        try Data(generator.bytes(bigSize)).write(to: root.appendingPathComponent("files/big.bin"))
        try Data(generator.bytes(smallSize)).write(to: root.appendingPathComponent("files/small.bin"))
        for name in ["sample.m4a", "sample.mp4", "sample.ts", "sample.vtt", "sample.json"] {
            try Data(generator.bytes(512)).write(to: root.appendingPathComponent("types/\(name)"))
        }
        try Data("[core]\n\tsecret = hidden\n".utf8).write(to: root.appendingPathComponent(".git/config"))
        try Data("hidden\n".utf8).write(to: root.appendingPathComponent("titles/.env"))

        let secret = outside.appendingPathComponent("secret.txt")
        try Data(Self.secret.utf8).write(to: secret)
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("files/leak.txt").path, withDestinationPath: secret.path)
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("files/passwd").path, withDestinationPath: "/etc/passwd")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("files/escape").path, withDestinationPath: outside.path)
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("files/up").path, withDestinationPath: "../../outside/secret.txt")
        return MediaFixtures(root: root, outside: outside)
    }

    /// A new served root of its own, holding copies of `paths`, for tests that change files.
    func makeScratchRoot(copying paths: [String] = []) throws -> URL {
        let scratch = try Scratch.newDirectory("root")
        for path in paths {
            let target = scratch.appendingPathComponent(String(path.dropFirst()))
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: file(path), to: target)
        }
        return scratch
    }
}
