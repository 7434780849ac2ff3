import CTLS

/// The keys that seal TLS session tickets, made by the process and rotated by the caller every
/// `rotationSeconds` (`rotate()`): tickets sealed under the current key or the previous one
/// resume (the previous one's get a fresh ticket), older ones mean a full handshake. Every server
/// context made with them shares them, so a certificate reload keeps tickets valid.
public final class TLSTicketKeys: @unchecked Sendable {
    // @unchecked: the C ring has its own lock; only `rotate` writes it.
    let keys: UnsafeMutablePointer<mq_ticket_keys>
    /// How long a key seals new tickets. A ticket resumes while its key is current or previous:
    /// at least this long, at most twice (the lifetime hint).
    public let rotationSeconds: Int

    public init(rotationSeconds: Int) throws(TLSError) {
        precondition(rotationSeconds > 0)
        guard let keys = mq_ticket_keys_new() else { throw TLSError.configuration("cannot make session ticket keys: \(TLSError.drainOpenSSLErrors())") }
        self.keys = keys
        self.rotationSeconds = rotationSeconds
    }

    deinit {
        OPENSSL_cleanse(keys, MemoryLayout<mq_ticket_keys>.size)
        CRYPTO_free(keys, #fileID, #line)
    }

    /// A new current key; the current one becomes the previous, the previous is forgotten.
    @discardableResult
    public func rotate() -> Bool { mq_ticket_keys_rotate(keys) == 1 }
}
