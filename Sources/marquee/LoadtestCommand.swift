import ArgumentParser
import Foundation
import MarqueeConsole
import MarqueeLoad

struct LoadtestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Load-test any HTTP server that serves HLS or DASH.",
        discussion: """
            By default, viewers play an HLS master (or media) playlist or a DASH manifest in real time: \
            a startup buffer, then each segment when the buffer has room, rendition switches by \
            measured throughput, stalls when the buffer runs dry, CMCD headers on every request. The \
            report gives each request kind's latency and statuses, and the viewers' startup time, \
            rebuffer ratio and bitrate. --raw instead runs a closed-loop maximum-rate client, like \
            wrk. --compare URL2 runs a second target in the same run and prints B/A ratios. See \
            docs/loadtest.md.
            """)

    @Argument(help: "http://HOST[:PORT]/path to request: an HLS playlist or a DASH manifest (or, with --raw, anything).")
    var url: String

    @Option(help: "A second URL to run side by side with the first (B against A): viewers at the same time, raw mode in alternating rounds.")
    var compare: String?

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
        let targets = try ([url] + (compare.map { [$0] } ?? [])).map { (text: String) throws -> LoadTarget in
            do throws(LoadTarget.Problem) {
                return try LoadTarget(text)
            } catch {
                printError("marquee loadtest: \(error.description)")
                throw ExitCode(2)
            }
        }
        if raw { try hammer(targets) } else { try play(targets) }
    }

    /// Raw mode: closed-loop rounds; with --compare, A and B alternate in three rounds each of a
    /// third of the duration, so both meet the same moments of a noisy machine.
    func hammer(_ targets: [LoadTarget]) throws {
        let rounds = targets.count > 1 ? 3 : 1
        var results = targets.map { _ in LoadResults() }
        var threadsUsed = 1
        for round in 0..<rounds {
            for (k, target) in targets.enumerated() {
                let load = RawLoad(target: target, connections: connections, threads: threads, durationSeconds: duration / Double(rounds))
                threadsUsed = load.threads
                let label = targets.count > 1 ? "[\(k == 0 ? "A" : "B") round \(round + 1)/\(rounds)] " : ""
                do {
                    let part = try load.run { seconds, requests, errors, p99 in
                        printError("\(label)[\(Int(seconds.rounded())) s] \(requests) requests, \(errors) errors, p99 \(p99) µs (last second)")
                    }
                    let elapsed = results[k].elapsedSeconds + part.elapsedSeconds
                    results[k].add(part)
                    results[k].elapsedSeconds = elapsed
                } catch {
                    printError("marquee loadtest: \(error.description)")
                    throw ExitCode(1)
                }
            }
        }
        let settings = "\(connections) connections, \(threadsUsed) thread(s), \(duration) s"
        var fields: [(String, String)] = [("mode", "\"raw\""), ("connections", "\(connections)"), ("threads", "\(threadsUsed)"), ("duration_s", "\(duration)")]
        guard targets.count > 1 else {
            printLine(results[0].text(title: "marquee loadtest --raw \(url): \(settings)"))
            fields.insert(("url", Self.quoted(url)), at: 1)
            if let json { try Self.write(results[0].json(fields: fields), to: json) }
            return
        }
        printLine(results[0].text(title: "A: \(url): \(settings), 3 rounds"))
        printLine(results[1].text(title: "B: \(targets[1].url): \(settings), 3 rounds"))
        let comparison = Comparison.raw(results[0], results[1])
        printLine(comparison.text(a: url, b: targets[1].url))
        if let json {
            fields.append(("rounds", "3"))
            try Self.write(Self.compared(fields, results[0].json(fields: [("url", Self.quoted(url))]), results[1].json(fields: [("url", Self.quoted(targets[1].url))]), comparison), to: json)
        }
    }

    /// Player mode: viewers playing the title in real time; with --compare, the same number again
    /// against B, at the same time.
    func play(_ targets: [LoadTarget]) throws {
        let loads = targets.map { PlayerLoad(target: $0, viewers: viewers, threads: threads, durationSeconds: duration, rampSeconds: ramp) }
        let results: [PlayerResults]
        do {
            results = try PlayerLoad.run(loads) { counts in
                for (k, each) in counts.enumerated() { printError((loads.count > 1 ? (k == 0 ? "A " : "B ") : "") + each.line) }
            }
        } catch {
            printError("marquee loadtest: \(error.description)")
            throw ExitCode(1)
        }
        let settings = "\(viewers) viewers over \(ramp) s, \(loads[0].threads) thread(s), \(duration) s"
        var fields: [(String, String)] = [
            ("mode", "\"viewers\""), ("viewers", "\(viewers)"), ("ramp_s", "\(ramp)"), ("threads", "\(loads[0].threads)"), ("duration_s", "\(duration)"),
        ]
        guard targets.count > 1 else {
            printLine(results[0].text(title: "marquee loadtest \(url): \(settings)"))
            fields.insert(("url", Self.quoted(url)), at: 1)
            if let json { try Self.write(results[0].json(fields: fields), to: json) }
            return
        }
        printLine(results[0].text(title: "A: \(url): \(settings)"))
        printLine(results[1].text(title: "B: \(targets[1].url): \(settings)"))
        let comparison = Comparison.viewers(results[0], results[1])
        printLine(comparison.text(a: url, b: targets[1].url))
        if let json {
            try Self.write(Self.compared(fields, results[0].json(fields: [("url", Self.quoted(url))]), results[1].json(fields: [("url", Self.quoted(targets[1].url))]), comparison), to: json)
        }
    }

    /// The --compare report: the settings, each target's own report, and the ratios.
    static func compared(_ fields: [(String, String)], _ a: String, _ b: String, _ comparison: Comparison) -> String {
        let settings = fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ")
        return "{\(settings), \"compare\": true, \"a\": \(a.trimmingCharacters(in: .newlines)), \"b\": \(b.trimmingCharacters(in: .newlines)), \"ratios\": \(comparison.json)}\n"
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
