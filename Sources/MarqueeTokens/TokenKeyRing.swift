import COpenSSL

/// The HMAC keys the gateway accepts, by key id. Several are live at once so a key can be rotated
/// without downtime: publish the new key to every gateway, mint with it, retire the old one once
/// the last token signed with it has expired. Immutable; a reload builds a new ring.
public final class TokenKeyRing: Sendable {
    public struct Key: Sendable {
        public let id: String
        let idBytes: [UInt8]
        /// Inner and outer pad states, computed once per key (see COpenSSL's shim).
        nonisolated(unsafe) let prepared: UnsafeMutablePointer<mq_hmac_sha256_key>
    }

    public let keys: [Key]

    /// Secrets shorter than this are refused: an HMAC key should carry at least 256 bits.
    public static let minimumSecretBytes = 32
    public static let maximumKeyIDBytes = 64

    public init(_ secrets: [(id: String, secret: [UInt8])]) throws(TokenKeyError) {
        var keys: [Key] = []
        for (id, secret) in secrets {
            guard TokenClaims.isValidKeyID(id) else { throw TokenKeyError("key id \"\(id)\" must be 1-64 characters of A-Z a-z 0-9 _ -") }
            guard secret.count >= Self.minimumSecretBytes else {
                throw TokenKeyError("key \"\(id)\": the secret has \(secret.count) bytes; at least \(Self.minimumSecretBytes) are required")
            }
            guard !keys.contains(where: { $0.id == id }) else { throw TokenKeyError("key id \"\(id)\" is given twice") }
            let prepared = UnsafeMutablePointer<mq_hmac_sha256_key>.allocate(capacity: 1)
            secret.withUnsafeBytes { mq_hmac_sha256_prepare(prepared, $0.baseAddress, $0.count) }
            keys.append(Key(id: id, idBytes: Array(id.utf8), prepared: prepared))
        }
        self.keys = keys
    }

    deinit {
        for key in keys {
            key.prepared.withMemoryRebound(to: UInt8.self, capacity: MemoryLayout<mq_hmac_sha256_key>.size) {
                $0.update(repeating: 0, count: MemoryLayout<mq_hmac_sha256_key>.size)
            }
            key.prepared.deallocate()
        }
    }

    @inline(__always) func key(matching id: UnsafeRawBufferPointer) -> UnsafePointer<mq_hmac_sha256_key>? {
        for key in keys where key.idBytes.count == id.count {
            let equal = key.idBytes.withUnsafeBytes { memcmpEqual($0, id) }
            if equal { return UnsafePointer(key.prepared) }
        }
        return nil
    }

    /// HMAC-SHA256 of `prefix + message` with the key `id` (minting and tests).
    public func mac(keyID id: String, _ message: [UInt8]) -> [UInt8]? {
        guard let key = keys.first(where: { $0.id == id }) else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        message.withUnsafeBytes { m in
            out.withUnsafeMutableBufferPointer { mq_hmac_sha256(key.prepared, m.baseAddress, m.count, nil, 0, $0.baseAddress) }
        }
        return out
    }
}

public struct TokenKeyError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

@inline(__always) func memcmpEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    for i in 0..<a.count where a[i] != b[i] { return false }
    return true
}
