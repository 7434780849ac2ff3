/// Parses an upstream's response head (RFC 9112 §4): strict about framing (Content-Length and
/// Transfer-Encoding together, differing Content-Length values and malformed lines are refused,
/// so the gateway answers 502 instead of relaying a message it cannot delimit). No allocation.
public enum ResponseParser {
    public enum Result: Equatable, Sendable {
        case incomplete
        case complete(ResponseHead)
        case failed(reason: StaticString)

        public static func == (lhs: Result, rhs: Result) -> Bool {
            switch (lhs, rhs) {
            case (.incomplete, .incomplete): true
            case (.complete(let a), .complete(let b)): a == b
            case (.failed(let a), .failed(let b)): a.utf8Start == b.utf8Start
            default: false
            }
        }
    }

    /// Where the head in `bytes` ends (just past CRLFCRLF), or nil while incomplete.
    public static func headEnd(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var i = 0
        while i + 3 < bytes.count {
            if bytes[i] == 0x0D && bytes[i + 1] == 0x0A && bytes[i + 2] == 0x0D && bytes[i + 3] == 0x0A { return i + 4 }
            i += 1
        }
        return nil
    }

    /// Parses the head at the start of `bytes` once it is complete.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxHeadBytes: Int = 32768) -> Result {
        guard let end = headEnd(bytes) else {
            return bytes.count >= maxHeadBytes ? .failed(reason: "upstream response head too large") : .incomplete
        }
        guard end <= maxHeadBytes else { return .failed(reason: "upstream response head too large") }
        var head = ResponseHead()
        head.headLength = end
        // HTTP/1.x SP 3DIGIT SP reason CRLF
        guard end >= 14, bytes[0] == 0x48, bytes[1] == 0x54, bytes[2] == 0x54, bytes[3] == 0x50, bytes[4] == 0x2F,
            bytes[5] == 0x31, bytes[6] == 0x2E, bytes[7] == 0x30 || bytes[7] == 0x31, bytes[8] == 0x20
        else { return .failed(reason: "malformed upstream status line") }
        head.isHTTP11 = bytes[7] == 0x31
        var status = 0
        for k in 9..<12 {
            let d = bytes[k]
            guard d >= 0x30 && d <= 0x39 else { return .failed(reason: "malformed upstream status code") }
            status = status * 10 + Int(d - 0x30)
        }
        guard status >= 100 else { return .failed(reason: "malformed upstream status code") }
        head.status = status
        var i = 12
        if bytes[i] == 0x20 { i += 1 } else if bytes[i] != 0x0D { return .failed(reason: "malformed upstream status line") }
        head.reasonStart = i
        while i < end && bytes[i] != 0x0D {
            let b = bytes[i]
            if (b < 0x20 && b != 0x09) || b == 0x7F { return .failed(reason: "control character in upstream status line") }
            i += 1
        }
        head.reasonCount = i - head.reasonStart
        guard i + 1 < end, bytes[i + 1] == 0x0A else { return .failed(reason: "malformed upstream status line") }
        i += 2

        var closes = !head.isHTTP11
        var sawTransferEncoding = false
        while i < end - 2 {
            let lineStart = i
            while i < end && Token.isTChar(bytes[i]) { i += 1 }
            guard i > lineStart, i < end, bytes[i] == 0x3A else { return .failed(reason: "malformed upstream header field") }
            let name = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<i])
            i += 1
            while i < end && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 }
            let valueStart = i
            var valueEnd = i
            while i < end && bytes[i] != 0x0D {
                let b = bytes[i]
                if (b < 0x20 && b != 0x09) || b == 0x7F { return .failed(reason: "control character in upstream header") }
                i += 1
                if b != 0x20 && b != 0x09 { valueEnd = i }
            }
            guard i + 1 < end, bytes[i + 1] == 0x0A else { return .failed(reason: "bare CR in upstream head") }
            i += 2
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd])
            if name.equalsLowercase("content-length") {
                guard let length = RequestParser.decimal(value) else { return .failed(reason: "malformed upstream Content-Length") }
                if head.contentLength >= 0 && head.contentLength != length {
                    return .failed(reason: "conflicting upstream Content-Length")
                }
                head.contentLength = length
            } else if name.equalsLowercase("transfer-encoding") {
                sawTransferEncoding = true
                // The final coding decides: chunked frames the body, anything else runs until close.
                var e = value.count
                while e > 0 && value[e - 1] != 0x2C { e -= 1 }
                var s = e
                while s < value.count && (value[s] == 0x20 || value[s] == 0x09) { s += 1 }
                let last = UnsafeRawBufferPointer(rebasing: value[s...])
                if last.equalsLowercase("chunked") {
                    head.isChunked = true
                    head.hasOtherTransferEncoding = false
                } else {
                    head.isChunked = false
                    head.hasOtherTransferEncoding = true
                }
            } else if name.equalsLowercase("connection") {
                if HeaderFields.listContains(value, UnsafeRawBufferPointer(start: Self.closeToken.utf8Start, count: 5)) {
                    closes = true
                } else if !head.isHTTP11
                    && HeaderFields.listContains(value, UnsafeRawBufferPointer(start: Self.keepAliveToken.utf8Start, count: 10))
                {
                    closes = false
                }
            }
        }
        if sawTransferEncoding && head.contentLength >= 0 {
            return .failed(reason: "upstream sent Content-Length with Transfer-Encoding")
        }
        head.closes = closes
        return .complete(head)
    }

    private static let closeToken: StaticString = "close"
    private static let keepAliveToken: StaticString = "keep-alive"
}
