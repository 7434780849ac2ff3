import ArgumentParser
import Foundation
import MarqueeConsole
import MarqueeLoad

struct LoadtestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Load-test any HTTP server that serves HLS or DASH.",
        discussion: """
            --raw: a closed-loop maximum-rate client, like wrk: each connection sends the next GET as \
            soon as the last response is whole. It prints a progress line a second, then requests/s, \
            HdrHistogram latency percentiles, statuses and failures. The player model (viewers playing \
            a master playlist in real time) is being built; see docs/loadtest.md.
            """)

    @Argument(help: "http://HOST[:PORT]/path to request.")
    var url: String

    @Flag(help: "Closed-loop maximum-rate mode (the only mode so far).")
    var raw = false

    @Option(help: "Connections held open (raw mode).")
    var connections = 64

    @Option(help: "Client threads, each with its own io_uring.")
    var threads = 1

    @Option(help: "Seconds to run.")
    var duration = 10.0

    @Option(help: "Write the results as JSON to this file as well.")
    var json: String?

    func validate() throws {
        guard raw else { throw ValidationError("only --raw is built so far: the player model (viewers) comes next (docs/loadtest.md)") }
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
            do {
                try results.json(fields: fields).write(toFile: json, atomically: true, encoding: .utf8)
            } catch {
                printError("marquee loadtest: cannot write \(json): \(error)")
                throw ExitCode(1)
            }
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
