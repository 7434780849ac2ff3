import MarqueeHTTP

/// Who may use the admin listener, and how much (`admin.*`). Reading metrics and health is open;
/// changing state (`POST /revocations`, and the purge routes to come) needs the bearer secret, and
/// every request must name this listener in `Host`, so a web page that rebinds its DNS name to the
/// admin address cannot drive it from a browser. Every field is documented in `config/README.md`.
public struct AdminAccess: Sendable {
    /// The secret of `Authorization: Bearer <secret>` for state-changing routes
    /// (`admin.token_file`); nil: those routes answer 403.
    public var bearerSecret: [UInt8]?
    /// Host names (without port) accepted in `Host` besides IP literals and `localhost`
    /// (`admin.allowed_hosts`), lower-case.
    public var allowedHosts: [String] = []
    /// Longest revocation the admin route accepts, in seconds (`admin.max_revocation_ttl_s`):
    /// a revocation holds a table slot until it expires, so the table cannot be filled for good.
    public var maxRevocationSeconds: Int64 = 172_800
    /// Revocations per second the admin route accepts (`admin.revocations_per_second`), with a
    /// burst of as many; beyond: 429. Bounds how fast the shared table can be filled.
    public var revocationsPerSecond = 100

    /// Shortest secret accepted from `admin.token_file`, in bytes.
    public static let minimumSecretBytes = 32

    public init() {}

    /// Whether `header` (an `Authorization` value) carries the secret. Constant time in the
    /// secret's length, whatever was sent.
    func authorizes(_ header: UnsafeRawBufferPointer?) -> Bool {
        guard let secret = bearerSecret, let header, header.count > 7,
            UnsafeRawBufferPointer(rebasing: header[0..<7]).equalsLowercase("bearer ")
        else { return false }
        var presented = UnsafeRawBufferPointer(rebasing: header[7...])
        while let first = presented.first, first == 0x20 { presented = UnsafeRawBufferPointer(rebasing: presented[1...]) }
        var difference = UInt8(presented.count == secret.count ? 0 : 1)
        for i in 0..<secret.count { difference |= secret[i] ^ (i < presented.count ? presented[i] : 0) }
        return difference == 0
    }

    /// Whether a `Host` value names this listener: an IP literal (`127.0.0.1`, `[::1]`),
    /// `localhost`, or an allowed name, each with an optional port.
    func acceptsHost(_ value: UnsafeRawBufferPointer) -> Bool {
        var host = value
        if host.first == UInt8(ascii: "[") {
            guard let close = host.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let rest = UnsafeRawBufferPointer(rebasing: host[(close + 1)...])
            guard rest.isEmpty || Self.isPort(rest) else { return false }
            return IPAddress(parsing: UnsafeRawBufferPointer(rebasing: host[1..<close])) != nil
        }
        if let colon = host.firstIndex(of: UInt8(ascii: ":")) {
            guard Self.isPort(UnsafeRawBufferPointer(rebasing: host[colon...])) else { return false }
            host = UnsafeRawBufferPointer(rebasing: host[..<colon])
        }
        if IPAddress(parsing: host) != nil || host.equalsLowercase("localhost") { return true }
        let name = String(decoding: host, as: UTF8.self).lowercased()
        return allowedHosts.contains(name)
    }

    /// `:` followed by 1-5 digits.
    private static func isPort(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 2, bytes.count <= 6, bytes[0] == UInt8(ascii: ":") else { return false }
        return bytes.dropFirst().allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
}
