import Foundation
import MarqueeTestSupport
import Glibc

/// Finds the `marquee` executable the tests run.
enum MarqueeBinary {
    /// `MARQUEE_BIN` if set; else the `marquee` built next to this test bundle (same scratch path,
    /// so the same sources); else the newest `.build*/debug/marquee` under the package root found
    /// by walking up from this file, `.build` first among equals.
    static func locate(filePath: String = #filePath) throws -> URL {
        let fm = FileManager.default
        if let explicit = ProcessInfo.processInfo.environment["MARQUEE_BIN"], !explicit.isEmpty {
            guard fm.isExecutableFile(atPath: explicit) else {
                throw ToolError(description: "MARQUEE_BIN=\(explicit) is not an executable file")
            }
            return URL(fileURLWithPath: explicit)
        }
        let ownExecutable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let sibling = ownExecutable.deletingLastPathComponent().appendingPathComponent("marquee")
        if fm.isExecutableFile(atPath: sibling.path) { return sibling }

        var directory = URL(fileURLWithPath: filePath).deletingLastPathComponent()
        while !fm.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
            let parent = directory.deletingLastPathComponent()
            guard parent.path != directory.path else {
                throw ToolError(description: "no Package.swift above \(filePath); set MARQUEE_BIN")
            }
            directory = parent
        }
        let buildFolders = ((try? fm.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasPrefix(".build") }
            .sorted { $0 == ".build" ? true : $1 == ".build" ? false : $0 < $1 }
        let candidates = buildFolders.map { directory.appendingPathComponent($0).appendingPathComponent("debug/marquee") }
            .filter { fm.isExecutableFile(atPath: $0.path) }
        func modified(_ url: URL) -> Date {
            ((try? fm.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date) ?? .distantPast
        }
        guard let newest = candidates.max(by: { modified($0) < modified($1) }) else {
            throw ToolError(description: "no marquee binary under \(directory.path)/.build*/debug; run swift build or set MARQUEE_BIN")
        }
        return newest
    }
}

/// Collects what a child writes to a pipe, on a thread of its own, and lets a test wait for text.
final class OutputLog: @unchecked Sendable {
    private let condition = NSCondition()
    private var bytes: [UInt8] = []
    private var ended = false

    /// Starts reading `handle` until end of file.
    init(reading handle: FileHandle) {
        let thread = Thread { [self] in
            let fd = handle.fileDescriptor
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if n < 0 && errno == EINTR { continue }
                condition.lock()
                if n > 0 { bytes += chunk[0..<n] } else { ended = true }
                condition.broadcast()
                condition.unlock()
                if n <= 0 { break }
            }
            try? handle.close()
        }
        thread.start()
    }

