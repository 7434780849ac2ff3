/// The text a session's coverage is stored as, written and read without Foundation's JSON coders
/// (those took a tenth of the meter's time, the session rows being written in every batch):
///
///     c1:0-6000000,12000000-20000000;24:video/720p/seg-00010.m4s@0=0-1000,2000-3000
///
/// `c1:`, then the covered intervals (`start-end`, microseconds, comma-separated), then for each
/// segment received in pieces `;`, the key's length in UTF-8 bytes, `:`, the key, `=` and its
/// byte ranges. The length prefix lets a key hold any character. Rows written before this
/// format hold JSON (`{"intervals":...}`) and are still read.
extension SessionCoverage {
    static let textPrefix = "c1:"

    /// The stored form (see the type's comment).
    public var text: String {
        var out: [UInt8] = []
        out.reserveCapacity(8 + intervals.count * 20 + partial.count * 64)
        out.append(contentsOf: Self.textPrefix.utf8)
        for (index, interval) in intervals.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            Self.append(interval.start, to: &out)
            out.append(UInt8(ascii: "-"))
            Self.append(interval.end, to: &out)
        }
        for segment in partial {
            out.append(UInt8(ascii: ";"))
            Self.append(Int64(segment.key.utf8.count), to: &out)
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: segment.key.utf8)
            out.append(UInt8(ascii: "="))
            for (index, range) in segment.received.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.append(range.lowerBound, to: &out)
                out.append(UInt8(ascii: "-"))
                Self.append(range.upperBound, to: &out)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Reads the stored form, or the JSON rows written before it (`decodeJSON`).
    public init(text: String, decodeJSON: (String) throws -> SessionCoverage) throws {
        if text.utf8.first == UInt8(ascii: "{") {
            self = try decodeJSON(text)
            return
        }
        var reader = CoverageTextReader(Array(text.utf8))
        guard reader.skip(Self.textPrefix) else { throw CoverageTextError(text: text, problem: "does not start with \(Self.textPrefix)") }
        self.init()
        var intervals: [MediaInterval] = []
        while let c = reader.peek, c != UInt8(ascii: ";") {
            if !intervals.isEmpty { try reader.expect(",", in: text) }
            let start = try reader.number(in: text)
            try reader.expect("-", in: text)
            let end = try reader.number(in: text)
            guard start < end, end <= UInt64(Int64.max), start >= UInt64(intervals.last?.end ?? 0) else { throw CoverageTextError(text: text, problem: "intervals out of order") }
            intervals.append(MediaInterval(start: Int64(start), end: Int64(end)))
        }
        var partial: [PartialSegment] = []
        while reader.peek != nil {
            try reader.expect(";", in: text)
            let length = try reader.number(in: text)
            try reader.expect(":", in: text)
            guard let key = reader.take(Int(length)) else { throw CoverageTextError(text: text, problem: "a key runs past the end") }
            try reader.expect("=", in: text)
            var received: [Range<UInt64>] = []
            while let c = reader.peek, c != UInt8(ascii: ";") {
                if !received.isEmpty { try reader.expect(",", in: text) }
                let lower = try reader.number(in: text)
                try reader.expect("-", in: text)
                let upper = try reader.number(in: text)
                guard lower <= upper else { throw CoverageTextError(text: text, problem: "a byte range ends before it starts") }
                received.append(lower..<upper)
            }
            partial.append(PartialSegment(key: key, received: received))
        }
        self.init(intervals: intervals, partial: partial)
    }

    /// Decimal digits of `value`, written backwards and then turned around in place.
    private static func append<N: BinaryInteger>(_ value: N, to out: inout [UInt8]) {
        var rest = UInt64(clamping: value)
        let first = out.count
        repeat {
            out.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        out[first...].reverse()
    }
}

/// A stored coverage that cannot be read: the row is damaged.
public struct CoverageTextError: Error, CustomStringConvertible {
    public let text: String
    public let problem: String
    public var description: String { "stored session coverage is damaged (\(problem)): \(text.prefix(80))" }
}

private struct CoverageTextReader {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skip(_ literal: String) -> Bool {
        let expected = Array(literal.utf8)
        guard bytes.count - index >= expected.count, Array(bytes[index..<index + expected.count]) == expected else { return false }
        index += expected.count
        return true
    }

    mutating func expect(_ literal: Unicode.Scalar, in text: String) throws {
        guard peek == UInt8(ascii: literal) else { throw CoverageTextError(text: text, problem: "expected \"\(literal)\" at byte \(index)") }
        index += 1
    }

    mutating func number(in text: String) throws -> UInt64 {
        var value: UInt64 = 0
        var digits = 0
        while let c = peek, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { throw CoverageTextError(text: text, problem: "a number is too large") }
            value = sum
            digits += 1
            index += 1
        }
        guard digits > 0 else { throw CoverageTextError(text: text, problem: "expected a number at byte \(index)") }
        return value
    }

    mutating func take(_ count: Int) -> String? {
        guard count >= 0, bytes.count - index >= count else { return nil }
        defer { index += count }
        return String(decoding: bytes[index..<index + count], as: UTF8.self)
    }
}
