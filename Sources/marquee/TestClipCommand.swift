import ArgumentParser
import MarqueeMedia

/// `marquee test-clip`: writes a generated clip (bars, moving box, clock, tone with a beep each
/// second) for demos and load tests; what `marquee dev` ingests as its demo title.
struct TestClipCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test-clip", abstract: "Write a generated test clip (H.264 + AAC in MP4) made with the media libraries.")

    @Option(help: "Length in seconds.")
    var seconds = 60

    @Option(help: "Picture size, WIDTHxHEIGHT (even numbers).")
    var size = "1280x720"

    @Option(help: "Frames per second.")
    var fps = 25

    @Argument(help: "The MP4 file to write.")
    var output: String

    func run() throws {
        let parts = size.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2 else { throw ValidationError("--size must be WIDTHxHEIGHT, e.g. 1280x720") }
        do {
            try TestClip.write(to: output, options: TestClip.Options(width: parts[0], height: parts[1], framesPerSecond: fps, seconds: seconds))
        } catch {
            throw ValidationError("\(error)")
        }
        print("wrote \(output): \(seconds) s at \(size), \(fps) frames/s")
    }
}
