import Histogram

/// What a load run measured, per thread and then merged: completed requests, bytes received,
/// latency (µs, HdrHistogram, 3 significant digits), statuses and failures.
public struct LoadResults: Sendable {
    public var requests: UInt64 = 0
    public var bytes: UInt64 = 0
    public var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    /// Completed responses by status (index: the status code).
    public var statuses = [UInt64](repeating: 0, count: 600)
    /// Connections that failed, by why.
    public var connectFailures: UInt64 = 0
    public var sendFailures: UInt64 = 0
    public var readFailures: [ResponseReader.Failure: UInt64] = [:]
    public var elapsedSeconds: Double = 0

    public init() {}

    public mutating func add(_ other: LoadResults) {
        requests += other.requests
        bytes += other.bytes
        latency.add(other.latency)
        for i in statuses.indices { statuses[i] += other.statuses[i] }
        connectFailures += other.connectFailures
        sendFailures += other.sendFailures
        for (k, v) in other.readFailures { readFailures[k, default: 0] += v }
        elapsedSeconds = max(elapsedSeconds, other.elapsedSeconds)
    }

    public var failures: UInt64 { connectFailures + sendFailures + readFailures.values.reduce(0, +) }
    /// Responses with a status of 400 or more.
    public var errorResponses: UInt64 { statuses[400...].reduce(0, +) }
    public var requestsPerSecond: Double { elapsedSeconds > 0 ? Double(requests) / elapsedSeconds : 0 }

    // MARK: - Report

    static let percentiles: [(String, Double)] = [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9)]

    /// The final table, for a terminal.
    public func text(title: String) -> String {
        var lines = [title]
        lines.append("requests  \(Self.grouped(requests)) in \(String(format2: elapsedSeconds)) s: \(Self.grouped(UInt64(requestsPerSecond.rounded())))/s, \(String(format2: Double(bytes) / 1e9 / max(elapsedSeconds, 1e-9))) GB/s received")
        if requests > 0 {
            let cells = Self.percentiles.map { "\($0.0) \(Self.grouped(latency.valueAtPercentile($0.1)))" } + ["max \(Self.grouped(latency.max))"]
            lines.append("latency µs  " + cells.joined(separator: "  "))
        }
        let seen = statuses.indices.filter { statuses[$0] > 0 }.map { "\($0) × \(Self.grouped(statuses[$0]))" }
        lines.append("statuses  " + (seen.isEmpty ? "none" : seen.joined(separator: ", ")))
        var failed = ["connect \(connectFailures)", "send \(sendFailures)"]
        for (kind, count) in readFailures.sorted(by: { $0.key.rawValue < $1.key.rawValue }) { failed.append("\(kind.rawValue) \(count)") }
        lines.append("failures  " + failed.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }

    /// The same data as JSON (`--json`).
    public func json(fields: [(String, String)]) -> String {
        var parts = fields.map { "\"\($0.0)\": \($0.1)" }
        parts.append("\"requests\": \(requests)")
        parts.append("\"elapsed_s\": \(String(format6: elapsedSeconds))")
        parts.append("\"requests_per_second\": \(String(format2: requestsPerSecond))")
        parts.append("\"bytes\": \(bytes)")
        var latencyParts = Self.percentiles.map { "\"\($0.0)\": \(requests > 0 ? latency.valueAtPercentile($0.1) : 0)" }
        latencyParts.append("\"max\": \(requests > 0 ? latency.max : 0)")
        latencyParts.append("\"mean\": \(String(format2: requests > 0 ? latency.mean : 0))")
        parts.append("\"latency_us\": {\(latencyParts.joined(separator: ", "))}")
        let seen = statuses.indices.filter { statuses[$0] > 0 }.map { "\"\($0)\": \(statuses[$0])" }
        parts.append("\"statuses\": {\(seen.joined(separator: ", "))}")
        var failed = ["\"connect\": \(connectFailures)", "\"send\": \(sendFailures)"]
        for (kind, count) in readFailures.sorted(by: { $0.key.rawValue < $1.key.rawValue }) { failed.append("\"\(kind.rawValue)\": \(count)") }
        parts.append("\"failures\": {\(failed.joined(separator: ", "))}")
        return "{" + parts.joined(separator: ", ") + "}\n"
    }

    static func grouped(_ value: UInt64) -> String {
        let digits = Array(String(value))
        var out = ""
        for (i, d) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(d)
        }
        return out
    }
}

extension String {
    /// A fixed-point number without Foundation.
    init(format2 value: Double) { self = String(fixed: value, digits: 2) }
    init(format6 value: Double) { self = String(fixed: value, digits: 6) }

    init(fixed value: Double, digits: Int) {
        guard value.isFinite else {
            self = "0"
            return
        }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = UInt64(scaled / scale)
        let fraction = UInt64(scaled - Double(whole) * scale)
        var text = String(fraction)
        while text.count < digits { text = "0" + text }
        self = (value < 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + text : "")
    }
}
