/// The directives of a response's `Cache-Control` that a shared cache acts on (RFC 9111 §5.2.2,
/// RFC 5861 for the stale extensions). Several fields merge, as a list split over lines does.
/// Unknown directives are ignored; a duration that is not a non-negative integer makes its
/// directive count as 0 (RFC 9111 §1.2.2: a cache treats an invalid freshness as stale).
public struct CacheControl: Equatable, Sendable {
    public var maxAge: Int64?
    public var sharedMaxAge: Int64?
    public var noStore = false
    public var noCache = false
    public var isPrivate = false
    /// `must-revalidate` or `proxy-revalidate`: once stale, never served without asking.
    public var mustRevalidate = false
    public var immutable = false
    public var staleWhileRevalidate: Int64?
    public var staleIfError: Int64?

    /// Durations above this are cut to it (RFC 9111 §1.2.2 suggests 2^31).
    public static let maxSeconds: Int64 = 1 << 31

    public init() {}

    /// Reads one field value, adding its directives to those seen so far.
    public mutating func add(_ value: UnsafeRawBufferPointer) {
        var i = 0
        let n = value.count
        while i < n {
            // One directive: name [= token | quoted-string], up to the next comma outside quotes.
            while i < n && (value[i] == 0x20 || value[i] == 0x09 || value[i] == 0x2C) { i += 1 }
            let nameStart = i
            while i < n && value[i] != 0x3D && value[i] != 0x2C && value[i] != 0x20 && value[i] != 0x09 { i += 1 }
            let name = UnsafeRawBufferPointer(rebasing: value[nameStart..<i])
            while i < n && (value[i] == 0x20 || value[i] == 0x09) { i += 1 }
            var argument: UnsafeRawBufferPointer?
            if i < n && value[i] == 0x3D {
                i += 1
                while i < n && (value[i] == 0x20 || value[i] == 0x09) { i += 1 }
                if i < n && value[i] == 0x22 {
                    i += 1
                    let start = i
                    while i < n && value[i] != 0x22 {
                        if value[i] == 0x5C { i += 1 }
                        i += 1
                    }
                    argument = UnsafeRawBufferPointer(rebasing: value[start..<min(i, n)])
                    if i < n { i += 1 }
                } else {
                    let start = i
                    while i < n && value[i] != 0x2C && value[i] != 0x20 && value[i] != 0x09 { i += 1 }
                    argument = UnsafeRawBufferPointer(rebasing: value[start..<i])
                }
            }
            while i < n && value[i] != 0x2C { i += 1 }
            apply(name, argument)
        }
    }

    private mutating func apply(_ name: UnsafeRawBufferPointer, _ argument: UnsafeRawBufferPointer?) {
        if name.isEmpty { return }
        switch name.count {
        case 7:
            if name.equalsLowercase("max-age") { maxAge = Self.seconds(argument) }
            if name.equalsLowercase("private") { isPrivate = true }
        case 8:
            if name.equalsLowercase("s-maxage") { sharedMaxAge = Self.seconds(argument) }
            if name.equalsLowercase("no-store") { noStore = true }
            if name.equalsLowercase("no-cache") { noCache = true }
        case 9:
            if name.equalsLowercase("immutable") { immutable = true }
        case 14:
            if name.equalsLowercase("stale-if-error") { staleIfError = Self.seconds(argument) }
        case 15:
            if name.equalsLowercase("must-revalidate") { mustRevalidate = true }
        case 16:
            if name.equalsLowercase("proxy-revalidate") { mustRevalidate = true }
        case 22:
            if name.equalsLowercase("stale-while-revalidate") { staleWhileRevalidate = Self.seconds(argument) }
        default:
            break
        }
    }

    /// delta-seconds: digits only; anything else counts as 0, a huge value as `maxSeconds`.
    public static func seconds(_ argument: UnsafeRawBufferPointer?) -> Int64 {
        guard let argument, !argument.isEmpty else { return 0 }
        var value: Int64 = 0
        for b in argument {
            guard b >= 0x30 && b <= 0x39 else { return 0 }
            value = min(maxSeconds, value * 10 + Int64(b - 0x30))
        }
        return value
    }

    /// Whether a shared cache may keep the response at all.
    public var isStorable: Bool { !noStore && !isPrivate }

    /// The freshness lifetime the response itself gives, in seconds (s-maxage first, then
    /// max-age); nil when it gives none (then `Expires`, then the cache's default, decide).
    public var lifetime: Int64? { noCache ? 0 : sharedMaxAge ?? maxAge }
}
