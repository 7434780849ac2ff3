import MarqueeTestSupport
import MarqueeHTTP
import Testing

/// Random and mutated request heads through `HeadBoundary` and `RequestParser`: the parser must
/// never trap, must answer only with the statuses a request head can earn, must give the same
/// verdict however the bytes are split into reads, and every slice of a parsed head must lie
/// inside the head. A failure names its case number; the run is deterministic for a given seed.
@Suite("Parser fuzz")
struct ParserFuzzTests {
    static let seed: UInt64 = 0x6D61_7271_7565_6521
    static let caseCount = 60_000

    static let defaultLimits = RequestLimits()
    static let tightLimits = RequestLimits(maxRequestLineBytes: 48, maxHeadBytes: 160, maxHeaderCount: 4)
    static let headStatuses: Set<HTTPStatus> = [.badRequest, .uriTooLong, .requestHeaderFieldsTooLarge]
    static let parseStatuses: Set<HTTPStatus> = [
        .badRequest, .uriTooLong, .requestHeaderFieldsTooLarge, .httpVersionNotSupported, .notImplemented,
    ]

    @Test func randomAndMutatedHeadsKeepEveryInvariant() {
        var random = SeededGenerator(seed: Self.seed)
        var report = FailureReport()
        var verdicts: [String: Int] = [:]
        for index in 0..<Self.caseCount {
            let kind = random.next() % 100
            let limits = random.next() % 4 == 0 ? Self.tightLimits : Self.defaultLimits
            let bytes: [UInt8]
            switch kind {
            case 0..<12: bytes = Self.randomBytes(&random)
            case 12..<27: bytes = Self.randomPieces(&random)
            case 27..<90:
                var generated = Self.validRequest(&random).bytes
                for _ in 0...(random.next() % 4) { Self.mutate(&generated, &random) }
                bytes = generated
            default:
                let valid = Self.validRequest(&random)
                Self.checkValid(valid, index: index, report: &report)
                bytes = valid.bytes
            }
            let verdict = Self.check(bytes, limits: limits, random: &random, index: index, report: &report)
            verdicts[verdict, default: 0] += 1
            if report.isFull { break }
        }
        report.flush()
        // the generators must reach every outcome, or the run proves little
        for outcome in ["complete", "incomplete", "400", "414", "431", "505"] {
            #expect(verdicts[outcome, default: 0] > 100, "outcome \(outcome) was reached only \(verdicts[outcome, default: 0]) times: \(verdicts)")
        }
    }

    // MARK: - Checks

    /// Checks one input; returns its verdict ("complete", "incomplete" or a status code).
    static func check(
        _ bytes: [UInt8], limits: RequestLimits, random: inout SeededGenerator, index: Int, report: inout FailureReport
    ) -> String {
        bytes.withUnsafeBytes { all in
            var boundary = HeadBoundary()
            let whole = boundary.scan(all, limits: limits)

            // the same bytes as a socket might deliver them: in random pieces, and now and then one by one
            var cuts = (0..<(random.next() % 8)).map { _ in Int(random.next() % UInt64(all.count + 1)) }.sorted()
            if index % 16 == 0 { cuts = Array(0..<all.count) }
            let chunked = scanInPieces(all, cuts: cuts, limits: limits)
            report.require(chunked == whole, index, bytes, "whole \(whole) but in pieces at \(cuts.prefix(8)) \(chunked)")

            // the parser alone, given bytes HeadBoundary did not vet, must stay in bounds as well
            if !all.isEmpty {
                checkParse(all, headLength: all.count, limits: limits, index: index, bytes: bytes, report: &report)
            }

            switch whole {
            case .incomplete:
                report.require(all.count <= limits.maxHeadBytes, index, bytes, "incomplete past maxHeadBytes")
                return "incomplete"
            case .failed(let error):
                report.require(headStatuses.contains(error.status), index, bytes, "HeadBoundary answered \(error.status)")
                return "\(error.status.rawValue)"
            case .complete(let headLength):
                report.require(headLength >= 4 && headLength <= all.count, index, bytes, "headLength \(headLength)")
                guard headLength >= 4 && headLength <= all.count else { return "complete" }
                report.require(headLength <= limits.maxHeadBytes, index, bytes, "head of \(headLength) bytes accepted")
                report.require(Array(all[(headLength - 4)..<headLength]) == [13, 10, 13, 10], index, bytes, "no CRLFCRLF")
                for i in 0..<headLength where all[i] == 0x0A || all[i] == 0x0D {
                    let ok = all[i] == 0x0A ? i > 0 && all[i - 1] == 0x0D : i + 1 < headLength && all[i + 1] == 0x0A
                    report.require(ok, index, bytes, "bare CR or LF at \(i) inside a complete head")
                }
                let head = UnsafeRawBufferPointer(rebasing: all[..<headLength])
                return checkParse(head, headLength: headLength, limits: limits, index: index, bytes: bytes, report: &report)
                    ?? "complete"
            }
        }
    }

