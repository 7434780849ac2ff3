import CTLS

/// A TLS configuration shared by every connection of a listener (or by an upstream client):
/// OpenSSL's `SSL_CTX`, which is safe to use from many threads once set up. TLS 1.2 and 1.3
/// only, no renegotiation, no compression, ALPN `http/1.1`.
public final class TLSContext: @unchecked Sendable {
    /// A server's certificates as OpenSSL contexts, the default first, with the SNI table that
    /// chooses among them; one such set per library context (`TLSLibraries`).
    struct CertificateSet {
        let contexts: [OpaquePointer]
        /// SNI over several certificates (`mq_sni_select`); nil with one.
        let byName: UnsafeMutablePointer<mq_sni_table>?
        let byNameContexts: UnsafeMutablePointer<OpaquePointer?>?
    }

    /// The context a client (or a single-library server) starts connections with.
    let context: OpaquePointer
    /// A server's sets: one per loop when made with `TLSLibraries`, else one.
    private let sets: [CertificateSet]
    public let isServer: Bool
    /// A server's certificates, in the order given (the first is the default).
    public let certificates: [TLSCertificateFiles]
    /// When each of `certificates` expires (its leaf's notAfter), in Unix seconds.
    public let expiries: [Int64]
    /// The session ticket keys the contexts seal tickets with (kept alive as long as they are).
    public let ticketKeys: TLSTicketKeys?
    /// The library contexts the sets were made in (kept alive as long as they are).
    public let libraries: TLSLibraries?

    /// A server's context: a certificate chain (PEM, leaf first) and its private key (PEM, ECDSA
    /// or RSA). Throws with OpenSSL's reason when a file cannot be read or the key does not match.
    public convenience init(certificateChainFile: String, privateKeyFile: String) throws(TLSError) {
        try self.init(certificates: [TLSCertificateFiles(chain: certificateChainFile, key: privateKeyFile)], ticketKeys: nil)
    }

    /// A server's context over several certificates: a client's SNI name picks the first whose
    /// names cover it; the first certificate serves clients that name none, or a name no
    /// certificate covers. Tickets are sealed with `ticketKeys` (rotated by their owner), or with
    /// keys OpenSSL makes for this context when nil. With `libraries`, each library context gets
    /// a set of its own (`context(for:)`), so loops share no OpenSSL state while they handshake.
    public init(certificates: [TLSCertificateFiles], ticketKeys: TLSTicketKeys?, libraries: TLSLibraries? = nil) throws(TLSError) {
        precondition(!certificates.isEmpty, "a server needs a certificate")
        var sets: [CertificateSet] = []
        do throws(TLSError) {
            for library in libraries?.contexts ?? [nil] {
                sets.append(try Self.makeSet(certificates, ticketKeys: ticketKeys, library: library))
            }
        } catch {
            sets.forEach(Self.free)
            throw error
        }
        self.sets = sets
        context = sets[0].contexts[0]
        isServer = true
        self.certificates = certificates
        expiries = sets[0].contexts.map { mq_ssl_ctx_not_after($0) }
        self.ticketKeys = ticketKeys
        self.libraries = libraries
    }

    /// The context a server connection of loop `index` starts with.
    @inline(__always) func context(for index: Int) -> OpaquePointer { sets[index % sets.count].contexts[0] }

