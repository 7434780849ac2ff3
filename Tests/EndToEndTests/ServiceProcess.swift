import Foundation
import Glibc
import MarqueeTestSupport

/// `marquee auth` or `marquee catalog` running alone on a free loopback port, as an operator
/// starts it; stopped (SIGTERM, then SIGKILL) on `stop()` or deinit.
final class ServiceProcess: @unchecked Sendable {
    let process: Process
    let port: UInt16
    let output: OutputLog

    /// - Parameters:
    ///   - arguments: everything after `marquee <role>` except `--listen`.
    ///   - port: where to listen (a restart on the same port); a free one by default.
    init(_ role: String, _ arguments: [String], environment: [String: String] = [:], port: UInt16? = nil, readyTimeout: Duration = .seconds(30))
        throws
    {
        self.port = try port ?? RedisServer.freePort()
        process = Process()
        process.executableURL = try MarqueeBinary.locate()
        process.arguments = [role, "--listen", "127.0.0.1:\(self.port)"] + arguments
        if role == "auth" && !arguments.contains("--key-encryption-key-file") {
            // auth refuses to start without the key its signing keys are sealed with.
            process.arguments! += ["--key-encryption-key-file", try KeyEncryptionKeyFile.make()]
        }
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MARQUEE_") }
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = out
        try process.run()
        try? out.fileHandleForWriting.close()
        output = OutputLog(reading: out.fileHandleForReading)
        let url = self.url("/readyz")
        guard waitUntil(timeout: readyTimeout, interval: .milliseconds(50), { (try? Curl.fetch(url, timeout: .seconds(2)).status) == 200 }) else {
            stop()
            throw ToolError(description: "marquee \(role) did not become ready: \(output.text)")
        }
    }

    deinit { stop() }

    var baseURL: String { "http://127.0.0.1:\(port)" }
    func url(_ path: String) -> String { baseURL + path }

    /// SIGKILL: a crash, nothing flushed or drained.
    func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGTERM)
        if !waitUntil(timeout: .seconds(10), interval: .milliseconds(20), { !self.process.isRunning }) {
            Glibc.kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }

    /// Runs `marquee users add` against a database (the way the first publisher or admin is made).
    static func addUser(email: String, role: String, password: String, database: String) throws {
        let file = Scratch.newFile("password")
        try password.write(to: file, atomically: true, encoding: .utf8)
        let result = try Tool.run(
            MarqueeBinary.locate().path,
            ["users", "add", "--email", email, "--role", role, "--password-file", file.path, "--database", database])
        guard result.termination == .exited(0) else {
            throw ToolError(description: "marquee users add failed: \(result.stdoutText) \(result.stderrText)")
        }
    }
}

/// JSON over curl, for driving the services' APIs end to end.
struct JSONCall {
    static func send(_ method: String, _ url: String, token: String? = nil, json: Any? = nil, headers: [String] = []) throws -> (status: Int, body: [String: Any], raw: CurlResponse) {
        var options = ["-X", method]
        if let token { options += ["-H", "Authorization: Bearer \(token)"] }
        if let json {
            let data = try JSONSerialization.data(withJSONObject: json)
            options += ["-H", "Content-Type: application/json", "--data-binary", String(decoding: data, as: UTF8.self)]
        }
        for header in headers { options += ["-H", header] }
        let response = try Curl.fetch(url, options)
        let body = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
        return (response.status, body, response)
    }
}

/// A service credential's secret in a scratch file, as an operator makes one (32 random bytes as hex).
enum ServiceCredentialFile {
    static func make(_ name: String) throws -> URL {
        let file = Scratch.newFile(name)
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        try (secret + "\n").write(to: file, atomically: true, encoding: .utf8)
        return file
    }
}
