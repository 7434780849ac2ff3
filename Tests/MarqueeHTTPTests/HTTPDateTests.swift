import MarqueeTestSupport
import MarqueeHTTP
import Testing

@Suite("HTTPDate")
struct HTTPDateTests {
    /// Known IMF-fixdates (checked against Python's email.utils.formatdate(usegmt=True)).
    static let known: [(Int64, String)] = [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (946_684_799, "Fri, 31 Dec 1999 23:59:59 GMT"),
        (946_684_800, "Sat, 01 Jan 2000 00:00:00 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (951_868_800, "Wed, 01 Mar 2000 00:00:00 GMT"),
        (978_307_200, "Mon, 01 Jan 2001 00:00:00 GMT"),
        (1_078_099_199, "Sun, 29 Feb 2004 23:59:59 GMT"),
        (1_234_567_890, "Fri, 13 Feb 2009 23:31:30 GMT"),
        (1_709_208_000, "Thu, 29 Feb 2024 12:00:00 GMT"),
        (2_147_483_647, "Tue, 19 Jan 2038 03:14:07 GMT"),
        (2_147_483_648, "Tue, 19 Jan 2038 03:14:08 GMT"),
        (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
        (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
        (-2_208_988_800, "Mon, 01 Jan 1900 00:00:00 GMT"),
        (-2_207_520_000, "Thu, 18 Jan 1900 00:00:00 GMT"),
        (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
    ]

    private func parse(_ text: String) -> Int64? {
        withBytes(text) { HTTPDate.parse($0) }
    }

    @Test(arguments: known)
    func formatsKnownDates(epoch: Int64, text: String) {
        #expect(HTTPDate.string(epoch) == text)
        #expect(text.utf8.count == HTTPDate.length)
    }

    @Test(arguments: known)
    func parsesKnownDates(epoch: Int64, text: String) {
        #expect(parse(text) == epoch)
    }

    @Test func formatWritesExactly29BytesIntoTheCallersBuffer() {
        var buffer = [UInt8](repeating: 0xEE, count: 40)
        buffer.withUnsafeMutableBytes { HTTPDate.format(784_111_777, into: $0.baseAddress! + 3) }
        #expect(buffer[0..<3].allSatisfy { $0 == 0xEE })
        #expect(String(decoding: buffer[3..<32], as: UTF8.self) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(buffer[32...].allSatisfy { $0 == 0xEE })
    }

    @Test func allThreeFormsOfTheSameInstantAgree() {
        #expect(parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(parse("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
        #expect(parse("Sun Nov  6 08:49:37 1994") == 784_111_777)
        #expect(parse("Sun Nov 06 08:49:37 1994") == 784_111_777)
        #expect(parse("Thu Feb 29 12:00:00 2024") == 1_709_208_000)
        #expect(parse("Thursday, 29-Feb-24 12:00:00 GMT") == 1_709_208_000)
    }

    @Test func rfc850TwoDigitYearsPivotAt70() {
        #expect(parse("Thursday, 01-Jan-70 00:00:00 GMT") == 0)
        #expect(parse("Friday, 31-Dec-99 23:59:59 GMT") == 946_684_799)
        #expect(parse("Saturday, 01-Jan-00 00:00:00 GMT") == 946_684_800)
        #expect(parse("Wednesday, 31-Dec-69 00:00:00 GMT") == Self.epoch(2069, 12, 31))
    }

    @Test(arguments: [
        "", "GMT", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37 gmt",
        "Sun, 06 nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 19945 08:49:37 GMT", "Sun, 00 Nov 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT", "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun, 06 Nov 1994 08:49:37 GMTX",
        "Sun,06 Nov 1994 08:49:37 GMT", "Sun, 06  Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08-49-37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37", "Sunday, 06-Nov 94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 94", "Sun Nov  6 08:49:37 1994 GMT", "Sun Nov   6 08:49:37 1994", "Sun  Nov 6 08:49:37 1994",
        "1994-11-06T08:49:37Z", "784111777", "Sun, -6 Nov 1994 08:49:37 GMT",
    ])
    func malformedDatesAreRejected(text: String) {
        #expect(parse(text) == nil)
    }

    @Test func formatAndParseRoundTripAcrossTheYears() {
        var random = SeededGenerator(seed: 0x4854_5450_4441_5445)
        let earliest: Int64 = -2_208_988_800  // 1900-01-01
        let latest: Int64 = 253_402_300_799  // 9999-12-31 23:59:59
        var epochs = (0..<20_000).map { _ in Int64.random(in: earliest...latest, using: &random) }
        // every day boundary around the leap days 1900 (not leap), 2000 (leap), 2100 (not leap)
        for year in [1900, 1904, 1970, 2000, 2024, 2100, 2400] {
            let march1 = Self.epoch(year, 3, 1)
            epochs += [march1 - 86_400 * 2, march1 - 86_400, march1 - 1, march1, march1 + 1]
        }
        var failures = 0
        for epoch in epochs {
            let text = HTTPDate.string(epoch)
            if parse(text) != epoch {
                failures += 1
                if failures <= 5 { Issue.record("\(epoch) formats as \(text), which does not parse back") }
            }
        }
        #expect(failures == 0)
    }

    @Test func formatAgreesWithAYearByYearCalendarFrom1900To2200() {
        // A slow, obviously-correct calendar to check Hinnant's arithmetic against.
        var random = SeededGenerator(seed: 1994)
        let start = Self.epoch(1900, 1, 1)
        let end = Self.epoch(2200, 1, 1)
        var failures = 0
        for _ in 0..<3_000 {
            let epoch = Int64.random(in: start..<end, using: &random)
            let expected = Self.naiveIMFFixdate(epoch)
            let actual = HTTPDate.string(epoch)
            if actual != expected {
                failures += 1
                if failures <= 5 { Issue.record("\(epoch): \(actual), expected \(expected)") }
            }
        }
        #expect(failures == 0)
    }

    // MARK: - An independent calendar

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    private static let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]  // from 1970-01-01

    private static func isLeap(_ year: Int) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    private static func monthLengths(_ year: Int) -> [Int] {
        [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    }

    /// Epoch seconds of midnight UTC on a date, counted year by year.
    static func epoch(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
        var days = 0
        if year >= 1970 {
            for y in 1970..<year { days += isLeap(y) ? 366 : 365 }
        } else {
            for y in year..<1970 { days -= isLeap(y) ? 366 : 365 }
        }
        days += monthLengths(year)[0..<(month - 1)].reduce(0, +) + day - 1
        return Int64(days) * 86_400
    }

    private static func naiveIMFFixdate(_ epoch: Int64) -> String {
        var days = Int(epoch >= 0 ? epoch / 86_400 : (epoch - 86_399) / 86_400)
        let seconds = Int(epoch - Int64(days) * 86_400)
        let weekday = weekdays[((days % 7) + 7) % 7]
        var year = 1970
        while days < 0 {
            year -= 1
            days += isLeap(year) ? 366 : 365
        }
        while days >= (isLeap(year) ? 366 : 365) {
            days -= isLeap(year) ? 366 : 365
            year += 1
        }
        var month = 0
        for length in monthLengths(year) {
            if days < length { break }
            days -= length
            month += 1
        }
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(weekday), \(two(days + 1)) \(months[month]) \(year) \(two(seconds / 3600)):\(two(seconds / 60 % 60)):\(two(seconds % 60)) GMT"
    }

    @Test func datesThatDoNotExistAreRejected() {
        #expect(parse("Tue, 31 Feb 2026 10:00:00 GMT") == nil)
        #expect(parse("Thu, 31 Apr 2026 10:00:00 GMT") == nil)
        #expect(parse("Mon, 29 Feb 2027 10:00:00 GMT") == nil)
        #expect(parse("Sat, 29 Feb 2020 10:00:00 GMT") != nil)
        #expect(parse("Tue, 29 Feb 2000 10:00:00 GMT") != nil)
        #expect(parse("Thu, 29 Feb 2100 10:00:00 GMT") == nil)
    }
}
