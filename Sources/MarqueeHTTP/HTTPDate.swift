/// HTTP dates (RFC 9110 §5.6.7): IMF-fixdate out; IMF-fixdate, RFC 850 and asctime in.
/// Works on epoch seconds and byte buffers, never Foundation.
public enum HTTPDate {
    /// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
    public static let length = 29

    private static let dayNames: StaticString = "ThuFriSatSunMonTueWed"  // 1970-01-01 was a Thursday
    private static let monthNames: StaticString = "JanFebMarAprMayJunJulAugSepOctNovDec"

    /// Writes the IMF-fixdate of `epochSeconds` into `out` (at least 29 bytes).
    public static func format(_ epochSeconds: Int64, into out: UnsafeMutableRawPointer) {
        let days = epochSeconds >= 0 ? epochSeconds / 86400 : (epochSeconds - 86399) / 86400
        let secondsOfDay = Int(epochSeconds - days * 86400)
        let (year, month, day) = civil(fromDays: days)
        let weekday = Int(((days % 7) + 7) % 7)
        let d = dayNames.utf8Start
        let m = monthNames.utf8Start
        let p = out.assumingMemoryBound(to: UInt8.self)
        p[0] = d[weekday * 3]; p[1] = d[weekday * 3 + 1]; p[2] = d[weekday * 3 + 2]
        p[3] = 0x2C; p[4] = 0x20
        twoDigits(day, p + 5)
        p[7] = 0x20
        p[8] = m[(month - 1) * 3]; p[9] = m[(month - 1) * 3 + 1]; p[10] = m[(month - 1) * 3 + 2]
        p[11] = 0x20
        twoDigits(year / 100 % 100, p + 12); twoDigits(year % 100, p + 14)
        p[16] = 0x20
        twoDigits(secondsOfDay / 3600, p + 17); p[19] = 0x3A
        twoDigits(secondsOfDay / 60 % 60, p + 20); p[22] = 0x3A
        twoDigits(secondsOfDay % 60, p + 23)
        p[25] = 0x20; p[26] = 0x47; p[27] = 0x4D; p[28] = 0x54
    }

    /// The IMF-fixdate of `epochSeconds` as a String (for tests and logs).
    public static func string(_ epochSeconds: Int64) -> String {
        String(unsafeUninitializedCapacity: length) { buffer in
            format(epochSeconds, into: UnsafeMutableRawPointer(buffer.baseAddress!))
            return length
        }
    }

    /// Parses any of the three HTTP date forms; nil when malformed.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        var c = Cursor(bytes: bytes)
        // skip the day name and its comma (or space, for asctime)
        while let b = c.peek, b != 0x2C && b != 0x20 { c.i += 1 }
        if c.peek == 0x2C {
            c.i += 1
            guard c.skip(0x20) else { return nil }
            guard let day = c.number(maxDigits: 2) else { return nil }
            if c.skip(0x20) {  // IMF-fixdate: 06 Nov 1994 08:49:37 GMT
                guard let month = c.month(), c.skip(0x20), let year = c.number(exactDigits: 4), c.skip(0x20),
                    let time = c.time(), c.skip(0x20), c.literal("GMT"), c.atEnd
                else { return nil }
                return epoch(year: year, month: month, day: day, seconds: time)
            }
            // RFC 850: 06-Nov-94 08:49:37 GMT
            guard c.skip(0x2D), let month = c.month(), c.skip(0x2D), let yy = c.number(exactDigits: 2), c.skip(0x20),
                let time = c.time(), c.skip(0x20), c.literal("GMT"), c.atEnd
            else { return nil }
            return epoch(year: yy < 70 ? 2000 + yy : 1900 + yy, month: month, day: day, seconds: time)
        }
        // asctime: Sun Nov  6 08:49:37 1994
        guard c.skip(0x20), let month = c.month(), c.skip(0x20) else { return nil }
        _ = c.skip(0x20)
        guard let day = c.number(maxDigits: 2), c.skip(0x20), let time = c.time(), c.skip(0x20),
            let year = c.number(exactDigits: 4), c.atEnd
        else { return nil }
        return epoch(year: year, month: month, day: day, seconds: time)
    }

    private static func epoch(year: Int, month: Int, day: Int, seconds: Int) -> Int64? {
        // A date that does not exist (31 Feb) is malformed, not silently moved to March.
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthLength =
            switch month {
            case 2: leap ? 29 : 28
            case 4, 6, 9, 11: 30
            default: 31
            }
        guard (1...monthLength).contains(day) else { return nil }
        return days(fromCivil: year, month, day) * 86400 + Int64(seconds)
    }

    @inline(__always) private static func twoDigits(_ v: Int, _ p: UnsafeMutablePointer<UInt8>) {
        p[0] = UInt8(truncatingIfNeeded: 0x30 + v / 10)
        p[1] = UInt8(truncatingIfNeeded: 0x30 + v % 10)
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func days(fromCivil y0: Int, _ m: Int, _ d: Int) -> Int64 {
        let y = Int64(m <= 2 ? y0 - 1 : y0)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64((m + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(d) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civil(fromDays z0: Int64) -> (Int, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = Int(doy - (153 * mp + 2) / 5 + 1)
        let m = Int(mp < 10 ? mp + 3 : mp - 9)
        let y = Int(yoe + era * 400) + (m <= 2 ? 1 : 0)
        return (y, m, d)
    }

    private struct Cursor {
        let bytes: UnsafeRawBufferPointer
        var i = 0
        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }
        var atEnd: Bool { i == bytes.count }

        mutating func skip(_ b: UInt8) -> Bool {
            guard peek == b else { return false }
            i += 1
            return true
        }

        mutating func literal(_ s: StaticString) -> Bool {
            let n = s.utf8CodeUnitCount
            guard i + n <= bytes.count else { return false }
            for k in 0..<n where bytes[i + k] != s.utf8Start[k] { return false }
            i += n
            return true
        }

        mutating func number(maxDigits: Int) -> Int? {
            var value = 0
            var digits = 0
            while let b = peek, b >= 0x30 && b <= 0x39, digits < maxDigits {
                value = value * 10 + Int(b - 0x30)
                digits += 1
                i += 1
            }
            return digits == 0 ? nil : value
        }

        mutating func number(exactDigits: Int) -> Int? {
            let start = i
            guard let v = number(maxDigits: exactDigits), i - start == exactDigits else { return nil }
            return v
        }

        mutating func month() -> Int? {
            guard i + 3 <= bytes.count else { return nil }
            let names = HTTPDate.monthNames.utf8Start
            for m in 0..<12 where bytes[i] == names[m * 3] && bytes[i + 1] == names[m * 3 + 1] && bytes[i + 2] == names[m * 3 + 2] {
                i += 3
                return m + 1
            }
            return nil
        }

        mutating func time() -> Int? {
            guard let h = number(exactDigits: 2), h < 24, skip(0x3A), let m = number(exactDigits: 2), m < 60, skip(0x3A),
                let s = number(exactDigits: 2), s < 61
            else { return nil }
            return h * 3600 + m * 60 + s
        }
    }
}
