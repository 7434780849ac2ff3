import Foundation
import Glibc

/// Runs a tool to completion with posix_spawn and waitpid, its output in a file. Tests use this
/// instead of Foundation's `Process` wherever they run inside Swift concurrency: there `Process`
/// has missed its child's exit (a zombie never reaped, `waitUntilExit` waiting forever), and a
/// test blocked that way holds one of the two cooperative threads of this machine for good.
public enum Subprocess {
    public struct Result: Sendable {
        public let status: Int32
        public let output: String
        /// Standard error, when it was kept apart (`separateErrors`).
        public let errors: String
        public var succeeded: Bool { status == 0 }
    }

    /// Runs `tool` with `arguments`, stdin from /dev/null, stdout and stderr together (or stdout
    /// only, with stderr discarded, when `discardErrors`).
    public static func run(_ tool: String, _ arguments: [String], discardErrors: Bool = false, separateErrors: Bool = false) throws -> Result {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-subprocess-\(UUID().uuidString)").path
        let errorLog = log + ".err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if discardErrors {
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        } else if separateErrors {
            posix_spawn_file_actions_addopen(&actions, 2, errorLog, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        let argv = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, tool, &actions, nil, argv, environ)
        guard spawned == 0 else { throw TestEnvironmentError("cannot start \(tool): error \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOfFile: errorLog, encoding: .utf8)) ?? ""
        unlink(log)
        unlink(errorLog)
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: exitStatus, output: output, errors: errors)
    }
}
