import MarqueeConsole
import Synchronization

/// Where the engine's notices and warnings go. The engine never prints: it hands each message to
/// the sink, which a role, a command or a test may replace (the default writes `marquee: ...` to
/// standard error, a line at a time). Messages are rare (reloads, failed fetches, problems at
/// start), never per request, so the lock taken per message costs nothing that matters.
public enum GatewayLog {
    public enum Level: String, Sendable {
        /// Something an operator may want to see (a reload took effect).
        case notice
        /// Something went wrong and was handled (a fetch failed, a setting cannot take effect).
        case warning
        /// Something went wrong that stops part of the gateway (a loop could not start).
        case error
    }

    public typealias Sink = @Sendable (Level, String) -> Void

    /// `marquee: <message>`, with `warning: ` before warnings, on standard error.
    public static let standardError: Sink = { level, message in
        printError(level == .warning ? "marquee: warning: \(message)" : "marquee: \(message)")
    }

    private static let sink = Mutex<Sink>(standardError)

    /// Sends every later message to `sink`.
    public static func route(to sink: @escaping Sink) { self.sink.withLock { $0 = sink } }

    static func notice(_ message: String) { emit(.notice, message) }
    static func warning(_ message: String) { emit(.warning, message) }
    static func error(_ message: String) { emit(.error, message) }

    private static func emit(_ level: Level, _ message: String) {
        let current = sink.withLock { $0 }
        current(level, message)
    }
}
