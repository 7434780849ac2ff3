import Crypto
import Foundation
import MarqueeServiceKit

/// Seals the signing keys' private halves before they reach the database, with AES-256-GCM under
/// a key encryption key (KEK) read from a file (`auth.key_encryption_key_file`). A copy of the
/// database, a backup or a replica then holds no key that can sign tokens.
///
/// A sealed value is `v1:<KEK id>:<base64url(nonce ‖ ciphertext ‖ tag)>`. The KEK id (the first
/// 8 bytes of the KEK's SHA-256, in hex) names the key a row was sealed with, so a start with
/// another key file says so instead of failing on a bad tag. The row's key id is the associated
/// data: a sealed value copied onto another row does not open.
struct SigningKeyEncryption: Sendable {
    let key: SymmetricKey
    /// Names the KEK in sealed values and messages; not secret.
    let keyID: String
    /// The file the key came from, for messages.
    let file: String

    static let prefix = "v1:"

    /// Reads the KEK: 32 bytes written as 64 hexadecimal characters (`openssl rand -hex 32`);
    /// surrounding whitespace is ignored.
    init(file: String) throws(AuthSetupError) {
        guard let data = FileManager.default.contents(atPath: file) else { throw .unreadableKeyEncryptionKey(file: file) }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Self.hexBytes(text), bytes.count == 32 else { throw .malformedKeyEncryptionKey(file: file) }
        self.init(key: SymmetricKey(data: bytes), file: file)
    }

    init(key: SymmetricKey, file: String) {
        self.key = key
        self.file = file
        keyID = SHA256.hash(data: key.withUnsafeBytes { Data($0) }).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether a stored value is sealed (older versions stored the key as plain base64url).
    static func isSealed(_ stored: String) -> Bool { stored.hasPrefix(prefix) }

    /// Seals the raw private key of signing key `kid`.
    func seal(_ privateKey: Data, kid: String) throws -> String {
        let box = try AES.GCM.seal(privateKey, using: key, authenticating: Self.associatedData(kid))
        guard let combined = box.combined else { throw AuthSetupError.undecryptableSigningKey(kid: kid, file: file) }
        return Self.prefix + keyID + ":" + Base64URL.encode(combined)
    }

    /// Opens the sealed private key of signing key `kid`.
    func open(_ stored: String, kid: String) throws(AuthSetupError) -> Data {
        let parts = stored.dropFirst(Self.prefix.count).split(separator: ":", maxSplits: 1)
        guard Self.isSealed(stored), parts.count == 2, let combined = Base64URL.decode(String(parts[1])) else {
            throw .undecryptableSigningKey(kid: kid, file: file)
        }
        guard parts[0] == keyID else { throw .wrongKeyEncryptionKey(kid: kid, sealedWith: String(parts[0]), configured: keyID, file: file) }
        do {
            return try AES.GCM.open(AES.GCM.SealedBox(combined: combined), using: key, authenticating: Self.associatedData(kid))
        } catch {
            throw .undecryptableSigningKey(kid: kid, file: file)
        }
    }

    static func associatedData(_ kid: String) -> Data { Data("marquee-auth signing_keys \(kid)".utf8) }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
