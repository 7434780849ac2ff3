import MarqueeHTTP
import Testing

@Suite("HeadBoundary")
struct HeadBoundaryTests {
    private static let valid = "GET /a.m3u8 HTTP/1.1\r\nHost: cdn.example\r\nRange: bytes=0-9\r\n\r\n"
    private static let tight = RequestLimits(maxRequestLineBytes: 32, maxHeadBytes: 128, maxHeaderCount: 8)

    /// Scans `text` with a fresh boundary in one piece.
    private func scan(_ text: String, limits: RequestLimits = RequestLimits()) -> HeadBoundary.Result {
        withBytes(text) {
            var boundary = HeadBoundary()
            return boundary.scan($0, limits: limits)
        }
    }

    /// Feeds `bytes` the way a socket delivers them: growing prefixes ending at each of `cuts`,
    /// then the rest; returns the first verdict that is not `.incomplete`.
    private func scanInPieces(_ bytes: [UInt8], cuts: [Int], limits: RequestLimits = RequestLimits())
        -> HeadBoundary.Result
    {
        bytes.withUnsafeBytes { all in
            var boundary = HeadBoundary()
            for end in cuts + [all.count] {
                let result = boundary.scan(UnsafeRawBufferPointer(rebasing: all[..<end]), limits: limits)
                #expect(boundary.scanned <= end)
                if result != .incomplete { return result }
                #expect(boundary.scanned == end, "an incomplete scan examines everything it was given")
            }
            return .incomplete
        }
    }

    @Test func findsTheEndOfAHead() {
        #expect(scan(Self.valid) == .complete(headLength: Self.valid.utf8.count))
        #expect(scan("GET / HTTP/1.1\r\n\r\n") == .complete(headLength: 18))
    }

    @Test func everyProperPrefixIsIncomplete() {
        let bytes = Array(Self.valid.utf8)
        for end in 0..<bytes.count {
            let result = bytes.withUnsafeBytes { all in
                var boundary = HeadBoundary()
                return boundary.scan(UnsafeRawBufferPointer(rebasing: all[..<end]), limits: RequestLimits())
            }
            #expect(result == .incomplete, "prefix of \(end) bytes")
        }
    }

    @Test func oneByteAtATimeGivesTheSameAnswer() {
        let bytes = Array(Self.valid.utf8)
        #expect(scanInPieces(bytes, cuts: Array(1..<bytes.count)) == .complete(headLength: bytes.count))
    }

    @Test func everySplitIntoTwoPiecesGivesTheSameAnswer() {
        let samples = [
            Self.valid, "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", "GET / HTTP/1.1\nHost: a\r\n\r\n",
            "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
        ]
        for text in samples {
            let bytes = Array(text.utf8)
            let whole = scan(text)
            for cut in 0...bytes.count {
                #expect(scanInPieces(bytes, cuts: [cut]) == whole, "\(text.debugDescription) cut at \(cut)")
            }
        }
    }

    @Test func bytesAfterTheHeadAreNotExamined() {
        // a body or the next pipelined request may hold anything, bare LFs included
        let text = Self.valid + "\n\n\r\u{0}GET"
        #expect(scan(text) == .complete(headLength: Self.valid.utf8.count))
    }

    @Test func resetStartsOver() {
        let bytes = Array(Self.valid.utf8)
        bytes.withUnsafeBytes { all in
            var boundary = HeadBoundary()
            #expect(boundary.scan(UnsafeRawBufferPointer(rebasing: all[..<10]), limits: RequestLimits()) == .incomplete)
            #expect(boundary.scanned == 10)
            boundary.reset()
            #expect(boundary.scanned == 0)
            #expect(boundary.scan(all, limits: RequestLimits()) == .complete(headLength: all.count))
        }
    }

    // MARK: - Framing errors

    @Test(arguments: [
        "\n", "GET / HTTP/1.1\n", "GET / HTTP/1.1\r\nHost: a\n", "GET / HTTP/1.1\r\nHost: a\r\n\n",
        "GET / HTTP/1.1\r\n\n",
    ])
    func bareLFFails(text: String) {
        #expect(scan(text).status == .badRequest)
    }

