import CTLS

/// One TLS connection with no socket of its own: the caller moves ciphertext in and out (what
/// an io_uring loop receives goes in with `receive`, what `takeCiphertext` hands back goes out
/// with a send), and OpenSSL works on memory only. Not thread-safe: a connection belongs to its loop.
public final class TLSStream {
    let ssl: OpaquePointer
    /// Ciphertext from the peer, waiting for OpenSSL to read it.
    let incoming: OpaquePointer
    /// Ciphertext OpenSSL wrote, waiting to be sent.
    let outgoing: OpaquePointer
    public let context: TLSContext

    public enum Progress: Equatable {
        /// The handshake is done: application data flows.
        case established
        /// More ciphertext from the peer is needed (and maybe some of ours must go out first).
        case needsMore
    }

    /// A server stream (`context` a server's) or a client stream that asks for `serverName`
    /// (SNI) and verifies the certificate is for it.
    public init(context: TLSContext, serverName: String? = nil) throws(TLSError) {
        guard let ssl = SSL_new(context.context) else { throw TLSError.configuration("cannot create a TLS connection: \(TLSError.drainOpenSSLErrors())") }
        guard let incoming = BIO_new(BIO_s_mem()), let outgoing = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.configuration("cannot create the connection's buffers")
        }
        // Reading an empty memory buffer means "wait for more", not the end of the stream.
        mq_bio_mem_retry_when_empty(incoming)
        mq_bio_mem_retry_when_empty(outgoing)
        SSL_set_bio(ssl, incoming, outgoing)  // the SSL owns both from here
        self.ssl = ssl
        self.incoming = incoming
        self.outgoing = outgoing
        self.context = context
        if context.isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let serverName { _ = mq_ssl_client_expect(ssl, serverName) }
        }
    }

    deinit {
        SSL_free(ssl)
    }

    /// Hands OpenSSL ciphertext received from the peer.
    public func receive(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        var offset = 0
        while offset < bytes.count {
            let written = BIO_write(incoming, base + offset, Int32(min(bytes.count - offset, Int(Int32.max))))
            guard written > 0 else { return }
            offset += Int(written)
        }
    }

    /// Ciphertext waiting to go to the peer.
    public var pendingCiphertext: Int { Int(mq_bio_pending(outgoing)) }

    /// Moves up to `buffer.count` bytes of ciphertext for the peer into `buffer`; returns how many.
    public func takeCiphertext(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = buffer.baseAddress, !buffer.isEmpty, pendingCiphertext > 0 else { return 0 }
        return max(0, Int(BIO_read(outgoing, base, Int32(min(buffer.count, Int(Int32.max))))))
    }

    /// Advances the handshake with what has been received.
    public func handshake() throws(TLSError) -> Progress {
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .established }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .needsMore
        default: throw TLSError.handshake(failureReason())
        }
    }

    public var isEstablished: Bool { SSL_is_init_finished(ssl) == 1 }

    /// The protocol ALPN settled on (`http/1.1`), or nil when the client offered none we speak.
    public var negotiatedProtocol: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// `TLSv1.3` or `TLSv1.2`.
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    public enum ReadResult: Equatable {
        case bytes(Int)
        /// No whole record yet: receive more.
        case needsMore
        /// The peer closed TLS cleanly (close_notify).
        case closed
    }

    /// Decrypts into `buffer`.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(TLSError) -> ReadResult {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return .bytes(0) }
        var count = 0
        let ok = SSL_read_ex(ssl, base, buffer.count, &count)
        if ok == 1 { return .bytes(count) }
        switch SSL_get_error(ssl, ok) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .needsMore
        case SSL_ERROR_ZERO_RETURN: return .closed
        default: throw TLSError.connection(failureReason())
        }
    }

    /// Encrypts `bytes` into the outgoing ciphertext; returns how many were taken.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(TLSError) -> Int {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return 0 }
        var count = 0
        let ok = SSL_write_ex(ssl, base, bytes.count, &count)
        if ok == 1 { return count }
        switch SSL_get_error(ssl, ok) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return 0
        default: throw TLSError.connection(failureReason())
        }
    }

    /// Queues a close_notify for the peer.
    public func close() {
        _ = SSL_shutdown(ssl)
    }

    private func failureReason() -> String {
        let verify = SSL_get_verify_result(ssl)
        if !context.isServer, verify == MQ_X509_V_ERR_APPLICATION_VERIFICATION {
            _ = TLSError.drainOpenSSLErrors()
            return "the server's certificate carries none of the pinned public keys"
        }
        if !context.isServer, verify != Int(X509_V_OK) {
            _ = TLSError.drainOpenSSLErrors()
            return "the server's certificate was refused: " + String(cString: X509_verify_cert_error_string(verify))
        }
        return TLSError.drainOpenSSLErrors()
    }
}
