import CTLS

/// The BIO kind every loop connection uses (`mq_loop_bio_*`), made once per process: OpenSSL
/// hands out few BIO type indexes.
nonisolated(unsafe) private let loopBIOMethod: OpaquePointer? = mq_loop_bio_method_new()

/// The TLS side of one event loop's connections, by slot. Each connection's `SSL` reads the
/// ciphertext the loop just received straight from the loop's receive buffer (`setInput`), and
/// writes ciphertext straight into the buffer the loop sends next (`setOutput`): no memory BIOs,
/// no copies but OpenSSL's own, no allocation after the handshake. Owned by one loop thread.
public final class TLSConnections {
    public let capacity: Int
    private let sessions: UnsafeMutablePointer<OpaquePointer?>
    private let io: UnsafeMutablePointer<mq_tls_io>

    public init(capacity: Int) {
        self.capacity = capacity
        sessions = .allocate(capacity: capacity)
        sessions.initialize(repeating: nil, count: capacity)
        io = .allocate(capacity: capacity)
        io.initialize(repeating: mq_tls_io(), count: capacity)
    }

    deinit {
        for slot in 0..<capacity where sessions[slot] != nil { SSL_free(sessions[slot]) }
        sessions.deallocate()
        io.deallocate()
    }

    /// Starts the server side of a new connection in `slot` with `context`'s certificates (the
    /// connection holds them: a context replaced later stays alive while it is open); false when
    /// OpenSSL is out of memory.
    public func open(_ slot: Int32, with context: TLSContext, loop: Int = 0) -> Bool {
        precondition(context.isServer, "a listener's connection needs a server context")
        guard let ssl = make(slot, context.context(for: loop)) else { return false }
        SSL_set_accept_state(ssl)
        return true
    }

    /// Starts the client side of a connection to `serverName` (a DNS name or an IP address, which
    /// the server's certificate must carry) in `slot`; false when OpenSSL is out of memory.
    public func open(_ slot: Int32, with context: TLSContext, serverName: String) -> Bool {
        precondition(!context.isServer, "an upstream connection needs a client context")
        guard let ssl = make(slot, context.context) else { return false }
        guard mq_ssl_client_expect(ssl, serverName) == 1 else {
            close(slot)
            return false
        }
        return true
    }

    private func make(_ slot: Int32, _ context: OpaquePointer) -> OpaquePointer? {
        let s = Int(slot)
        precondition(sessions[s] == nil, "slot \(slot) already has a TLS connection")
        guard let method = loopBIOMethod, let ssl = SSL_new(context) else { return nil }
        io[s] = mq_tls_io()
        guard mq_ssl_attach_loop_bio(ssl, method, io + s) == 1 else {
            SSL_free(ssl)
            return nil
        }
        sessions[s] = ssl
        return ssl
    }

    /// Why a client handshake failed, in words: the certificate's verification error when that
    /// was it.
    public func failureReason(_ slot: Int32) -> String {
        guard let ssl = sessions[Int(slot)] else { return "no TLS connection" }
        let verify = SSL_get_verify_result(ssl)
        if verify == MQ_X509_V_ERR_APPLICATION_VERIFICATION { return "its certificate carries none of the pinned public keys" }
        if verify != Int(X509_V_OK) { return "its certificate was refused: " + String(cString: X509_verify_cert_error_string(verify)) }
        return "the TLS handshake failed"
    }

    /// Frees the slot's connection (nothing is sent: `shutdown` first for a close_notify).
    public func close(_ slot: Int32) {
        let s = Int(slot)
        guard let ssl = sessions[s] else { return }
        SSL_free(ssl)
        sessions[s] = nil
        io[s] = mq_tls_io()
    }

    @inline(__always) public func isOpen(_ slot: Int32) -> Bool { sessions[Int(slot)] != nil }

    @inline(__always) public func isEstablished(_ slot: Int32) -> Bool { SSL_is_init_finished(sessions[Int(slot)]) == 1 }

    // MARK: - Buffers

    /// Ciphertext from the peer for the next calls; they consume it (OpenSSL keeps a partial record).
    @inline(__always) public func setInput(_ slot: Int32, _ bytes: UnsafeRawBufferPointer) {
        io[Int(slot)].in = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        io[Int(slot)].in_length = bytes.count
    }

