import CLinux
import Glibc
import MarqueePolicy

/// The thread that reloads what may change under a running gateway: the access policy's files
/// (token keys, revocations, geo database) and the media listener's certificates. Each checks
/// its files once a second and reloads on a change; SIGHUP reloads everything at once.
final class Reloader: @unchecked Sendable {
    let policy: AccessPolicy?
    let certificates: CertificateReloader?
    /// SIGHUP arrives as a byte on this pipe.
    private let hangupReadFD: Int32

    init(policy: AccessPolicy?, certificates: CertificateReloader?) {
        self.policy = policy
        self.certificates = certificates
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
            for message in policy?.reload(force: force) ?? [] { GatewayLog.notice(message) }
            certificates?.reload(force: force)
        }
    }
}
