import CLinux
import Glibc

/// How long a cached object may be served, and how it is refreshed (RFC 9111, RFC 5861), with the
/// validators for a conditional refresh. Objects without one never expire (an object store's
/// objects, immutable segments). Times are Unix milliseconds.
public struct ObjectFreshness: Sendable, Equatable {
    /// Served as it is until then.
    public var freshUntil: Int64
    /// Until then a stale object is served at once while a refresh runs in the background.
    public var staleWhileRevalidateUntil: Int64
    /// Until then a stale object is served when its refresh fails (upstreams down, 5xx).
    public var staleIfErrorUntil: Int64
    /// The upstream's validators, sent as If-None-Match and If-Modified-Since on refresh.
    public var etag: String?
    public var lastModified: Int64?

    public init(freshUntil: Int64, staleWhileRevalidateUntil: Int64, staleIfErrorUntil: Int64, etag: String? = nil, lastModified: Int64? = nil) {
        self.freshUntil = freshUntil
        self.staleWhileRevalidateUntil = max(freshUntil, staleWhileRevalidateUntil)
        self.staleIfErrorUntil = max(freshUntil, staleIfErrorUntil)
        self.etag = etag
        self.lastModified = lastModified
    }

    public enum Decision: Equatable, Sendable {
        case fresh
        /// Serve it now and refresh it in the background.
        case serveAndRefresh
        /// Refresh it before serving (a stale one may still be served if the refresh fails).
        case refresh
    }

    public func decide(now: Int64) -> Decision {
        if now < freshUntil { return .fresh }
        if now < staleWhileRevalidateUntil { return .serveAndRefresh }
        return .refresh
    }

    public func mayServeOnError(now: Int64) -> Bool { now < staleIfErrorUntil }

    // MARK: - Persistence (an extended attribute on the cached file)

    static let attributeName = "user.marquee.freshness"

    /// `v1 <fresh> <swr> <sie> <last-modified or -> <etag or nothing>`.
    var encoded: String {
        "v1 \(freshUntil) \(staleWhileRevalidateUntil) \(staleIfErrorUntil) \(lastModified.map(String.init) ?? "-") \(etag ?? "")"
    }

    init?(encoded text: String) {
        let parts = text.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count >= 5, parts[0] == "v1", let fresh = Int64(parts[1]), let swr = Int64(parts[2]), let sie = Int64(parts[3]) else { return nil }
        let lastModified = parts[4] == "-" ? nil : Int64(parts[4])
        let etag = parts.count == 6 && !parts[5].isEmpty ? String(parts[5]) : nil
        self.init(freshUntil: fresh, staleWhileRevalidateUntil: swr, staleIfErrorUntil: sie, etag: etag, lastModified: lastModified)
    }

    /// Writes it on an open file; false when the file system keeps no user attributes.
    func store(on fd: Int32) -> Bool {
        var text = encoded
        return text.withUTF8 { fsetxattr(fd, Self.attributeName, $0.baseAddress, $0.count, 0) == 0 }
    }

    /// Reads it from an open file; nil when it has none.
    static func load(from fd: Int32) -> ObjectFreshness? {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { fgetxattr(fd, attributeName, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return ObjectFreshness(encoded: String(decoding: buffer[0..<n], as: UTF8.self))
    }

    public static func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