    private static func makeSet(_ certificates: [TLSCertificateFiles], ticketKeys: TLSTicketKeys?, library: OpaquePointer?) throws(TLSError)
        -> CertificateSet
    {
        var contexts: [OpaquePointer] = []
        do throws(TLSError) {
            for files in certificates {
                let context = try Self.make(server: true, library: library)
                contexts.append(context)
                _ = mq_ssl_ctx_no_session_cache(context)
                mq_ssl_ctx_read_ahead(context)
                guard mq_ssl_ctx_modern_ciphers(context) == 1 else {
                    throw TLSError.configuration("cannot set the TLS 1.2 cipher suites: \(TLSError.drainOpenSSLErrors())")
                }
                // A ticket lives until its key is forgotten: two rotations at most.
                if let ticketKeys { mq_ssl_ctx_use_ticket_keys(context, ticketKeys.keys, 2 * ticketKeys.rotationSeconds) }
                try Self.use(files, in: context)
                mq_ssl_ctx_select_http11(context)
            }
        } catch {
            contexts.forEach { SSL_CTX_free($0) }
            throw error
        }
        guard contexts.count > 1 else { return CertificateSet(contexts: contexts, byName: nil, byNameContexts: nil) }
        let table = UnsafeMutablePointer<mq_sni_table>.allocate(capacity: 1)
        let list = UnsafeMutablePointer<OpaquePointer?>.allocate(capacity: contexts.count)
        for (index, context) in contexts.enumerated() { list[index] = context }
        table.initialize(to: mq_sni_table(contexts: list, count: Int32(contexts.count)))
        // Set on every context, so whichever a connection starts from chooses.
        for context in contexts { mq_ssl_ctx_select_by_name(context, table) }
        return CertificateSet(contexts: contexts, byName: table, byNameContexts: list)
    }

    /// The contexts of connections still open stay alive (OpenSSL counts their references).
    private static func free(_ set: CertificateSet) {
        set.contexts.forEach { SSL_CTX_free($0) }
        set.byNameContexts?.deallocate()
        set.byName?.deallocate()
    }

    /// A client's context that verifies the server against the CA certificates in `caFile` (PEM),
    /// or against the system's store when nil. With `pinnedKeys` (SHA-256 digests of public keys,
    /// `TLSKeyPin`), the verified chain must also carry one of those keys.
    public init(clientTrusting caFile: String?, pinnedKeys: [TLSKeyPin] = []) throws(TLSError) {
        context = try Self.make(server: false, library: nil)
        sets = [CertificateSet(contexts: [context], byName: nil, byNameContexts: nil)]
        isServer = false
        certificates = []
        expiries = []
        ticketKeys = nil
        libraries = nil
        let loaded = caFile.map { SSL_CTX_load_verify_locations(context, $0, nil) } ?? SSL_CTX_set_default_verify_paths(context)
        guard loaded == 1 else {
            throw TLSError.configuration("cannot load the CA certificates \(caFile ?? "of the system"): \(TLSError.drainOpenSSLErrors())")
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        if !pinnedKeys.isEmpty {
            let digests = pinnedKeys.flatMap(\.sha256)
            // A throw here, as above, frees the context in deinit (every property is set).
            guard mq_ssl_ctx_pin_keys(context, digests, pinnedKeys.count) == 1 else {
                throw TLSError.configuration("cannot set the public-key pins: \(TLSError.drainOpenSSLErrors())")
            }
        }
        _ = mq_ssl_ctx_offer_http11(context)
    }

    private static func use(_ files: TLSCertificateFiles, in context: OpaquePointer) throws(TLSError) {
        guard SSL_CTX_use_certificate_chain_file(context, files.chain) == 1 else {
            throw TLSError.configuration("cannot use the certificate chain \(files.chain): \(TLSError.drainOpenSSLErrors())")
        }
        guard SSL_CTX_use_PrivateKey_file(context, files.key, SSL_FILETYPE_PEM) == 1 else {
            let reason = TLSError.drainOpenSSLErrors()
            // OpenSSL checks the key against the certificate as it loads it.
            if reason.contains("key values mismatch") {
                throw TLSError.configuration("the private key \(files.key) does not match the certificate \(files.chain)")
            }
            throw TLSError.configuration("cannot use the private key \(files.key): \(reason)")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            _ = TLSError.drainOpenSSLErrors()
            throw TLSError.configuration("the private key \(files.key) does not match the certificate \(files.chain)")
        }
    }

    private static func make(server: Bool, library: OpaquePointer?) throws(TLSError) -> OpaquePointer {
        guard let context = SSL_CTX_new_ex(library, nil, server ? TLS_server_method() : TLS_client_method()) else {
            throw TLSError.configuration("cannot create a TLS context: \(TLSError.drainOpenSSLErrors())")
        }
        guard mq_ssl_ctx_set_protocols(context, TLS1_2_VERSION, TLS1_3_VERSION) == 1 else {
            SSL_CTX_free(context)
            throw TLSError.configuration("cannot limit TLS to versions 1.2 and 1.3")
        }
        _ = SSL_CTX_set_options(context, MQ_SSL_OP_NO_RENEGOTIATION | MQ_SSL_OP_CIPHER_SERVER_PREFERENCE | MQ_SSL_OP_NO_COMPRESSION)
        _ = mq_ssl_ctx_set_partial_writes(context)
        return context
    }

    deinit {
        sets.forEach(Self.free)
    }
}

/// OpenSSL library contexts, one per event loop, each with the default provider. A loop's
/// handshakes then look up algorithms in its own context and never wait on another loop's locks.
/// Made once for the process and never freed: contexts of replaced certificate sets may still be
/// in use by open connections.
public final class TLSLibraries: @unchecked Sendable {
    let contexts: [OpaquePointer?]

