import ArgumentParser
import Foundation
import MarqueeConsole
import MarqueeLoad

struct LoadtestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Load-test any HTTP server that serves HLS or DASH.",
        discussion: """
            By default, viewers play an HLS master (or media) playlist in real time: a startup buffer, \
            then each segment when the buffer has room, rendition switches by measured throughput, \
            stalls when the buffer runs dry, CMCD headers on every request. The report gives each \
            request kind's latency and statuses, and the viewers' startup time, rebuffer ratio and \
            bitrate. --raw instead runs a closed-loop maximum-rate client, like wrk. See docs/loadtest.md.
            """)

    @Argument(help: "http://HOST[:PORT]/path to request.")
    var url: String

    @Flag(help: "Closed-loop maximum-rate mode instead of viewers.")
    var raw = false

    @Option(help: "Viewers, each on a connection of its own (player mode).")
    var viewers = 100

    @Option(help: "Seconds over which the viewers start (player mode).")
    var ramp = 0.0

    @Option(help: "Connections held open (raw mode).")
    var connections = 64

    @Option(help: "Client threads, each with its own io_uring.")
    var threads = 1

    @Option(help: "Seconds to run.")
    var duration = 10.0

    @Option(help: "Write the results as JSON to this file as well.")
    var json: String?

    func validate() throws {
        guard (1...100_000).contains(viewers) else { throw ValidationError("--viewers must be between 1 and 100000, got \(viewers)") }
        guard ramp >= 0 && ramp <= 3600 else { throw ValidationError("--ramp must be between 0 and 3600 seconds, got \(ramp)") }
        guard (1...100_000).contains(connections) else { throw ValidationError("--connections must be between 1 and 100000, got \(connections)") }
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be between 1 and 64, got \(threads)") }
        guard duration > 0 && duration <= 86_400 else { throw ValidationError("--duration must be between 0 and 86400 seconds, got \(duration)") }
    }

    func run() throws {
        let target: LoadTarget
        do {
            target = try LoadTarget(url)
        } catch {
            printError("marquee loadtest: \(error.description)")
            throw ExitCode(2)
        }
        if !raw { return try play(target) }
        let load = RawLoad(target: target, connections: connections, threads: threads, durationSeconds: duration)
        let results: LoadResults
        do {
            results = try load.run { seconds, requests, errors, p99 in
                printError("[\(Int(seconds.rounded())) s] \(requests) requests, \(errors) errors, p99 \(p99) µs (last second)")
            }
        } catch {
            printError("marquee loadtest: \(error.description)")
            throw ExitCode(1)
        }
        printLine(results.text(title: "marquee loadtest --raw \(url): \(connections) connections, \(load.threads) thread(s), \(duration) s"))
        if let json {
            let fields: [(String, String)] = [
                ("mode", "\"raw\""), ("url", Self.quoted(url)), ("connections", "\(connections)"), ("threads", "\(load.threads)"), ("duration_s", "\(duration)"),
            ]
            try Self.write(results.json(fields: fields), to: json)
        }
    }

    /// Player mode: viewers playing the title in real time.
    func play(_ target: LoadTarget) throws {
        let load = PlayerLoad(target: target, viewers: viewers, threads: threads, durationSeconds: duration, rampSeconds: ramp)
        let results: PlayerResults
        do {
            results = try load.run { seconds, requests, errors, stalls in
                printError("[\(Int(seconds.rounded())) s] \(requests) requests, \(errors) errors, \(stalls) stalls (viewers done)")
            }
        } catch {
            printError("marquee loadtest: \(error.description)")
            throw ExitCode(1)
        }
        printLine(results.text(title: "marquee loadtest \(url): \(viewers) viewers over \(ramp) s, \(load.threads) thread(s), \(duration) s"))
        if let json {
            let fields: [(String, String)] = [
                ("mode", "\"viewers\""), ("url", Self.quoted(url)), ("viewers", "\(viewers)"), ("ramp_s", "\(ramp)"), ("threads", "\(load.threads)"),
                ("duration_s", "\(duration)"),
            ]
            try Self.write(results.json(fields: fields), to: json)
        }
    }

    /// `--json FILE`: the report, or exit 1 saying why it could not be written.
    static func write(_ report: String, to file: String) throws {
        do {
            try report.write(toFile: file, atomically: true, encoding: .utf8)
        } catch {
            printError("marquee loadtest: cannot write \(file): \(error)")
            throw ExitCode(1)
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
