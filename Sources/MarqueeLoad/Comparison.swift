import Histogram

/// `--compare`: two targets' figures from one run, side by side, with B's as a multiple of A's.
public struct Comparison: Sendable {
    public struct Row: Sendable {
        public var name: String
        public var a: Double
        public var b: Double
        /// B ÷ A; nil when A is 0.
        public var ratio: Double? { a != 0 ? b / a : nil }
    }

    public let rows: [Row]

    /// Viewers: what they saw, and how fast each kind of request was answered.
    public static func viewers(_ a: PlayerResults, _ b: PlayerResults) -> Comparison {
        var rows: [Row] = []
        func add(_ name: String, _ value: (PlayerResults) -> Double) { rows.append(Row(name: name, a: value(a), b: value(b))) }
        add("viewers played") { Double($0.viewersStarted) }
        add("viewers never started") { Double($0.viewersNeverPlayed) }
        add("stalls") { Double($0.stalls) }
        add("requests") { Double($0.requests) }
        add("error responses (≥ 400)") { Double($0.errorResponses) }
        add("failed requests") { Double($0.failures) }
        add("startup ms p50") { Double(PlayerResults.percentile($0.startupMs, 50) ?? 0) }
        add("startup ms p99") { Double(PlayerResults.percentile($0.startupMs, 99) ?? 0) }
        add("rebuffer ratio p99") { PlayerResults.percentile($0.rebufferRatios, 99) ?? 0 }
        add("average bitrate kb/s p50") { (PlayerResults.percentile($0.bitrates, 50) ?? 0) / 1000 }
        for kind in PlayerResults.Kind.allCases where a.kinds[kind.rawValue].requests > 0 || b.kinds[kind.rawValue].requests > 0 {
            for (label, p) in [("p50", 50.0), ("p99", 99.0)] {
                add("\(kind.name) latency µs \(label)") { Double($0.kinds[kind.rawValue].requests > 0 ? $0.kinds[kind.rawValue].latency.valueAtPercentile(p) : 0) }
            }
        }
        return Comparison(rows: rows)
    }

    /// Closed-loop rounds: throughput and latency.
    public static func raw(_ a: LoadResults, _ b: LoadResults) -> Comparison {
        var rows: [Row] = []
        func add(_ name: String, _ value: (LoadResults) -> Double) { rows.append(Row(name: name, a: value(a), b: value(b))) }
        add("requests/s") { $0.requestsPerSecond }
        add("GB/s received") { Double($0.bytes) / 1e9 / max($0.elapsedSeconds, 1e-9) }
        for (label, p) in LoadResults.percentiles {
            add("latency µs \(label)") { Double($0.requests > 0 ? $0.latency.valueAtPercentile(p) : 0) }
        }
        add("error responses (≥ 400)") { Double($0.errorResponses) }
        add("failed requests") { Double($0.failures) }
        return Comparison(rows: rows)
    }

    public func text(a: String, b: String) -> String {
        let width = max(rows.map(\.name.count).max() ?? 0, 6)
        func pad(_ text: String, _ n: Int) -> String { text + String(repeating: " ", count: max(0, n - text.count)) }
        func number(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(fixed: v, digits: 4) }
        var lines = ["A = \(a)", "B = \(b)", pad("", width) + "  " + pad("A", 14) + pad("B", 14) + "B/A"]
        for row in rows {
            lines.append(pad(row.name, width) + "  " + pad(number(row.a), 14) + pad(number(row.b), 14) + (row.ratio.map { String(fixed: $0, digits: 3) } ?? "-"))
        }
        return lines.joined(separator: "\n")
    }

    /// `{"name": {"a": …, "b": …, "ratio": … or null}, …}`
    public var json: String {
        let parts = rows.map { row in
            "\"\(row.name)\": {\"a\": \(String(fixed: row.a, digits: 6)), \"b\": \(String(fixed: row.b, digits: 6)), \"ratio\": \(row.ratio.map { String(fixed: $0, digits: 6) } ?? "null")}"
        }
        return "{" + parts.joined(separator: ", ") + "}"
    }
}
