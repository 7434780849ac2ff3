import CLinux
import Glibc
import MarqueePolicy
import MarqueeTLS

/// The media listener's certificates, re-read when one of their files changes or on SIGHUP.
/// New connections get the new set at once; connections already open keep the one they started
/// with (OpenSSL counts its references), so a rotation drops none. A set that does not load (a
/// certificate already replaced whose key is not yet) is reported, and the current one stays
/// until the files change again. It also rotates the session ticket keys on their schedule.
final class CertificateReloader: @unchecked Sendable {
    let files: [TLSCertificateFiles]
    let current: SwappableReference<TLSContext>
    /// What the files looked like when last loaded (or tried).
    private var seen: [FileStamp]
    /// When the ticket keys last rotated (monotonic seconds).
    private var rotatedAt = CertificateReloader.monotonicSeconds()

    struct FileStamp: Equatable {
        var device: UInt64 = 0
        var inode: UInt64 = 0
        var size: Int64 = -1
        var modifiedSeconds = 0
        var modifiedNanoseconds = 0

        init(_ path: String) {
            var st = stat()
            guard stat(path, &st) == 0 else { return }
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            modifiedSeconds = st.st_mtim.tv_sec
            modifiedNanoseconds = st.st_mtim.tv_nsec
        }
    }

    init(current: SwappableReference<TLSContext>) {
        self.current = current
        files = current.current.certificates
        seen = Self.stamps(files)
    }

    static func stamps(_ files: [TLSCertificateFiles]) -> [FileStamp] {
        files.flatMap { [FileStamp($0.chain), FileStamp($0.key)] }
    }

    /// Warns of certificates that expire within `warningDays` or have expired: a CDN's most
    /// common self-inflicted outage. Said at start and at every reload.
    static func warnOfExpiry(_ context: TLSContext, now: Int64 = Int64(time(nil)), warningDays: Int64 = 14) {
        for (files, expiry) in zip(context.certificates, context.expiries) where expiry > 0 {
            let days = (expiry - now) / 86_400
            if expiry <= now {
                GatewayLog.warning("tls: the certificate \(files.chain) has expired: clients refuse it until it is replaced")
            } else if days < warningDays {
                let hours = (expiry - now) / 3600
                GatewayLog.warning("tls: the certificate \(files.chain) expires in \(days >= 2 ? "\(days) days" : "\(hours) hours"): replace it (the files are re-read on change)")
            }
        }
    }

    static func monotonicSeconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec
    }

    /// Reloads when a file changed (or `force`), and says so in the log; rotates the ticket keys
    /// when their time has come.
    func reload(force: Bool) {
        current.releaseRetired()
        if let keys = current.current.ticketKeys, Self.monotonicSeconds() - rotatedAt >= keys.rotationSeconds {
            rotatedAt = Self.monotonicSeconds()
            if !keys.rotate() { GatewayLog.warning("tls: the session ticket keys could not be rotated; the current key stays") }
        }
        let stamps = Self.stamps(files)
        guard force || stamps != seen else { return }
        seen = stamps
        do throws(TLSError) {
            let previous = current.current
            let loaded = try TLSContext(certificates: files, ticketKeys: previous.ticketKeys, libraries: previous.libraries)
            current.replace(with: loaded)
            GatewayLog.notice("tls: certificates reloaded (\(files.map(\.chain).joined(separator: ", "))); new connections use them")
            Self.warnOfExpiry(loaded)
        } catch {
            GatewayLog.warning("tls: certificates not reloaded, the previous ones stay in use: \(error)")
        }
    }
}
