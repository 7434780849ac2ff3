import Foundation
import MarqueeTLS
import MarqueeTestSupport
import Testing

/// TLS connections driven in memory, as a ring loop drives them: ciphertext moved by hand between
/// a server stream and a client stream (or hostile bytes), with certificates `openssl` makes.
@Suite("TLS streams in memory (OpenSSL)")
struct TLSStreamTests {
    /// A certificate for `name` (and its key) of `kind` (`ec` P-256 or `rsa`), issued by a CA of
    /// its own; the chain file holds both, so a client trusting it trusts that CA.
    static func certificate(_ kind: String, name: String = "localhost") throws -> (certificate: String, key: String) {
        let issued = try TestCertificateAuthority(kind: kind).issue([name], kind: kind)
        return (issued.chain, issued.key)
    }

    /// Moves every pending byte of ciphertext from `from` to `to`; returns how many.
    @discardableResult
    static func move(_ from: TLSStream, _ to: TLSStream) -> Int {
        var moved = 0
        var buffer = [UInt8](repeating: 0, count: 4096)
        while from.pendingCiphertext > 0 {
            let n = buffer.withUnsafeMutableBytes { from.takeCiphertext(into: $0) }
            guard n > 0 else { break }
            buffer.withUnsafeBytes { to.receive(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            moved += n
        }
        return moved
    }

    /// Runs the handshake to its end on both sides.
    static func connect(_ client: TLSStream, _ server: TLSStream) throws {
        for _ in 0..<20 {
            let c = try client.handshake()
            move(client, server)
            let s = try server.handshake()
            move(server, client)
            if c == .established && s == .established { return }
        }
        Issue.record("the handshake did not finish")
    }

    /// Sends `text` as the loop will: a record (up to 16 KB) at a time, its ciphertext moved and
    /// read on the other side before the next.
    static func send(_ text: String, from: TLSStream, to: TLSStream) throws -> String {
        let bytes = Array(text.utf8)
        var offset = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var received: [UInt8] = []
        while offset < bytes.count {
            let written = try bytes.withUnsafeBytes { try from.write(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            #expect(written > 0 && written <= 16 * 1024, "a record at most")
            offset += written
            move(from, to)
            while true {
                let result = try buffer.withUnsafeMutableBytes { try to.read(into: $0) }
                guard case .bytes(let n) = result, n > 0 else { break }
                received += buffer[0..<n]
            }
        }
        return String(decoding: received, as: UTF8.self)
    }

    @Test("ECDSA and RSA certificates: TLS 1.3 with ALPN http/1.1, a request and its response, then close_notify", arguments: ["ec", "rsa"])
    func roundTrip(kind: String) throws {
        let (certificate, key) = try Self.certificate(kind)
        let server = try TLSStream(context: try TLSContext(certificateChainFile: certificate, privateKeyFile: key))
        let client = try TLSStream(context: try TLSContext(clientTrusting: certificate), serverName: "localhost")
        try Self.connect(client, server)
        #expect(server.protocolVersion == "TLSv1.3")
        #expect(server.negotiatedProtocol == "http/1.1" && client.negotiatedProtocol == "http/1.1")
        #expect(try Self.send("GET /index.m3u8 HTTP/1.1\r\nHost: localhost\r\n\r\n", from: client, to: server).hasPrefix("GET /index.m3u8"))
        let body = String(repeating: "x", count: 50_000)
        #expect(try Self.send("HTTP/1.1 200 OK\r\n\r\n" + body, from: server, to: client).hasSuffix(body))
        client.close()
        Self.move(client, server)
        var buffer = [UInt8](repeating: 0, count: 256)
        #expect(try buffer.withUnsafeMutableBytes { try server.read(into: $0) } == .closed)
    }

    @Test("A client refuses a certificate it does not trust, or one for another name, and says why")
    func verification() throws {
        let (certificate, key) = try Self.certificate("ec")
        let (stranger, _) = try Self.certificate("ec")
        let serverContext = try TLSContext(certificateChainFile: certificate, privateKeyFile: key)
        let untrusting = try TLSStream(context: try TLSContext(clientTrusting: stranger), serverName: "localhost")
        #expect(throws: TLSError.self) { try Self.connect(untrusting, try TLSStream(context: serverContext)) }
        do {
            try Self.connect(try TLSStream(context: try TLSContext(clientTrusting: certificate), serverName: "origin.example"), try TLSStream(context: serverContext))
            Issue.record("a certificate for another name was accepted")
        } catch let error {
            #expect("\(error)".contains("certificate"), "\(error)")
        }
    }

    @Test("Files that are missing or do not match give a clear configuration error")
    func configuration() throws {
        let (certificate, _) = try Self.certificate("ec")
        let (_, otherKey) = try Self.certificate("ec")
        #expect(throws: TLSError.self) { _ = try TLSContext(certificateChainFile: "/nonexistent/cert.pem", privateKeyFile: otherKey) }
        do {
            _ = try TLSContext(certificateChainFile: certificate, privateKeyFile: otherKey)
            Issue.record("a key for another certificate was accepted")
        } catch {
            #expect(error.description.contains("does not match"), "\(error)")
        }
    }

    @Test("Refused before any data: a TLS 1.1 hello, garbage, and plain HTTP sent to the TLS port", arguments: [
        TLSRecords.tls11Hello, Array("GET /index.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n".utf8), [UInt8](repeating: 0xFF, count: 300),
    ])
    func hostileHellos(bytes: [UInt8]) throws {
        let (certificate, key) = try Self.certificate("ec")
        let server = try TLSStream(context: try TLSContext(certificateChainFile: certificate, privateKeyFile: key))
        bytes.withUnsafeBytes { server.receive($0) }
        #expect(throws: TLSError.self) { _ = try server.handshake() }
        #expect(!server.isEstablished)
    }
}