    var text: String {
        condition.lock()
        defer { condition.unlock() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Waits until `predicate` holds for the text so far (or the stream ends, or `timeout` passes)
    /// and returns the text, or nil when the predicate never held.
    func wait(timeout: Duration, for predicate: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        while true {
            let text = String(decoding: bytes, as: UTF8.self)
            if predicate(text) { return text }
            if ended || !condition.wait(until: deadline) { return predicate(text) ? text : nil }
        }
    }
}

/// A `marquee origin` (or `marquee edge`, `role`) started on free ports (127.0.0.1:0), stopped on
/// `stop()` or deinit.
final class ServerProcess: @unchecked Sendable {
    let process: Process
    let root: URL
    let role: String
    let mediaPort: UInt16
    let adminPort: UInt16
    /// `https` when it serves TLS (`--tls-cert`), else `http`.
    let scheme: String
    let stdout: OutputLog
    let stderr: OutputLog
    private let exited = DispatchSemaphore(value: 0)

    /// Starts the server and waits (at most `readyTimeout`) for its ready line.
    /// - Parameters:
    ///   - environment: `MARQUEE_*` overrides; the test runner's own `MARQUEE_*` variables are dropped.
    ///   - serving: what to serve instead of `--root root` (`--store ... --cache-dir ...`).
    ///   - publicContent: start with `--no-require-token` (most tests serve public fixtures); a test
    ///     that needs tokens passes `--require-token` in `arguments`, which wins (the last flag
    ///     counts), or false here to see the default.
    ///   - arguments: added last.
    ///   - role: `origin`, or `edge` (then `serving` names its upstreams and cache, and `root` is unused).
    init(
        role: String = "origin", root: URL, threads: Int = 2, publicContent: Bool = true, environment: [String: String] = [:], configFile: URL? = nil,
        arguments extra: [String] = [],
        serving: [String]? = nil, readyTimeout: Duration = .seconds(20)
    ) throws {
        self.root = root
        self.role = role
        let binary = try MarqueeBinary.locate()
        process = Process()
        process.executableURL = binary
        var arguments = [role] + (serving ?? ["--root", root.path]) + [
            "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--threads", "\(threads)",
        ]
        if publicContent { arguments.append("--no-require-token") }
        if let configFile { arguments += ["--config", configFile.path] }
        process.arguments = arguments + extra
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MARQUEE_") }
        // Delivery records default to `<cwd>/deliveries`: a test's go to its own scratch folder.
        env["MARQUEE_BUS_LOG_DIR"] = try Scratch.newDirectory("deliveries").path
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        process.terminationHandler = { [exited] _ in exited.signal() }
        try process.run()
        try? out.fileHandleForWriting.close()
        try? err.fileHandleForWriting.close()
        stdout = OutputLog(reading: out.fileHandleForReading)
        stderr = OutputLog(reading: err.fileHandleForReading)

        let ready = stdout.wait(timeout: readyTimeout) { $0.contains("\n") }
        guard let line = ready?.split(separator: "\n").first, let ports = Self.ports(in: String(line), role: role) else {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            _ = exited.wait(timeout: .now() + 5)
            throw ToolError(
                description: "marquee \(role) did not become ready within \(readyTimeout): stdout \(stdout.text.debugDescription) stderr \(stderr.text.debugDescription)")
        }
        (mediaPort, adminPort) = ports
        scheme = line.contains("listening on https://") ? "https" : "http"
    }

    /// `marquee origin listening on http://127.0.0.1:PORT admin http://127.0.0.1:PORT2 root ...`
    static func ports(in line: String, role: String = "origin") -> (UInt16, UInt16)? {
        func port(after marker: String) -> UInt16? {
            guard let range = line.range(of: marker) else { return nil }
            return UInt16(line[range.upperBound...].prefix { $0.isNumber })
        }
        guard line.hasPrefix("marquee \(role) listening on "),
            let media = port(after: "listening on http://127.0.0.1:") ?? port(after: "listening on https://127.0.0.1:"),
            let admin = port(after: "admin http://127.0.0.1:")
        else { return nil }
        return (media, admin)
    }

    deinit { stop() }

    var pid: Int32 { process.processIdentifier }

    /// `http://127.0.0.1:PORT` (or `https://`) + `path`.
    func url(_ path: String) -> String { "\(scheme)://127.0.0.1:\(mediaPort)\(path)" }

    var isRunning: Bool { termination(within: .zero) == nil }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// How the process ended, waiting at most `timeout`; nil while it still runs.
    func termination(within timeout: Duration) -> Termination? {
        guard exited.wait(timeout: .now() + timeout.seconds) == .success else { return nil }
        exited.signal()
        return process.terminationReason == .exit ? .exited(process.terminationStatus) : .signalled(process.terminationStatus)
    }

    /// SIGTERM, a short wait, then SIGKILL. Safe to call more than once.
    func stop() {
        guard termination(within: .zero) == nil else { return }
        signal(SIGTERM)
        if termination(within: .seconds(3)) == nil {
            signal(SIGKILL)
            _ = termination(within: .seconds(10))
        }
    }

    // MARK: - Admin listener

    /// GET `path` from the admin listener (which closes after every answer).
    func admin(_ path: String, timeout: Duration = .seconds(5)) throws -> HTTPResponse {
        let connection = try RawConnection(port: adminPort)
        try connection.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return try connection.readResponse(timeout: timeout)
    }

    /// POST `path` to the admin listener with the bearer `token`.
    func adminPost(_ path: String, token: String, timeout: Duration = .seconds(5)) throws -> HTTPResponse {
        let connection = try RawConnection(port: adminPort)
        try connection.send("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return try connection.readResponse(timeout: timeout)
    }

    /// The admin `/metrics` samples by series (`name{labels}`).
    func metrics() throws -> [String: Double] {
        let response = try admin("/metrics")
        guard response.status == 200 else { throw ToolError(description: "/metrics answered \(response.status)") }
        var samples: [String: Double] = [:]
        for line in response.bodyText.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }

    /// One series from `/metrics`, e.g. `marquee_http_responses_total{code="200"}`; throws if absent.
    func metric(_ series: String) throws -> Double {
        guard let value = try metrics()[series] else { throw ToolError(description: "/metrics has no \(series)") }
        return value
    }

    static func responses(_ code: Int) -> String { "marquee_http_responses_total{code=\"\(code)\"}" }
}