    public init(count: Int) throws(TLSError) {
        var made: [OpaquePointer?] = []
        for _ in 0..<count {
            guard let library = mq_library_new() else {
                throw TLSError.configuration("cannot make an OpenSSL library context: \(TLSError.drainOpenSSLErrors())")
            }
            made.append(library)
        }
        contexts = made
    }
}

/// A pinned public key: the SHA-256 digest of a certificate's SubjectPublicKeyInfo, written
/// `sha256//BASE64` as curl's `--pinnedpubkey` takes it (`openssl x509 -pubkey -noout -in CERT |
/// openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`).
public struct TLSKeyPin: Sendable, Equatable {
    public let sha256: [UInt8]

    /// Nil unless `text` is `sha256//` and the base64 of 32 bytes.
    public init?(_ text: String) {
        let prefix = "sha256//"
        guard text.hasPrefix(prefix), let bytes = Self.decodeBase64(text.dropFirst(prefix.count)), bytes.count == 32 else { return nil }
        sha256 = bytes
    }

    /// Standard base64 with its padding (OpenSSL's decoder, which counts padding as zero bytes).
    private static func decodeBase64(_ text: Substring) -> [UInt8]? {
        let encoded = Array(text.utf8)
        guard !encoded.isEmpty, encoded.count % 4 == 0, encoded.count <= 4096 else { return nil }
        var decoded = [UInt8](repeating: 0, count: encoded.count / 4 * 3)
        let count = EVP_DecodeBlock(&decoded, encoded, Int32(encoded.count))
        guard count >= 0 else { return nil }
        let padding = encoded.reversed().prefix { $0 == UInt8(ascii: "=") }.count
        guard padding <= 2 else { return nil }
        return Array(decoded.prefix(Int(count) - padding))
    }
}

/// A certificate chain (PEM, leaf first) and its private key (PEM).
public struct TLSCertificateFiles: Sendable, Equatable, Hashable {
    public var chain: String
    public var key: String

    public init(chain: String, key: String) {
        self.chain = chain
        self.key = key
    }
}

/// What went wrong with TLS, in words an operator can act on.
public enum TLSError: Error, Equatable, CustomStringConvertible {
    /// A context could not be set up (files, keys, settings).
    case configuration(String)
    /// The peer broke the protocol, offered only versions we refuse, or failed verification.
    case handshake(String)
    /// The connection failed after the handshake.
    case connection(String)

    public var description: String {
        switch self {
        case .configuration(let text): "TLS configuration: \(text)"
        case .handshake(let text): "TLS handshake: \(text)"
        case .connection(let text): "TLS: \(text)"
        }
    }

    /// OpenSSL's queued errors of this thread as text (and the queue emptied, so the next
    /// failure does not report them again).
    static func drainOpenSSLErrors() -> String {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            guard code != 0 else { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return reasons.isEmpty ? "no reason given" : reasons.joined(separator: "; ")
    }
}
