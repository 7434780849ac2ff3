/// Why the auth service cannot start (or a stored signing key cannot be used). Each case names
/// the setting to fix; none is a crash.
public enum AuthSetupError: Error, CustomStringConvertible, Sendable {
    /// No `auth.key_encryption_key_file`: the signing keys are only ever stored sealed.
    case noKeyEncryptionKey
    case unreadableKeyEncryptionKey(file: String)
    case malformedKeyEncryptionKey(file: String)
    /// A stored key was sealed with another KEK than the configured one.
    case wrongKeyEncryptionKey(kid: String, sealedWith: String, configured: String, file: String)
    /// A stored key does not open with the configured KEK (altered, or moved to another row).
    case undecryptableSigningKey(kid: String, file: String)

    public var description: String {
        switch self {
        case .noKeyEncryptionKey:
            "auth.key_encryption_key_file (--key-encryption-key-file) is required: the signing keys are stored encrypted with it. "
                + "Make one with `openssl rand -hex 32 > FILE` (mode 0600) and keep it apart from the database"
        case .unreadableKeyEncryptionKey(let file):
            "auth.key_encryption_key_file: cannot read \(file)"
        case .malformedKeyEncryptionKey(let file):
            "auth.key_encryption_key_file: \(file) must hold 32 bytes as 64 hexadecimal characters (openssl rand -hex 32)"
        case .wrongKeyEncryptionKey(let kid, let sealedWith, let configured, let file):
            "auth.key_encryption_key_file: signing key \(kid) in the database was encrypted with key encryption key \(sealedWith), "
                + "but \(file) holds key \(configured); start with the key file the signing keys were made with"
        case .undecryptableSigningKey(let kid, let file):
            "auth.key_encryption_key_file: signing key \(kid) in the database does not decrypt with \(file) "
                + "(the stored value was altered, or belongs to another row)"
        }
    }
}
