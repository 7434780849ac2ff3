import MarqueeHTTP
import Testing

@Suite("ResponseWriter")
struct ResponseWriterTests {
    /// Runs `body` with a writer over a fresh buffer of `capacity` bytes (plus guard bytes after
    /// it, which must stay untouched) and returns what was written.
    private func write(capacity: Int = 512, count: Int = 0, _ body: (inout ResponseWriter) -> Void)
        -> (text: String, overflowed: Bool)
    {
        var storage = [UInt8](repeating: 0xEE, count: capacity + 16)
        let (written, overflowed) = storage.withUnsafeMutableBytes { raw in
            var writer = ResponseWriter(base: raw.baseAddress!, capacity: capacity, count: count)
            body(&writer)
            #expect(writer.count <= capacity)
            return (Array(writer.written), writer.overflowed)
        }
        #expect(storage[capacity...].allSatisfy { $0 == 0xEE }, "nothing is written past capacity")
        return (String(decoding: written, as: UTF8.self), overflowed)
    }

    @Test func writesAFull200Head() {
        let result = write { writer in
            writer.append(HTTPStatus.ok.statusLine)
            writer.append("Content-Type: ")
            writer.append(MediaType.mediaSegment.contentType)
            writer.appendCRLF()
            writer.append("Content-Length: ")
            writer.append(decimal: 1_048_576)
            writer.appendCRLF()
            writer.append("Date: ")
            HTTPDate.format(784_111_777, into: writer.base + writer.count)
            writer.count += HTTPDate.length
            writer.appendCRLF()
            writer.append("ETag: \"")
            writer.append(hex: 0x5f3a_9c00)
            writer.append(byte: 0x2D)
            writer.append(hex: 1_048_576)
            writer.append(byte: 0x22)
            writer.appendCRLF()
            writer.appendCRLF()
        }
        #expect(!result.overflowed)
        #expect(
            result.text
                == "HTTP/1.1 200 OK\r\nContent-Type: video/iso.segment\r\nContent-Length: 1048576\r\n"
                + "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nETag: \"5f3a9c00-100000\"\r\n\r\n")
    }

    @Test(arguments: [
        (Int64(0), "0"), (7, "7"), (10, "10"), (99, "99"), (100, "100"), (1_234_567_890, "1234567890"),
        (Int64.max, "9223372036854775807"), (-1, "0"), (Int64.min, "0"),
    ])
    func appendsDecimals(value: Int64, text: String) {
        #expect(write { $0.append(decimal: value) }.text == text)
    }

    @Test(arguments: [
        (UInt64(0), "0"), (9, "9"), (10, "a"), (15, "f"), (16, "10"), (255, "ff"), (0xDEAD_BEEF, "deadbeef"),
        (UInt64.max, "ffffffffffffffff"),
    ])
    func appendsLowercaseHex(value: UInt64, text: String) {
        #expect(write { $0.append(hex: value) }.text == text)
    }

    @Test func writingPastCapacitySetsOverflowedInsteadOfTrapping() {
        let full = write(capacity: 8) { writer in
            writer.append("12345678")
            writer.append(byte: 0x39)
        }
        #expect(full.text == "12345678")
        #expect(full.overflowed)

        let tooLong = write(capacity: 8) { $0.append("123456789") }
        #expect(tooLong.text == "", "a piece that does not fit is not written in part")
        #expect(tooLong.overflowed)

        let number = write(capacity: 8) { writer in
            writer.append("HTTP/")
            writer.append(decimal: 12345)
        }
        #expect(number.text == "HTTP/")
        #expect(number.overflowed)

        let hex = write(capacity: 4) { $0.append(hex: 0x12345) }
        #expect(hex.text == "")
        #expect(hex.overflowed)
    }

    @Test func exactlyFillingTheBufferIsNotAnOverflow() {
        let result = write(capacity: 17) { $0.append(HTTPStatus.ok.statusLine) }
        #expect(result.text == "HTTP/1.1 200 OK\r\n")
        #expect(!result.overflowed)
    }

    @Test func appendingNothingChangesNothing() {
        let result = write(capacity: 0) { writer in
            writer.append("")
            writer.append(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        #expect(result.text == "")
        #expect(!result.overflowed)
    }

    @Test func aWriterCanContinueAfterExistingBytes() {
        var storage = Array("HTTP/1.1 ".utf8) + [UInt8](repeating: 0, count: 32)
        let text = storage.withUnsafeMutableBytes { raw in
            var writer = ResponseWriter(base: raw.baseAddress!, capacity: raw.count, count: 9)
            writer.append(decimal: 206)
            writer.append(" Partial Content")
            return String(decoding: writer.written, as: UTF8.self)
        }
        #expect(text == "HTTP/1.1 206 Partial Content")
    }
}