    /// Parses and checks the result; returns the failure status code, or nil when complete.
    @discardableResult
    static func checkParse(
        _ buffer: UnsafeRawBufferPointer, headLength: Int, limits: RequestLimits, index: Int, bytes: [UInt8],
        report: inout FailureReport
    ) -> String? {
        switch RequestParser.parse(buffer, headLength: headLength, limits: limits) {
        case .failed(let error):
            report.require(parseStatuses.contains(error.status), index, bytes, "RequestParser answered \(error.status)")
            return "\(error.status.rawValue)"
        case .complete(let head):
            report.require(head.headLength == headLength, index, bytes, "head.headLength \(head.headLength)")
            let slices = [
                head.target, head.path, head.host, head.range, head.ifNoneMatch, head.ifModifiedSince, head.ifRange,
                head.ifMatch, head.ifUnmodifiedSince, head.origin, head.accessControlRequestMethod,
                head.accessControlRequestHeaders,
            ]
            for slice in slices where slice.isPresent {
                let inside = slice.start >= 0 && slice.count >= 0 && slice.end <= headLength
                report.require(inside, index, bytes, "slice \(slice) outside [0, \(headLength))")
                guard inside else { continue }
                let value = slice.bytes(in: buffer)
                report.require(!value.contains(0x0D) && !value.contains(0x0A) && !value.contains(0), index, bytes,
                    "slice \(slice) holds CR, LF or NUL")
                if let first = value.first, let last = value.last {
                    report.require(first != 0x20 && first != 0x09 && last != 0x20 && last != 0x09, index, bytes,
                        "slice \(slice) is not trimmed")
                }
            }
            report.require(head.target.isPresent, index, bytes, "no target")
            if head.path.isPresent {
                report.require(head.path.start >= head.target.start && head.path.end <= head.target.end, index, bytes,
                    "path outside target")
                report.require(buffer[Int(head.path.start)] == 0x2F, index, bytes, "path does not start with /")
                checkDecodedPath(head.path.bytes(in: buffer), index: index, bytes: bytes, report: &report)
            } else {
                report.require(head.method == .options && head.target.count == 1, index, bytes, "no path")
            }
            report.require(head.headerCount <= limits.maxHeaderCount, index, bytes, "\(head.headerCount) fields")
            report.require(!(head.contentLength >= 0 && head.hasTransferEncoding), index, bytes, "CL with TE")
            report.require(!head.hasTransferEncoding || head.isHTTP11, index, bytes, "TE in HTTP/1.0")
            // A head that was accepted names no transfer coding but one `chunked` (501 otherwise).
            // Field lines up to the first empty line (bytes, since Swift reads CR LF as one character).
            var fieldLines: [String] = []
            var lineStart = 0
            while lineStart + 1 < headLength && buffer[lineStart] == 0x0D && buffer[lineStart + 1] == 0x0A { lineStart += 2 }
            var i = lineStart
            while i + 1 < headLength {
                // A line that starts with CR ends the fields, as for the parser (HeadBoundary, which
                // this harness may bypass, guarantees that CR is the empty line's).
                if i == lineStart && buffer[i] == 0x0D { break }
                if buffer[i] == 0x0D && buffer[i + 1] == 0x0A {
                    fieldLines.append(String(decoding: buffer[lineStart..<i], as: UTF8.self).lowercased())
                    lineStart = i + 2
                    i = lineStart
                } else {
                    i += 1
                }
            }
            let codings = fieldLines.dropFirst().filter { $0.hasPrefix("transfer-encoding:") }
            report.require(codings.count == (head.hasTransferEncoding ? 1 : 0), index, bytes, "\(codings.count) Transfer-Encoding fields accepted")
            if let coding = codings.first {
                let value = coding.dropFirst("transfer-encoding:".count).drop { $0 == " " || $0 == "\t" }
                report.require(value == "chunked" || value.hasPrefix("chunked") && value.dropFirst(7).allSatisfy { $0 == " " || $0 == "\t" }, index, bytes, "Transfer-Encoding \(value.debugDescription) accepted")
            }
            report.require(!head.isHTTP11 || head.host.isPresent, index, bytes, "HTTP/1.1 without Host")
            report.require(head.target.count <= limits.maxRequestLineBytes, index, bytes, "target over the limit")
            return nil
        }
    }

