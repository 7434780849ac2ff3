import CLinux
import Glibc

/// Signals turned into bytes on a pipe: the handler only writes one byte (async-signal-safe), so a
/// signal may land on any thread (the async runtime's included) and a thread of ours reads the
/// pipe when it suits it. No signal mask has to be arranged before threads start.
enum SignalPipe {
    /// The write end per signal number, read by the handler; fixed memory, never reallocated.
    nonisolated(unsafe) static let writeFDs: UnsafeMutablePointer<Int32> = {
        let fds = UnsafeMutablePointer<Int32>.allocate(capacity: 65)
        fds.initialize(repeating: -1, count: 65)
        return fds
    }()

    /// Routes `signals` to a new pipe and returns its read end.
    static func install(_ signals: [Int32], nonBlockingRead: Bool = false) -> Int32 {
        var fds: (Int32, Int32) = (-1, -1)
        _ = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { mq_pipe($0, O_CLOEXEC) }
        }
        if nonBlockingRead { _ = mq_fcntl_setfl(fds.0, mq_fcntl_getfl(fds.0) | O_NONBLOCK) }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            var byte = UInt8(truncatingIfNeeded: signal)
            _ = write(SignalPipe.writeFDs[Int(signal)], &byte, 1)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        for signal in signals {
            writeFDs[Int(signal)] = fds.1
            sigaction(signal, &action, nil)
        }
        return fds.0
    }
}

/// SIGTERM and SIGINT, which `Server.run` waits for before draining.
enum TerminationSignals {
    /// Installs the handlers; returns the descriptor to read a notification from.
    static func install() -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        return SignalPipe.install([SIGTERM, SIGINT])
    }

    /// Blocks until SIGTERM or SIGINT arrives.
    static func wait(_ readFD: Int32) {
        var byte: UInt8 = 0
        while read(readFD, &byte, 1) < 0 && errno == EINTR {}
    }
}
