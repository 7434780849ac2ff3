import ArgumentParser
import Foundation
import MarqueeConsole
import MarqueeLoad

struct LoadtestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Load-test any HTTP server that serves HLS or DASH.",
        discussion: """
            By default, viewers play an HLS master (or media) playlist or a DASH manifest in real time: \
            a startup buffer, then each segment when the buffer has room, rendition switches by \
            measured throughput, stalls when the buffer runs dry, CMCD headers on every request. The \
            report gives each request kind's latency and statuses, and the viewers' startup time, \
            rebuffer ratio and bitrate. --raw instead runs a closed-loop maximum-rate client, like \
            wrk. --compare URL2 runs a second target in the same run and prints B/A ratios. With \
            --api BASE --title ID (instead of URL), each viewer signs in and starts a real playback \
            session, plays its signed URL, and ends it afterwards. See docs/loadtest.md.
            """)

    @Argument(help: "http://HOST[:PORT]/path to request: an HLS playlist or a DASH manifest (or, with --raw, anything). Not with --api.")
    var url: String?

    @Option(help: "The platform's base URL (the gateway, e.g. http://127.0.0.1:8080): viewers start real playback sessions there.")
    var api: String?

    @Option(help: "With --api: the title the viewers play.")
    var title: String?

    @Option(help: "With --api: a file of viewer accounts, email:password per line (each holds up to 3 sessions). Without it, accounts are registered.")
    var accounts: String?

    @Option(help: "With --api: credit each account's wallet with this amount (minor units) first, where self-service deposits are allowed (marquee dev).")
    var deposit = 0

    @Option(help: "With --deposit: the currency.")
    var currency = "EUR"

    @Flag(help: "With --api: play the sessions' DASH manifests instead of their HLS playlists.")
    var dash = false

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

    @Option(help: "Percent of viewers that pause once (5–30 s, at a random time).")
    var pause = 0.0

    @Option(help: "Percent of viewers that seek once (to 0–90% of the title, at a random time).")
    var seek = 0.0

    @Option(help: "Percent of viewers that leave at a random time.")
    var abandon = 0.0

    @Option(help: "Seed of the viewers' random behaviours (the same seed, the same choices).")
    var seed: UInt64 = 1

    @Option(help: "Write the results as JSON to this file as well.")
    var json: String?

    func validate() throws {
        if api == nil {
            guard url != nil else { throw ValidationError("give the URL to load, or --api BASE --title ID") }
            guard title == nil && accounts == nil && deposit == 0 && !dash else { throw ValidationError("--title, --accounts, --deposit and --dash go with --api") }
        } else {
            guard url == nil else { throw ValidationError("give either a URL or --api BASE --title ID, not both") }
            guard title != nil else { throw ValidationError("--api needs --title ID") }
            guard !raw && compare == nil else { throw ValidationError("--api plays viewers; it does not go with --raw or --compare") }
        }
        guard deposit >= 0 else { throw ValidationError("--deposit must not be negative") }
        for (name, value) in [("--pause", pause), ("--seek", seek), ("--abandon", abandon)] {
            guard (0...100).contains(value) else { throw ValidationError("\(name) is a percentage of viewers, 0 to 100; got \(value)") }
        }
        guard (1...100_000).contains(viewers) else { throw ValidationError("--viewers must be between 1 and 100000, got \(viewers)") }
        guard ramp >= 0 && ramp <= 3600 else { throw ValidationError("--ramp must be between 0 and 3600 seconds, got \(ramp)") }
        guard (1...100_000).contains(connections) else { throw ValidationError("--connections must be between 1 and 100000, got \(connections)") }
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be between 1 and 64, got \(threads)") }
        guard duration > 0 && duration <= 86_400 else { throw ValidationError("--duration must be between 0 and 86400 seconds, got \(duration)") }
    }

    func run() async throws {
        if let api, let title { return try await playSessions(api: api, title: title) }
        let url = url ?? ""
        let targets = try ([url] + (compare.map { [$0] } ?? [])).map(Self.target)
        if raw { try hammer(targets) } else { try play(targets) }
    }

    static func target(_ text: String) throws -> LoadTarget {
        do throws(LoadTarget.Problem) {
            return try LoadTarget(text)
        } catch {
            printError("marquee loadtest: \(error.description)")
            throw ExitCode(2)
        }
    }

    /// `--api`: accounts, sessions, the viewers on their own signed URLs, then the sessions ended.
    func playSessions(api base: String, title: String) async throws {
        let sessions = LoadtestSessions(api: DevAPI(base: base.hasSuffix("/") ? String(base.dropLast()) : base), title: title)
        let started: LoadtestSessions.Started
        let accountList: [LoadtestSessions.Account]
        let tokens: [String]
        do {
            if let accounts {
                accountList = try LoadtestSessions.accounts(file: accounts)
            } else {
                let needed = (viewers + LoadtestSessions.sessionsPerAccount - 1) / LoadtestSessions.sessionsPerAccount
                printError("marquee loadtest: registering \(needed) viewer account(s) at \(base)")
                accountList = try await sessions.register(count: needed)
            }
            tokens = try await sessions.signIn(accountList, deposit: deposit, currency: currency)
            started = await sessions.start(viewers: viewers, tokens: tokens, dash: dash)
        } catch {
            printError("marquee loadtest: \(error)")
            throw ExitCode(1)
        }
        let refused = started.refused.sorted { $0.key < $1.key }.map { "\($0.value) × \($0.key)" }.joined(separator: "; ")
        printError("marquee loadtest: \(started.ids.count) of \(viewers) playback sessions started" + (refused.isEmpty ? "" : "; refused: \(refused)"))
        guard let first = started.urls.first else {
            printError("marquee loadtest: no session started, nothing to play")
            throw ExitCode(1)
        }
        let target = try Self.target(first)
        var paths: [String] = []
        for url in started.urls {
            let each = try Self.target(url)
            guard each.host == target.host && each.port == target.port else {
                printError("marquee loadtest: the sessions' URLs are on different hosts (\(target.host):\(target.port), \(each.host):\(each.port)); one run plays one host")
                throw ExitCode(1)
            }
            paths.append(each.path)
        }
        let load = PlayerLoad(
            target: target, viewers: started.ids.count, threads: threads, durationSeconds: duration, rampSeconds: ramp, masterPaths: paths,
            sessionIDs: started.ids, contentID: title, behaviours: behaviours)
        let results: PlayerResults
        do {
            results = try load.run { printError($0.line) }
        } catch {
            printError("marquee loadtest: \(error.description)")
            throw ExitCode(1)
        }
        let notEnded = await sessions.end(started, accounts: accountList, tokens: tokens)
        printLine(results.text(title: "marquee loadtest --api \(base) --title \(title): \(started.ids.count) viewers (sessions) over \(ramp) s, \(load.threads) thread(s), \(duration) s"))
        printLine("sessions  \(started.ids.count) started, \(started.ids.count - notEnded) ended afterwards" + (refused.isEmpty ? "" : "; refused: \(refused)"))
        if let json {
            // Each session that played, with the stalls its viewer saw: the truth analytics' rebuffering is checked against.
            let playedJSON = results.sessions.map { "{\"id\": \(Self.quoted($0.sessionID)), \"stalls\": \($0.stalls), \"stalled_ms\": \($0.stalledMs)}" }
                .joined(separator: ", ")
            let refusedJSON = started.refused.sorted { $0.key < $1.key }.map { "\(Self.quoted($0.key)): \($0.value)" }.joined(separator: ", ")
            let fields: [(String, String)] = [
                ("mode", "\"viewers\""), ("api", Self.quoted(base)), ("title", Self.quoted(title)), ("viewers", "\(viewers)"), ("ramp_s", "\(ramp)"),
                ("threads", "\(load.threads)"), ("duration_s", "\(duration)"), ("behaviours", behavioursJSON),
                (
                    "sessions",
                    "{\"started\": \(started.ids.count), \"ended\": \(started.ids.count - notEnded), \"refused\": {\(refusedJSON)}, \"ids\": [\(started.ids.map(Self.quoted).joined(separator: ", "))], \"played\": [\(playedJSON)]}"
                ),
            ]
            try Self.write(results.json(fields: fields), to: json)
        }
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
        let fields: [(String, String)] = [("mode", "\"raw\""), ("connections", "\(connections)"), ("threads", "\(threadsUsed)"), ("duration_s", "\(duration)")]
        try report(
            targets, settings: "\(connections) connections, \(threadsUsed) thread(s), \(duration) s" + (targets.count > 1 ? ", 3 rounds" : ""),
            fields: fields + (targets.count > 1 ? [("rounds", "3")] : []), text: { results[$0].text(title: $1) }, json: { results[$0].json(fields: $1) },
            comparison: { Comparison.raw(results[0], results[1]) })
    }

    /// Player mode: viewers playing the title in real time; with --compare, the same number again
    /// against B, at the same time.
    func play(_ targets: [LoadTarget]) throws {
        let loads = targets.map {
            PlayerLoad(target: $0, viewers: viewers, threads: threads, durationSeconds: duration, rampSeconds: ramp, behaviours: behaviours)
        }
        let results: [PlayerResults]
        do {
            results = try PlayerLoad.run(loads) { counts in
                for (k, each) in counts.enumerated() { printError((loads.count > 1 ? (k == 0 ? "A " : "B ") : "") + each.line) }
            }
        } catch {
            printError("marquee loadtest: \(error.description)")
            throw ExitCode(1)
        }
        let fields: [(String, String)] = [
            ("mode", "\"viewers\""), ("viewers", "\(viewers)"), ("ramp_s", "\(ramp)"), ("threads", "\(loads[0].threads)"), ("duration_s", "\(duration)"),
            ("behaviours", behavioursJSON),
        ]
        try report(
            targets, settings: "\(viewers) viewers over \(ramp) s, \(loads[0].threads) thread(s), \(duration) s", fields: fields,
            text: { results[$0].text(title: $1) }, json: { results[$0].json(fields: $1) }, comparison: { Comparison.viewers(results[0], results[1]) })
    }

    /// Prints one target's report, or A's and B's and their ratios, and writes `--json`: one
    /// report, or `{settings…, "compare": true, "a": …, "b": …, "ratios": …}`.
    func report(
        _ targets: [LoadTarget], settings: String, fields: [(String, String)], text: (Int, String) -> String, json toJSON: (Int, [(String, String)]) -> String,
        comparison: () -> Comparison
    ) throws {
        let command = raw ? "marquee loadtest --raw" : "marquee loadtest"
        guard targets.count > 1 else {
            printLine(text(0, "\(command) \(targets[0].url): \(settings)"))
            var fields = fields
            fields.insert(("url", Self.quoted(targets[0].url)), at: 1)
            if let json { try Self.write(toJSON(0, fields), to: json) }
            return
        }
        printLine(text(0, "A: \(targets[0].url): \(settings)"))
        printLine(text(1, "B: \(targets[1].url): \(settings)"))
        let ratios = comparison()
        printLine(ratios.text(a: targets[0].url, b: targets[1].url))
        if let json {
            let settings = fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ")
            let each = (0...1).map { toJSON($0, [("url", Self.quoted(targets[$0].url))]).trimmingCharacters(in: .newlines) }
            try Self.write("{\(settings), \"compare\": true, \"a\": \(each[0]), \"b\": \(each[1]), \"ratios\": \(ratios.json)}\n", to: json)
        }
    }

    var behavioursJSON: String { "{\"pause_percent\": \(pause), \"seek_percent\": \(seek), \"abandon_percent\": \(abandon), \"seed\": \(seed)}" }

    var behaviours: Behaviours { Behaviours(pausePercent: pause, seekPercent: seek, abandonPercent: abandon, seed: seed) }

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
