import Glibc

// Console output for the commands and the roles: whole lines written straight to the descriptor,
// never through stdio's buffers. Apart from the engine, so a command or a service can print
// without importing it.

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