    /// Whatever the path, a decoded one never climbs out of the root or names a hidden file.
    static func checkDecodedPath(_ raw: UnsafeRawBufferPointer, index: Int, bytes: [UInt8], report: inout FailureReport) {
        withUnsafeTemporaryAllocation(byteCount: 257, alignment: 1) { out in
            guard case .relative(let length) = RequestPath.decode(raw, into: out, maxLength: 256) else { return }
            let decoded = Array(out[..<length])
            report.require(out[length] == 0 && !decoded.contains(0), index, bytes, "decoded path not NUL-terminated")
            report.require(!decoded.contains(0x5C), index, bytes, "backslash in decoded path")
            report.require(decoded.first != 0x2F && decoded.last != 0x2F, index, bytes, "decoded path has an outer /")
            for segment in decoded.split(separator: 0x2F, omittingEmptySubsequences: false) where !decoded.isEmpty {
                report.require(!segment.isEmpty && segment.first != 0x2E, index, bytes, "unsafe segment in decoded path")
            }
        }
    }

    /// Feeds growing prefixes ending at `cuts`, then everything; the first verdict that is not incomplete.
    static func scanInPieces(_ all: UnsafeRawBufferPointer, cuts: [Int], limits: RequestLimits) -> HeadBoundary.Result {
        var boundary = HeadBoundary()
        for end in cuts + [all.count] where end >= boundary.scanned {
            let result = boundary.scan(UnsafeRawBufferPointer(rebasing: all[..<end]), limits: limits)
            if result != .incomplete { return result }
        }
        return .incomplete
    }

    /// A generated request that must parse, with what the parser must find in it.
    static func checkValid(_ valid: ValidRequest, index: Int, report: inout FailureReport) {
        valid.bytes.withUnsafeBytes { all in
            guard case .parsed(let request) = receive(all, limits: defaultLimits) else {
                report.require(false, index, valid.bytes, "a valid request was refused: \(receive(all).status as Any)")
                return
            }
            report.require(request.path == valid.path, index, valid.bytes, "path \(request.path ?? "nil")")
            report.require(request.host == valid.host, index, valid.bytes, "host \(request.host ?? "nil")")
            report.require(request.range == valid.range, index, valid.bytes, "range \(request.range ?? "nil")")
            report.require(request.head.keepAlive == valid.keepAlive, index, valid.bytes, "keepAlive")
            report.require(request.head.headerCount == valid.headerCount, index, valid.bytes, "headerCount")
            report.require(request.head.headLength == valid.headLength, index, valid.bytes, "headLength")
            report.require(request.head.method == valid.method, index, valid.bytes, "method")
        }
    }

    // MARK: - Generators

    struct ValidRequest {
        var bytes: [UInt8]
        var method: HTTPMethod
        var path: String
        var host: String?
        var range: String?
        var keepAlive: Bool
        var headerCount: Int
        var headLength: Int
    }

    static func pick<T>(_ options: [T], _ random: inout SeededGenerator) -> T {
        options[Int(random.next() % UInt64(options.count))]
    }

