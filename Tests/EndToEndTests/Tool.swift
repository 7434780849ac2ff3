import Foundation
import MarqueeTestSupport
import Glibc

/// How a child process ended.
enum Termination: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    var description: String {
        switch self {
        case .exited(let code): "exit status \(code)"
        case .signalled(let signal): "killed by signal \(signal)"
        }
    }
}

struct ToolError: Error, CustomStringConvertible {
    var description: String
}

/// What a finished child process left behind.
struct ToolResult: Sendable {
    var termination: Termination
    var stdout: Data
    var stderr: Data

    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// A child process started with Foundation `Process` whose output goes to files, so any number of
/// them can run at once without a pipe filling up.
final class RunningTool: @unchecked Sendable {
    let process: Process
    let commandLine: String
    private let stdoutURL: URL
    private let stderrURL: URL
    private let finished = DispatchSemaphore(value: 0)

    init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        commandLine = ([executable] + arguments).joined(separator: " ")
        stdoutURL = Scratch.newFile("stdout")
        stderrURL = Scratch.newFile("stderr")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: stdoutURL)
        let err = try FileHandle(forWritingTo: stderrURL)
        defer {
            try? out.close()
            try? err.close()
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        process.terminationHandler = { [finished] _ in finished.signal() }
        try process.run()
    }

    /// Waits for the process to end; nil if it has not within `timeout`.
    func wait(timeout: Duration) -> ToolResult? {
        guard finished.wait(timeout: .now() + timeout.seconds) == .success else { return nil }
        finished.signal()  // later waits return at once
        let termination: Termination =
            process.terminationReason == .exit ? .exited(process.terminationStatus) : .signalled(process.terminationStatus)
        let result = ToolResult(
            termination: termination,
            stdout: (try? Data(contentsOf: stdoutURL)) ?? Data(),
            stderr: (try? Data(contentsOf: stderrURL)) ?? Data())
        try? FileManager.default.removeItem(at: stdoutURL)
        try? FileManager.default.removeItem(at: stderrURL)
        return result
    }

    /// Waits for the end; past `timeout` the process is killed and this throws.
    func finish(timeout: Duration) throws -> ToolResult {
        if let result = wait(timeout: timeout) { return result }
        kill(process.processIdentifier, SIGKILL)
        _ = wait(timeout: .seconds(5))
        throw ToolError(description: "\(commandLine) did not finish within \(timeout)")
    }

    var isRunning: Bool { process.isRunning }
}

enum Tool {
    /// Runs a program to its end (killed and thrown past `timeout`).
    static func run(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(60)) throws -> ToolResult {
        try RunningTool(executable, arguments).finish(timeout: timeout)
    }
}
