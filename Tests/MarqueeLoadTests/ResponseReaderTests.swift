import Glibc
import Testing

@testable import MarqueeLoad
import MarqueeTestSupport

/// The load client's response reader: where each response ends, whatever pieces it arrives in,
/// and what it says of input that is not HTTP.
@Suite("Load client: response reader")
struct ResponseReaderTests {
    /// Feeds `bytes` in pieces of the given sizes (over again until all are in), as receives would
    /// land them, then the close; returns the steps.
    static func feed(_ bytes: [UInt8], pieces: [Int], area size: Int = 4096) -> [ResponseReader.Step] {
        var reader = ResponseReader(maxHeadBytes: size)
        let area = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { area.deallocate() }
        var steps: [ResponseReader.Step] = []
        var offset = 0
        var at = 0
        var k = 0
        while at < bytes.count {
            let piece = pieces[k % pieces.count]
            k += 1
            let n = min(piece, bytes.count - at, size - offset)
            bytes.withUnsafeBytes { (area.baseAddress! + offset).copyMemory(from: $0.baseAddress! + at, byteCount: n) }
            at += n
            let step = reader.received(n, in: area)
            steps.append(step)
            switch step {
            case .receive(let next): offset = next
            default: return steps
            }
        }
        steps.append(reader.ended())
        return steps
    }

    static func response(_ status: Int, body: Int, extra: String = "") -> [UInt8] {
        Array("HTTP/1.1 \(status) X\r\nContent-Length: \(body)\r\n\(extra)\r\n".utf8) + [UInt8](repeating: 0x61, count: body)
    }

    @Test("A response of known length ends at its last byte, in one piece or many, and keeps the connection")
    func length() {
        let bytes = Self.response(200, body: 10_000)
        for pieces in [[bytes.count], [1, 1, 1, 5000, 100_000], [40, 3000, 3000, 3000, 3000]] {
            #expect(Self.feed(bytes, pieces: pieces).last == .complete(status: 200, reusable: true), "\(pieces)")
        }
        #expect(Self.feed(Self.response(404, body: 0, extra: "Connection: close\r\n"), pieces: [1000]).last == .complete(status: 404, reusable: false))
    }

    @Test("Interim 1xx heads are skipped; chunked bodies end at the last chunk; a close-delimited body ends at the close")
    func framing() {
        let chunked = Array("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".utf8)
        #expect(Self.feed(chunked, pieces: [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]).last == .complete(status: 200, reusable: true))
        let untilClose = Array("HTTP/1.0 200 OK\r\n\r\nsome body".utf8)
        #expect(Self.feed(untilClose, pieces: [100]).last == .complete(status: 200, reusable: false))
    }

    @Test("Cut bodies, bytes after the response, oversized or malformed heads are failures, never a completed response")
    func failures() {
        #expect(Self.feed(Array(Self.response(200, body: 100).prefix(60)), pieces: [60]).last == .failed(.closedEarly))
        #expect(Self.feed(Self.response(200, body: 4) + Array("junk".utf8), pieces: [1000]).last == .failed(.unexpectedBytes))
        #expect(Self.feed(Array("HTTP/1.1 200 OK\r\nX: \(String(repeating: "y", count: 5000))\r\n\r\n".utf8), pieces: [4096, 4096], area: 4096).last == .failed(.headTooLarge))
        #expect(Self.feed(Array("SSH-2.0-OpenSSH\r\n\r\n".utf8), pieces: [100]).last == .failed(.malformedHead))
        #expect(Self.feed(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".utf8), pieces: [100]).last == .failed(.malformedBody))
    }

    @Test("Hostile input in random pieces never traps, and ends in a decision once the bytes stop", arguments: 0..<4)
    func hostile(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let alphabet = Array("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nTransfer-Encoding: chunked\r\n0123456789abcdef;:xyz \t".utf8)
        for _ in 0..<500 {
            var bytes: [UInt8]
            switch Int.random(in: 0..<3, using: &generator) {
            case 0: bytes = (0..<Int.random(in: 1...800, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 1: bytes = Array("HTTP/1.1 200 OK\r\n".utf8) + (0..<Int.random(in: 0...800, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            default:
                bytes = Self.response(Int.random(in: 100...700, using: &generator), body: Int.random(in: 0...300, using: &generator))
                if !bytes.isEmpty { bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            }
            let pieces = (0..<64).map { _ in Int.random(in: 1...300, using: &generator) }
            let steps = Self.feed(bytes, pieces: pieces, area: 1024)
            switch steps.last {
            case .complete?, .failed?: break
            default: Issue.record("no decision for \(bytes.count) bytes: \(String(describing: steps.last))")
            }
        }
    }
}
