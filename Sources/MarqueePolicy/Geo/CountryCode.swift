/// A two-letter ISO 3166-1 country code packed into 16 bits (first letter in the high byte,
/// uppercase ASCII), so rules and lookups compare codes as integers instead of strings.
/// The raw value 0 means "unknown": the database had no entry or no code for the address.
public struct CountryCode: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// `first << 8 | second` in uppercase ASCII; 0 when unknown.
    public let rawValue: UInt16

    /// No country: the database does not know the address (private ranges, unlisted networks).
    public static let unknown = CountryCode(uncheckedRawValue: 0)

    @inline(__always) init(uncheckedRawValue: UInt16) { rawValue = uncheckedRawValue }

    /// Parses a code such as `"FR"` or `"fr"`; nil unless the text is exactly two ASCII letters.
    public init?(_ text: String) {
        var text = text
        let code = text.withUTF8 { CountryCode(bytes: UnsafeRawBufferPointer($0)) }
        guard let code else { return nil }
        self = code
    }

    /// A code from raw bytes (a database string), without allocating; nil unless exactly two
    /// ASCII letters.
    @inlinable
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 2, let a = Self.upper(bytes[0]), let b = Self.upper(bytes[1]) else { return nil }
        rawValue = UInt16(a) << 8 | UInt16(b)
    }

    @inlinable @inline(__always)
    static func upper(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - 0x20
        default: nil
        }
    }

    /// Whether this is a real code rather than `unknown`.
    @inlinable public var isKnown: Bool { rawValue != 0 }

    /// The position of the code among the 26 × 26 letter pairs (AA = 0, ZZ = 675); nil when unknown.
    @inlinable var index: Int? {
        guard rawValue != 0 else { return nil }
        return Int((rawValue >> 8) - 0x41) * 26 + Int((rawValue & 0xFF) - 0x41)
    }

    /// The two letters, or `--` when unknown (MaxMind's own spelling of "no country").
    public var description: String {
        guard isKnown else { return "--" }
        return String(decoding: [UInt8(rawValue >> 8), UInt8(rawValue & 0xFF)], as: UTF8.self)
    }

    public static func < (lhs: CountryCode, rhs: CountryCode) -> Bool { lhs.rawValue < rhs.rawValue }
}
