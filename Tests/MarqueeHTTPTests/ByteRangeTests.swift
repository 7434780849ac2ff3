import MarqueeHTTP
import Testing

@Suite("ByteRange")
struct ByteRangeTests {
    private func evaluate(_ header: String, length: Int64) -> ByteRange {
        withBytes(header) { ByteRange.evaluate($0, length: length) }
    }

    @Test(arguments: [
        ("bytes=0-99", Int64(1000), ByteRange.partial(first: 0, last: 99)),
        ("bytes=0-0", 1000, .partial(first: 0, last: 0)),
        ("bytes=999-999", 1000, .partial(first: 999, last: 999)),
        ("bytes=100-", 1000, .partial(first: 100, last: 999)),
        ("bytes=0-", 1000, .partial(first: 0, last: 999)),
        ("bytes=-500", 1000, .partial(first: 500, last: 999)),
        ("bytes=-1", 1000, .partial(first: 999, last: 999)),
        ("bytes=-1000", 1000, .partial(first: 0, last: 999)),
        ("bytes=0-1048575", 4_000_000, .partial(first: 0, last: 1_048_575)),
        ("Bytes=0-9", 100, .partial(first: 0, last: 9)),
        ("BYTES=0-9", 100, .partial(first: 0, last: 9)),
        ("bytes= 0-9", 100, .partial(first: 0, last: 9)),
        ("bytes=0-9  ", 100, .partial(first: 0, last: 9)),
        ("bytes=007-008", 100, .partial(first: 7, last: 8)),
    ])
    func satisfiableRanges(header: String, length: Int64, expected: ByteRange) {
        #expect(evaluate(header, length: length) == expected)
    }

    @Test func aLastPositionPastTheEndIsClampedToTheLastByte() {
        #expect(evaluate("bytes=0-99", length: 50) == .partial(first: 0, last: 49))
        #expect(evaluate("bytes=10-999999999999", length: 50) == .partial(first: 10, last: 49))
    }

    @Test func aSuffixLongerThanTheFileIsTheWholeFileAsA206() {
        #expect(evaluate("bytes=-500", length: 100) == .partial(first: 0, last: 99))
        #expect(evaluate("bytes=-999999999999999999", length: 100) == .partial(first: 0, last: 99))
    }

    @Test(arguments: [
        ("bytes=1000-", Int64(1000)), ("bytes=1000-1999", 1000), ("bytes=5000-6000", 1000), ("bytes=-0", 1000),
        ("bytes=0-", 0), ("bytes=0-0", 0), ("bytes=-5", 0), ("bytes=-0", 0),
        ("bytes=999999999999999999-", 1000),
    ])
    func unsatisfiableRanges(header: String, length: Int64) {
        #expect(evaluate(header, length: length) == .unsatisfiable)
    }

    @Test(arguments: [
        "bytes=9-5",  // last < first: an invalid range-spec, so the header is ignored
        "bytes=0-1,5-9", "bytes=0-1, 5-9", "bytes=-5,0-1", "bytes=0-0,-1",  // several ranges
        "bytes=", "bytes", "bytes=-", "bytes=a-b", "bytes=1-b", "bytes=a-1", "bytes=1-2-3", "bytes=1", "bytes=1 -2",
        "bytes=1- 2", "bytes=+1-2", "bytes=0x10-", "bytes=0-9;x", "bytes=0-9\t", "items=0-9", "bytes 0-9", "bytes:0-9",
        "bytes==0-9", "=0-9", "", "bytes=1000000000000000000-", "bytes=0-1000000000000000000",
        "bytes=-1000000000000000000",
    ])
    func unusableHeadersMeanTheWholeRepresentation(header: String) {
        #expect(evaluate(header, length: 1000) == .whole)
    }
}
