import CLinux
import Glibc
import MarqueePolicy

/// Re-reads token key files and geo databases when they change (checked once a second) and at
/// once on SIGHUP, on its own thread: loops never stat or open a file for this.
final class PolicyReloader: @unchecked Sendable {
    let policy: AccessPolicy
    /// SIGHUP arrives as a byte on this pipe.
    private let hangupReadFD: Int32

    init(policy: AccessPolicy) {
        self.policy = policy
        hangupReadFD = SignalPipe.install([SIGHUP], nonBlockingRead: true)
    }

    func start() { OSThread.detach { [self] in run() } }

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
            for message in policy.reload(force: force) { GatewayLog.notice(message) }
        }
    }
}
