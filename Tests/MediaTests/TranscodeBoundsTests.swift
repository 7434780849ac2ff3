import Foundation
import MarqueeMedia
import MarqueeTestSupport
import Testing

/// The work a source can cause is bounded by what the probe found: every decoded frame, not only
/// the stream's header, must be within the size limits.
@Suite("Transcoding stays within what the probe found")
struct TranscodeBoundsTests {
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
