import CLinux
import Glibc

/// Writes one line to standard error (unbuffered, safe from any thread).
public func printError(_ message: String) { writeLine(message, to: 2) }

/// Writes one line to standard output immediately (no stdio buffering, so a supervising process
/// reading a pipe sees it at once).
public func printLine(_ message: String) { writeLine(message, to: 1) }

private func writeLine(_ message: String, to fd: Int32) {
    var line = message
    line.append("\n")
    line.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n <= 0 { return }
            offset += n
        }
    }
}

/// SIGTERM and SIGINT become one byte on a pipe that `Server.run` reads, so the signal may land on
/// any thread (the async runtime's included) without killing the process, and no signal mask has
/// to be arranged before threads start.
enum TerminationSignals {
    nonisolated(unsafe) static var writeFD: Int32 = -1

    /// Installs the handlers once; returns the descriptor to read a notification from.
    static func install() -> Int32 {
        var fds: (Int32, Int32) = (-1, -1)
        _ = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { mq_pipe($0, O_CLOEXEC) }
        }
        writeFD = fds.1
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            var byte: UInt8 = 1
            _ = write(TerminationSignals.writeFD, &byte, 1)  // async-signal-safe
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(SIGTERM, &action, nil)
        sigaction(SIGINT, &action, nil)
        signal(SIGPIPE, SIG_IGN)
        return fds.0
    }

    /// Blocks until SIGTERM or SIGINT arrives.
    static func wait(_ readFD: Int32) {
        var byte: UInt8 = 0
        while read(readFD, &byte, 1) < 0 && errno == EINTR {}
    }
}
