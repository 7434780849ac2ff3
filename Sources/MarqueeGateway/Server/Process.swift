import CLinux
import Glibc

/// Writes one line to standard error (unbuffered, safe from any thread).
public func printError(_ message: String) {
    var line = message
    line.append("\n")
    line.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if n <= 0 { return }
            offset += n
        }
    }
}

/// Writes one line to standard output immediately (no stdio buffering, so a supervising process
/// reading a pipe sees it at once).
public func printLine(_ message: String) {
    var line = message
    line.append("\n")
    line.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(1, bytes.baseAddress! + offset, bytes.count - offset)
            if n <= 0 { return }
            offset += n
        }
    }
}

/// Blocks SIGTERM and SIGINT in the calling thread and every thread it creates afterwards, so
/// only `Server.run`'s `sigwait` receives them. Call first thing in `main`.
public func blockTerminationSignals() {
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGTERM)
    sigaddset(&signals, SIGINT)
    pthread_sigmask(SIG_BLOCK, &signals, nil)
    signal(SIGPIPE, SIG_IGN)
}
