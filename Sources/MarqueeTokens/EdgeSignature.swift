import COpenSSL
import Glibc

/// How an edge proves to the origin that a fetch is its own: the `Marquee-Edge` request header,
/// `<expires>.<edge-id>.<mac>`, where `mac` is the base64url HMAC-SHA256, under a key the edges
/// and the origin share, of `<expires>.<edge-id>` followed by the request's decoded absolute path
/// (its leading slash ends the edge id unambiguously). Players' tokens never travel upstream: the
/// edge checked them, and the origin trusts a fetch carrying a good signature instead
/// (`docs/edge.md`).
///
/// Verification allocates nothing: one base64url decode, one HMAC with precomputed pad states, a
/// constant-time compare. Several keys may be held so one can be rotated in before the old one
/// goes; the first one signs.
public final class EdgeSignature: @unchecked Sendable {
    public static let headerName = "Marquee-Edge"
    /// Longest edge id: 1-64 characters of `A-Z a-z 0-9 - _ .` (a host name fits).
    public static let maxEdgeIDBytes = 64
    static let macBytes = 32
    static let macCharacters = 43

    private let keys: UnsafeMutablePointer<mq_hmac_sha256_key>
    public let keyCount: Int

    /// - Throws: `TokenKeyError` when there is no key or one is shorter than 32 bytes.
    public init(secrets: [[UInt8]]) throws(TokenKeyError) {
        guard !secrets.isEmpty else { throw TokenKeyError("the edge key list is empty") }
        for secret in secrets where secret.count < 32 {
            throw TokenKeyError("an edge key must be at least 32 bytes, got \(secret.count)")
        }
        keyCount = secrets.count
        keys = .allocate(capacity: secrets.count)
        for (i, secret) in secrets.enumerated() {
            secret.withUnsafeBytes { mq_hmac_sha256_prepare(keys + i, $0.baseAddress, $0.count) }
        }
    }

    deinit { keys.deallocate() }

    public static func isValidEdgeID(_ id: some Collection<UInt8>) -> Bool {
        (1...maxEdgeIDBytes).contains(id.count)
            && id.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
    }

    /// The header value for a fetch of `absolutePath` (decoded, with its leading slash) by
    /// `edgeID`, valid until `expires` (Unix seconds).
    public func sign(edgeID: String, absolutePath: String, expires: Int64) -> String {
        let claim = "\(expires).\(edgeID)"
        var mac = [UInt8](repeating: 0, count: Self.macBytes)
        var claimBytes = Array(claim.utf8)
        var pathBytes = Array(absolutePath.utf8)
        claimBytes.withUnsafeMutableBytes { c in
            pathBytes.withUnsafeMutableBytes { p in
                mac.withUnsafeMutableBytes { m in
                    mq_hmac_sha256(keys, c.baseAddress, c.count, p.baseAddress, p.count, m.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        return claim + "." + Base64URL.encode(mac)
    }

    public enum Check: Equatable, Sendable {
        case valid
        case malformed
        case expired
        case badSignature
    }

    /// Checks a `Marquee-Edge` value for a request of `absolutePath` at `nowSeconds`. An
    /// expiry more than `maxLifetimeSeconds` ahead is refused as malformed (a stolen header must
    /// not work for long).
    public func verify(_ value: UnsafeRawBufferPointer, absolutePath: UnsafeRawBufferPointer, nowSeconds: Int64, maxLifetimeSeconds: Int64 = 3600)
        -> Check
    {
        guard value.count > Self.macCharacters + 3 else { return .malformed }
        let macStart = value.count - Self.macCharacters
        guard value[macStart - 1] == UInt8(ascii: ".") else { return .malformed }
        let claim = UnsafeRawBufferPointer(rebasing: value[0..<(macStart - 1)])
        // <expires>.<edge-id>
        var expires: Int64 = 0
        var i = 0
        while i < claim.count && claim[i] >= 0x30 && claim[i] <= 0x39 && i < 12 {
            expires = expires * 10 + Int64(claim[i] - 0x30)
            i += 1
        }
        guard i > 0, i < claim.count, claim[i] == UInt8(ascii: "."), Self.isValidEdgeID(claim[(i + 1)...]) else { return .malformed }
        guard expires <= nowSeconds + maxLifetimeSeconds else { return .malformed }
        var sent = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        let decoded = withUnsafeMutableBytes(of: &sent) { out in
            Base64URL.decode(UnsafeRawBufferPointer(rebasing: value[macStart...]), into: out.baseAddress!)
        }
        guard decoded == Self.macBytes else { return .malformed }
        var expected = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        var matched = false
        for k in 0..<keyCount where !matched {
            withUnsafeMutableBytes(of: &expected) { mac in
                mq_hmac_sha256(
                    keys + k, claim.baseAddress, claim.count, absolutePath.baseAddress, absolutePath.count,
                    mac.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            matched = withUnsafeBytes(of: &expected) { a in
                withUnsafeBytes(of: &sent) { b in mq_constant_time_equal(a.baseAddress, b.baseAddress, Self.macBytes) != 0 }
            }
        }
        // The signature first: a forged header is refused as forged, even when expired.
        guard matched else { return .badSignature }
        return expires < nowSeconds ? .expired : .valid
    }
}
