import ArgumentParser
import Foundation
import Glibc
import MarqueeConsole
import MarqueeMedia

/// `marquee package SRC --out DIR`: one local run, no queue: probe, transcode the ladder, package
/// CMAF for HLS and DASH into DIR.
struct PackageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "package", abstract: "Transcode a source into an HLS + DASH (CMAF) package folder.")

    @Argument(help: "The source file.")
    var source: String

    @Option(help: "The package folder to write (DIR/master.m3u8, DIR/manifest.mpd, segments).")
    var out: String

    @Option(help: "Rung heights, e.g. 1080,720,480,360 (taller than the source are left out).")
    var ladder: String = "1080,720,480,360"

    @Option(help: "Segment length in seconds.")
    var segment: Int = 4

    @Option(help: "libx264 preset (ultrafast ... veryslow).")
    var preset: String = "veryfast"

    func run() throws {
        var settings = TranscodeSettings()
        let heights = ladder.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !heights.isEmpty, heights.allSatisfy({ $0 >= 144 && $0 <= 4320 && $0 % 2 == 0 }) else {
            throw ValidationError("--ladder takes even heights from 144 to 4320, e.g. 1080,720,480,360")
        }
        guard (1...20).contains(segment) else { throw ValidationError("--segment must be 1 to 20 seconds") }
        settings.ladderHeights = heights
        settings.segmentSeconds = segment
        settings.preset = preset
        let terminal = isatty(2) != 0
        var lastLine = -1
        do {
            let summary = try Packager.package(source: source, into: out, settings: settings) { progress in
                if terminal {
                    let filled = Int(progress.percent / 100 * 30)
                    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
                    let eta = Int(progress.etaSeconds.rounded())
                    FileHandle.standardError.write(Data(String(format: "\r[%@] %5.1f%%  %.0f fps  ETA %d:%02d ", bar, progress.percent, progress.framesPerSecond, eta / 60, eta % 60).utf8))
                } else if Int(progress.percent) / 10 != lastLine {
                    lastLine = Int(progress.percent) / 10
                    FileHandle.standardError.write(Data(String(format: "progress %.0f%% %.0f fps eta %.0fs\n", progress.percent, progress.framesPerSecond, progress.etaSeconds).utf8))
                }
            }
            if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
            for r in summary.renditions {
                print("\(r.name) \(r.width)x\(r.height) bandwidth \(r.bandwidth) average \(r.averageBandwidth) \(r.codecs)")
            }
            print("package: \(out)/master.m3u8 \(out)/manifest.mpd")
        } catch {
            if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
            printError("marquee package: \(source): \(error)")
            throw ExitCode(1)
        }
    }
}
