import Foundation

/// A fresh key encryption key for the auth service (`auth.key_encryption_key_file`): 32 random
/// bytes as 64 hex characters, in a new file of mode 0600 under the temporary folder.
public enum KeyEncryptionKeyFile {
    /// Writes a new random key and returns its path.
    public static func make() throws -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        return try write(hex)
    }

    /// Writes `text` as a key file (for tests of malformed keys) and returns its path.
    public static func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-kek-\(UUID().uuidString)").path
        guard FileManager.default.createFile(atPath: path, contents: Data((text + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw TestEnvironmentError("cannot write \(path)")
        }
        return path
    }
}