    @Test(arguments: [
        "GET / HTTP/1.1\rX", "GET / HTTP/1.1\r\r\n", "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", "\rGET",
        "GET / HTTP/1.1\r\nHost: a\r\n\r\r",
    ])
    func bareCRFails(text: String) {
        #expect(scan(text).status == .badRequest)
    }

    @Test func aCRAtTheEndOfWhatArrivedWaitsForTheNextByte() {
        let bytes = Array("GET / HTTP/1.1\r".utf8)
        #expect(scanInPieces(bytes, cuts: []) == .incomplete)
        #expect(scanInPieces(bytes + [0x0A], cuts: [bytes.count]) == .incomplete)
        #expect(scanInPieces(bytes + [0x58], cuts: [bytes.count]).status == .badRequest)
    }

    @Test func upToFourLeadingEmptyLinesAreTolerated() {
        let four = String(repeating: "\r\n", count: 4) + "GET / HTTP/1.1\r\n\r\n"
        #expect(scan(four) == .complete(headLength: four.utf8.count))
        #expect(scan(String(repeating: "\r\n", count: 5) + "GET / HTTP/1.1\r\n\r\n").status == .badRequest)
        #expect(scan(String(repeating: "\r\n", count: 5)).status == .badRequest, "refused before a request line")
    }

    // MARK: - Limits

    @Test func aRequestLineAtTheLimitIsAccepted() {
        let line = "GET /" + String(repeating: "a", count: 32 - 14) + " HTTP/1.1"
        #expect(line.utf8.count == 32)
        let text = line + "\r\n\r\n"
        #expect(scan(text, limits: Self.tight) == .complete(headLength: text.utf8.count))
    }

    @Test func aRequestLineOverTheLimitFailsAsSoonAsItIsCrossed() {
        // 33 bytes then anything, CR included: the server need not wait for the rest of the line
        let line = "GET /" + String(repeating: "a", count: 33 - 14) + " HTTP/1.1"
        #expect(scan(line + "\r", limits: Self.tight).status == .uriTooLong)
        #expect(scan(line + "x", limits: Self.tight).status == .uriTooLong)
        #expect(scan("GET /" + String(repeating: "a", count: 100), limits: Self.tight).status == .uriTooLong)
    }

    @Test func aLongHeaderLineIsNotA414() {
        let text = "GET / HTTP/1.1\r\nX-A: " + String(repeating: "b", count: 60) + "\r\n\r\n"
        #expect(scan(text, limits: Self.tight) == .complete(headLength: text.utf8.count))
    }

    @Test func aHeadOfExactlyTheLimitIsAccepted() {
        let text = Self.head(length: 128)
        #expect(scan(text, limits: Self.tight) == .complete(headLength: 128))
    }

    @Test(arguments: [129, 130, 200])
    func aHeadOverTheLimitFails(length: Int) {
        #expect(scan(Self.head(length: length), limits: Self.tight).status == .requestHeaderFieldsTooLarge)
    }

    @Test func aHeadThatNeverEndsFailsOnceItCrossesTheLimit() {
        let endless = "GET / HTTP/1.1\r\n" + String(repeating: "X-A: b\r\n", count: 14)  // 128 bytes, no end
        #expect(endless.utf8.count == 128)
        #expect(scan(endless, limits: Self.tight) == .incomplete)
        #expect(scan(endless + "X", limits: Self.tight).status == .requestHeaderFieldsTooLarge)
    }

    /// A complete head of exactly `length` bytes.
    private static func head(length: Int) -> String {
        let frame = "GET / HTTP/1.1\r\nX: \r\n\r\n"
        return "GET / HTTP/1.1\r\nX: " + String(repeating: "v", count: length - frame.utf8.count) + "\r\n\r\n"
    }
}

extension HeadBoundary.Result {
    var status: HTTPStatus? {
        if case .failed(let error) = self { return error.status }
        return nil
    }
}
