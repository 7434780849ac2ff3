import Foundation

/// Identifiers for users, titles and the like: 26 characters of lowercase Crockford base32, a
/// 48-bit millisecond timestamp then 80 random bits (the ULID layout). They sort by creation time,
/// are safe in paths and file names (`titles/<id>/`), and never collide in practice.
public enum Identifier {
    static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

    public static func make(at date: Date = Date()) -> String {
        var generator = SystemRandomNumberGenerator()
        return make(milliseconds: UInt64(max(0, date.timeIntervalSince1970 * 1000)), using: &generator)
    }

    static func make(milliseconds: UInt64, using generator: inout some RandomNumberGenerator) -> String {
        var out = [UInt8](repeating: 0, count: 26)
        var time = milliseconds & 0xFFFF_FFFF_FFFF
        for i in stride(from: 9, through: 0, by: -1) {
            out[i] = alphabet[Int(time & 31)]
            time >>= 5
        }
        for i in 10..<26 { out[i] = alphabet[Int(generator.next() & 31)] }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `text` could be an identifier (so a malformed path parameter is a 404 without a query).
    public static func isValid(_ text: some StringProtocol) -> Bool {
        text.utf8.count == 26 && text.utf8.allSatisfy { alphabet.contains($0) }
    }
}

/// Milliseconds since 1970, the unit every timestamp column holds.
public func unixMilliseconds(_ date: Date = Date()) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

/// RFC 3339 with milliseconds, UTC, as the APIs write times: `2026-11-22T10:30:00.123Z`.
public func rfc3339(milliseconds: Int64) -> String {
    Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(Date(timeIntervalSince1970: Double(milliseconds) / 1000))
}

/// Reads an RFC 3339 time with or without fractional seconds; nil when it is not one.
public func parseRFC3339(_ text: String) -> Int64? {
    if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return unixMilliseconds(date) }
    if let date = try? Date.ISO8601FormatStyle().parse(text) { return unixMilliseconds(date) }
    return nil
}