    /// Whether a read could return more: received bytes left, or a record (or part of one)
    /// OpenSSL holds. False saves the read that would only say "wants input".
    @inline(__always) public func hasMoreToRead(_ slot: Int32) -> Bool {
        io[Int(slot)].in_length > 0 || SSL_has_pending(sessions[Int(slot)]) == 1
    }

    /// Where ciphertext for the peer goes: appended after `length` bytes already there, up to
    /// `capacity`. Nil detaches it (writes then wait, as on a full socket).
    @inline(__always) public func setOutput(_ slot: Int32, _ base: UnsafeMutableRawPointer?, capacity: Int, length: Int) {
        io[Int(slot)].out = base?.assumingMemoryBound(to: UInt8.self)
        io[Int(slot)].out_capacity = capacity
        io[Int(slot)].out_length = length
    }

    /// Ciphertext written into the output buffer so far.
    @inline(__always) public func outputLength(_ slot: Int32) -> Int { io[Int(slot)].out_length }

    @inline(__always) public func outputRoom(_ slot: Int32) -> Int {
        io[Int(slot)].out == nil ? 0 : io[Int(slot)].out_capacity - io[Int(slot)].out_length
    }

    // MARK: - The protocol

    public enum HandshakeStep: Equatable {
        case established
        /// More from the peer is needed (its output, if any, must be sent first).
        case wantsInput
        /// The output buffer is full: send it, then call again.
        case wantsOutput
        /// The peer broke the protocol or offered nothing we accept; an alert may be in the output.
        case failed
    }

    public func handshake(_ slot: Int32) -> HandshakeStep {
        let ssl = sessions[Int(slot)]
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .established }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return .wantsInput
        case SSL_ERROR_WANT_WRITE: return .wantsOutput
        default:
            ERR_clear_error()
            return .failed
        }
    }

    /// Whether the established session was resumed from a ticket.
    public func wasResumed(_ slot: Int32) -> Bool { SSL_session_reused(sessions[Int(slot)]) == 1 }

    public enum ReadStep: Equatable {
        case bytes(Int)
        /// Every received byte was consumed (a partial record waits inside OpenSSL).
        case wantsInput
        /// OpenSSL must write (a KeyUpdate answer) and the output buffer is full.
        case wantsOutput
        /// The peer's close_notify.
        case closed
        case failed
    }

    /// Decrypts what was received into `buffer`.
    @inline(__always) public func read(_ slot: Int32, into buffer: UnsafeMutableRawBufferPointer) -> ReadStep {
        let ssl = sessions[Int(slot)]
        var count = 0
        if SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &count) == 1 { return .bytes(count) }
        switch SSL_get_error(ssl, 0) {
        case SSL_ERROR_WANT_READ: return .wantsInput
        case SSL_ERROR_WANT_WRITE: return .wantsOutput
        case SSL_ERROR_ZERO_RETURN: return .closed
        default:
            ERR_clear_error()
            return .failed
        }
    }

    /// Plaintext of a record that fits one TCP segment of a 1500-byte MTU with its headers (IP,
    /// TCP with timestamps, the record's header, type and tag): the client decrypts it as soon as
    /// that segment arrives.
    public static let segmentRecordBytes = 1360

    /// Encrypts all of `bytes` into the output buffer, in records of at most 16 KB, the first
    /// `segmentSized` bytes of them in records of `segmentRecordBytes`; false when it failed or
    /// the output could not take them all (callers leave room first).
    @inline(__always) public func write(_ slot: Int32, _ bytes: UnsafeRawBufferPointer, segmentSized: Int = 0) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var offset = 0
        // Partial writes are on: each call returns after a record.
        while offset < bytes.count {
            var count = 0
            let length = offset < segmentSized ? min(Self.segmentRecordBytes, segmentSized - offset, bytes.count - offset) : bytes.count - offset
            guard SSL_write_ex(sessions[Int(slot)], base + offset, length, &count) == 1 else {
                ERR_clear_error()
                return false
            }
            offset += count
        }
        return true
    }

    /// Writes a close_notify into the output buffer.
    public func shutdown(_ slot: Int32) {
        _ = SSL_shutdown(sessions[Int(slot)])
        ERR_clear_error()
    }

    /// The most ciphertext `plaintext` bytes can become, in records as small as
    /// `segmentRecordBytes`: each record adds its header, the AEAD tag, TLS 1.3's content type,
    /// or TLS 1.2's explicit nonce.
    @inline(__always) public static func ciphertextBound(plaintext: Int) -> Int {
        plaintext + (plaintext / segmentRecordBytes + 1) * 64
    }
}
