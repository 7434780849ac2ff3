import ArgumentParser
import Foundation
import MarqueeConsole
import MarqueeMedia

/// `marquee probe FILE`: what ingest would see in a source, as JSON, or why it would refuse it.
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe", abstract: "Probe a source file with libavformat: streams, codecs, size, rotation, duration; or why ingest would refuse it.")

    @Argument(help: "The source file.")
    var file: String

    func run() throws {
        do {
            let info = try MediaProbe.probe(file)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(info), as: UTF8.self))
        } catch {
            printError("marquee probe: \(file): \(error)")
            throw ExitCode(1)
        }
    }
}
