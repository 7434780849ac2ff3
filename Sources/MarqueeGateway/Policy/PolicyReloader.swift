import CLinux
import Glibc

/// Re-reads token key files and geo databases when they change (checked once a second) and at
/// once on SIGHUP, on its own thread: loops never stat or open a file for this.
final class PolicyReloader: @unchecked Sendable {
    let policy: AccessPolicy
    /// SIGHUP becomes a byte on this pipe (the handler may run on any thread).
    nonisolated(unsafe) static var hangupWriteFD: Int32 = -1
    private let hangupReadFD: Int32
    private var stopped = false

    init(policy: AccessPolicy) {
        self.policy = policy
        var fds: (Int32, Int32) = (-1, -1)
        _ = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { mq_pipe($0, O_CLOEXEC | O_NONBLOCK) }
        }
        hangupReadFD = fds.0
        Self.hangupWriteFD = fds.1
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            var byte: UInt8 = 1
            _ = write(PolicyReloader.hangupWriteFD, &byte, 1)  // async-signal-safe
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(SIGHUP, &action, nil)
    }

    func start() {
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            Unmanaged<PolicyReloader>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, Unmanaged.passRetained(self).toOpaque())
        if rc == 0 { pthread_detach(thread) }
    }

    private func run() {
        var poller = pollfd(fd: hangupReadFD, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&poller, 1, 1000)
            var force = false
            if ready > 0 {
                var drain = [UInt8](repeating: 0, count: 64)
                while read(hangupReadFD, &drain, 64) > 0 {}
                force = true
            }
            for message in policy.reload(force: force) { printError("marquee: \(message)") }
        }
    }
}