    static func ows(_ random: inout SeededGenerator) -> String {
        pick(["", "", " ", " ", "  ", "\t", " \t "], &random)
    }

    static func validRequest(_ random: inout SeededGenerator) -> ValidRequest {
        let (methodText, method) = pick(
            [("GET", HTTPMethod.get), ("GET", .get), ("HEAD", .head), ("POST", .post), ("OPTIONS", .options), ("PURGE", .other)],
            &random)
        var path = ""
        for _ in 0...(random.next() % 4) {
            path += "/" + pick(["live", "vod", "ch1", "seg_00042.m4s", "index.m3u8", "a%20b", "%2e%2e", "..", ".git", "x"], &random)
        }
        let query = pick(["", "", "?CMCD=br%3D3200", "?a=1&b=/c", "?"], &random)
        let absolute = random.next() % 10 == 0
        let target = (absolute ? "http://cdn.example" : "") + path + query
        let isHTTP11 = random.next() % 5 != 0
        var lines = ["\(methodText) \(target) \(isHTTP11 ? "HTTP/1.1" : "HTTP/1.0")"]
        var fields: [String] = []
        var host: String?
        if isHTTP11 || random.next() % 2 == 0 {
            host = pick(["cdn.example", "cdn.example:8080", "127.0.0.1", "[::1]:443", ""], &random)
        }
        var range: String?
        if let host { fields.append("Host:" + ows(&random) + host + ows(&random)) }
        for _ in 0..<(random.next() % 6) {
            switch random.next() % 9 {
            case 0: fields.append("User-Agent:" + ows(&random) + "AppleCoreMedia/1.0.0.21A329 (iPhone; U)")
            case 1: fields.append("Accept:" + ows(&random) + "*/*")
            case 2 where range == nil:
                let value = pick(["bytes=0-99", "bytes=100-", "bytes=-500", "bytes=0-1,5-9"], &random)
                range = value
                fields.append(pick(["Range", "range", "RANGE"], &random) + ":" + ows(&random) + value + ows(&random))
            case 3:
                fields.append("Connection:" + ows(&random) + pick(["close", "keep-alive", "Upgrade, close", "TE"], &random))
            case 4: fields.append("If-None-Match:" + ows(&random) + "W/\"abc\", \"def\"")
            case 5: fields.append("If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT")
            case 6: fields.append("X-Request-Id:" + ows(&random) + "4f1c-\(random.next() % 100_000)")
            default: fields.append("Cache-Control: no-cache")
            }
        }
        // RFC 9112 §9.3: "close" ends the connection; HTTP/1.0 persists only when asked to
        let connection = fields.filter { $0.hasPrefix("Connection:") }
        let keepAlive =
            connection.contains { $0.contains("close") } ? false : isHTTP11 || connection.contains { $0.contains("keep-alive") }
        lines += fields
        let leading = random.next() % 20 == 0 ? "\r\n" : ""
        let head = leading + lines.joined(separator: "\r\n") + "\r\n\r\n"
        var bytes = Array(head.utf8)
        let headLength = bytes.count
        // what follows the head: nothing, a body, or the start of the next pipelined request
        bytes += Array(pick(["", "", "hello\n", "GET /next HTTP/1.1\r\nHost: a\r\n\r\n", "GET /n"], &random).utf8)
        return ValidRequest(
            bytes: bytes, method: method, path: path, host: host, range: range,
            keepAlive: keepAlive, headerCount: fields.count, headLength: headLength)
    }

