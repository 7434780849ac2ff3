import MarqueeTLS
import MarqueeTestSupport
import Testing

/// The server side the event loops run (`TLSConnections`, OpenSSL over the loop's own buffers)
/// fed hostile input: random bytes, mutated hellos, records split at random places and
/// corrupted records. It must never crash, must fail what is broken, and must deliver exactly what
/// an honest client sent however the bytes are cut.
@Suite("TLS on the loop's buffers under hostile input")
struct TLSConnectionsFuzzTests {
    /// One loop connection (slot 0) driven as the loop drives it.
    final class LoopServer {
        let connections = TLSConnections(capacity: 1)
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 64)
        var plaintext: [UInt8] = []
        var failed = false
        var peerClosed = false

        init(_ context: TLSContext) {
            #expect(connections.open(0, with: context))
        }

        deinit {
            connections.close(0)
            output.deallocate()
        }

        /// Hands `bytes` over as one receive; returns the ciphertext the server wrote meanwhile.
        func receive(_ bytes: [UInt8]) -> [UInt8] {
            guard !failed, !peerClosed else { return [] }
            connections.setOutput(0, output.baseAddress, capacity: output.count, length: 0)
            bytes.withUnsafeBytes { received in
                connections.setInput(0, received)
                defer { connections.setInput(0, UnsafeRawBufferPointer(start: nil, count: 0)) }
                if !connections.isEstablished(0) {
                    switch connections.handshake(0) {
                    case .established: break
                    case .wantsInput: return
                    case .wantsOutput, .failed:
                        failed = true
                        return
                    }
                }
                var buffer = [UInt8](repeating: 0, count: 16 * 1024)
                while true {
                    let step = buffer.withUnsafeMutableBytes { connections.read(0, into: $0) }
                    switch step {
                    case .bytes(let count):
                        plaintext += buffer[0..<count]
                        if !connections.hasMoreToRead(0) { return }
                    case .wantsInput: return
                    case .closed:
                        peerClosed = true
                        return
                    case .wantsOutput, .failed:
                        failed = true
                        return
                    }
                }
            }
            let written = connections.outputLength(0)
            connections.setOutput(0, nil, capacity: 0, length: 0)
            return Array(output[0..<written])
        }
    }

    static let material: (server: TLSContext, trust: String) = {
        let issued = try! TestCertificateAuthority().issue()
        let authority = issued.chain
        let server = try! TLSContext(certificates: [TLSCertificateFiles(chain: issued.chain, key: issued.key)], ticketKeys: nil)
        return (server, authority)
    }()

    /// The client's pending ciphertext, whole.
    static func drain(_ client: TLSStream) -> [UInt8] {
        var all: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while client.pendingCiphertext > 0 {
            let n = buffer.withUnsafeMutableBytes { client.takeCiphertext(into: $0) }
            guard n > 0 else { break }
            all += buffer[0..<n]
        }
        return all
    }

    /// Delivers `bytes` to the server in pieces of random size; returns what the server wrote.
    static func deliver(_ bytes: [UInt8], to server: LoopServer, random: inout SeededGenerator) -> [UInt8] {
        var answer: [UInt8] = []
        var offset = 0
        while offset < bytes.count {
            let piece = min(bytes.count - offset, 1 + Int(random.next() % 700))
            answer += server.receive(Array(bytes[offset..<offset + piece]))
            offset += piece
        }
        return answer
    }

    /// A client's handshake with `server`, every flight cut at random places.
    static func connect(_ server: LoopServer, random: inout SeededGenerator) throws -> TLSStream {
        let client = try TLSStream(context: try TLSContext(clientTrusting: material.trust), serverName: "localhost")
        for _ in 0..<10 where !(client.isEstablished && server.connections.isEstablished(0)) {
            _ = try client.handshake()
            let answer = deliver(drain(client), to: server, random: &random)
            answer.withUnsafeBytes { client.receive($0) }
        }
        return client
    }

    @Test("Random bytes instead of a hello, cut anywhere: refused, never established, never a crash")
    func randomBytes() {
        var random = SeededGenerator(seed: 0xF022)
        for _ in 0..<300 {
            let server = LoopServer(Self.material.server)
            let garbage = random.bytes(Int(random.next() % 3000))
            _ = Self.deliver(garbage, to: server, random: &random)
            #expect(!server.connections.isEstablished(0))
            #expect(server.plaintext.isEmpty)
        }
    }

    @Test("A real hello with bytes flipped or cut short: refused or still waiting, never established without a client")
    func mutatedHellos() throws {
        var random = SeededGenerator(seed: 0x4E110)
        for round in 0..<150 {
            let client = try TLSStream(context: try TLSContext(clientTrusting: Self.material.trust), serverName: "localhost")
            _ = try client.handshake()
            var hello = Self.drain(client)
            for _ in 0..<(1 + Int(random.next() % 4)) {
                hello[Int(random.next() % UInt64(hello.count))] ^= UInt8(truncatingIfNeeded: 1 + random.next() % 255)
            }
            if round % 3 == 0 { hello = Array(hello.prefix(Int(random.next() % UInt64(hello.count)))) }
            let server = LoopServer(Self.material.server)
            _ = Self.deliver(hello, to: server, random: &random)
            // Only a client's Finished completes a handshake: a hello alone never does.
            #expect(!server.connections.isEstablished(0))
            #expect(server.plaintext.isEmpty)
        }
    }

    @Test("An honest client's handshake and request, cut at random places: the server reads exactly the request")
    func randomCuts() throws {
        var random = SeededGenerator(seed: 0xC075)
        for _ in 0..<60 {
            let request = Array("GET /titles/demo/1/index.m3u8 HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
                + (0..<Int(random.next() % 40_000)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            let server = LoopServer(Self.material.server)
            let client = try Self.connect(server, random: &random)
            #expect(client.isEstablished && server.connections.isEstablished(0), "the handshake did not finish")
            var offset = 0
            while offset < request.count {
                offset += try request.withUnsafeBytes { try client.write(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            }
            _ = Self.deliver(Self.drain(client), to: server, random: &random)
            #expect(!server.failed)
            #expect(server.plaintext == request, "read \(server.plaintext.count) of \(request.count) bytes, or other bytes")
        }
    }

    @Test("A corrupted or forged record after the handshake fails the connection and delivers none of its bytes")
    func corruptedRecords() throws {
        var random = SeededGenerator(seed: 0xBAD)
        for _ in 0..<60 {
            let server = LoopServer(Self.material.server)
            let client = try Self.connect(server, random: &random)
            let secret = Array("GET /private HTTP/1.1\r\n\r\n".utf8)
            _ = try secret.withUnsafeBytes { try client.write($0) }
            var record = Self.drain(client)
            // Past the 5-byte header: the ciphertext or its tag.
            let at = 5 + Int(random.next() % UInt64(record.count - 5))
            record[at] ^= UInt8(truncatingIfNeeded: 1 + random.next() % 255)
            _ = Self.deliver(record, to: server, random: &random)
            #expect(server.failed, "a record that does not authenticate was accepted")
            #expect(server.plaintext.isEmpty)
        }
    }
}