    static func randomBytes(_ random: inout SeededGenerator) -> [UInt8] {
        (0..<(random.next() % 300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    static let pieces: [String] = [
        "GET", "HEAD", "OPTIONS", " ", " ", "/", "/a", "*", "?q", "%2e", "http://h", " HTTP/1.1", " HTTP/1.0",
        " HTTP/2.0", " HTTP/1.2", "\r\n", "\r\n", "\r\n", "\r", "\n", ":", ": ", "Host", "Content-Length",
        "Transfer-Encoding", "Connection", "close", "keep-alive", "0", "5", "+5", ",", "\t", "\u{0}", "\u{7F}",
        "x", "Range: bytes=0-1", "\r\n\r\n", "\u{80}",
    ]

    static func randomPieces(_ random: inout SeededGenerator) -> [UInt8] {
        var text = random.next() % 2 == 0 ? "GET / HTTP/1.1\r\n" : ""
        for _ in 0..<(random.next() % 40) { text += pick(pieces, &random) }
        return Array(text.utf8)
    }

    static let insertions: [UInt8] = [0x0D, 0x0A, 0x00, 0x20, 0x3A, 0x09, 0x2C, 0x7F, 0xFF]

    static func mutate(_ bytes: inout [UInt8], _ random: inout SeededGenerator) {
        guard !bytes.isEmpty else { return }
        let at = Int(random.next() % UInt64(bytes.count))
        switch random.next() % 9 {
        case 0: bytes[at] ^= UInt8(truncatingIfNeeded: 1 << (random.next() % 8))  // bit flip
        case 1: bytes[at] = UInt8(truncatingIfNeeded: random.next())  // byte replaced
        case 2, 3: bytes.insert(pick(insertions, &random), at: at)  // a CR, LF, NUL, SP or ':' somewhere
        case 4: bytes.remove(at: at)
        case 5: bytes.removeSubrange(at...)  // truncation
        case 6:  // another protocol version
            guard let v = firstIndex(of: Array(" HTTP/1.".utf8), in: bytes) else { return }
            let version = pick(["2.0", "1.2", "3.0", "0.9", "1.x", "11", "1.1 ", "1.10"], &random)
            bytes.replaceSubrange((v + 6)..<min(v + 9, bytes.count), with: Array(version.utf8))
        case 7:  // a line duplicated (Host, Content-Length, ...)
            let lines = lineRanges(bytes)
            guard let line = lines.dropFirst().randomElement(using: &random) ?? lines.first else { return }
            let copy = Array(bytes[line])
            let after = pick(lines, &random).upperBound
            bytes.insert(contentsOf: copy, at: after)
        default:  // a known troublemaker line inserted after a line break
            let lines = lineRanges(bytes)
            guard let line = lines.randomElement(using: &random) else { return }
            let extra = pick(
                ["Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n", "Host: b\r\n", " folded\r\n",
                 "Content-Length: 5, 5\r\n", "Bad Name: x\r\n", "\r\n", "X:\u{0}\r\n", "Connection: close\r\n"],
                &random)
            bytes.insert(contentsOf: Array(extra.utf8), at: line.upperBound)
        }
    }

    static func firstIndex(of needle: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        return (0...(bytes.count - needle.count)).first { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    /// The ranges of each CRLF-terminated line, CRLF included.
    static func lineRanges(_ bytes: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0
        for i in 1..<max(bytes.count, 1) where bytes[i] == 0x0A && bytes[i - 1] == 0x0D {
            ranges.append(start..<(i + 1))
            start = i + 1
        }
        return ranges
    }
}

/// Collects the first few failures, each with its case number and input, instead of recording
/// thousands of issues for one bug.
struct FailureReport {
    private(set) var messages: [String] = []
    var isFull: Bool { messages.count >= 10 }

    mutating func require(_ condition: Bool, _ index: Int, _ bytes: [UInt8], _ what: @autoclosure () -> String) {
        guard !condition, !isFull else { return }
        messages.append("case \(index): \(what()) for input \(Self.escape(bytes))")
    }

    func flush() {
        for message in messages { Issue.record(Comment(rawValue: message)) }
    }

    static func escape(_ bytes: [UInt8]) -> String {
        var text = "\""
        for b in bytes.prefix(400) {
            switch b {
            case 0x0D: text += "\\r"
            case 0x0A: text += "\\n"
            case 0x09: text += "\\t"
            case 0x22: text += "\\\""
            case 0x5C: text += "\\\\"
            case 0x20..<0x7F: text.unicodeScalars.append(Unicode.Scalar(b))
            default: text += "\\u{\(String(b, radix: 16))}"
            }
        }
        return text + (bytes.count > 400 ? "…\" (\(bytes.count) bytes)" : "\"")
    }
}
