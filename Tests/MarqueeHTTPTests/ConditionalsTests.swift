import MarqueeHTTP
import Testing

@Suite("Conditionals")
struct ConditionalsTests {
    /// The representation every test asks about: strong ETag "v1", modified at 784111777.
    static let etag = "\"v1\""
    static let lastModified: Int64 = 784_111_777
    static let lastModifiedText = "Sun, 06 Nov 1994 08:49:37 GMT"
    static let earlier = "Sun, 06 Nov 1994 08:49:36 GMT"
    static let later = "Sun, 06 Nov 1994 08:49:38 GMT"

    /// Parses a request with `fields` and evaluates its conditionals against the representation.
    private func evaluate(_ fields: String..., method: String = "GET") -> Conditionals.Outcome? {
        let text = makeRequest(fields: ["Host: a"] + fields, method: method)
        return withBytes(text) { buffer -> Conditionals.Outcome? in
            guard case .parsed(let parsed) = receive(buffer) else {
                Issue.record("request did not parse: \(text.debugDescription)")
                return nil
            }
            return withBytes(Self.etag) {
                Conditionals.evaluate(parsed.head, in: buffer, etag: $0, lastModified: Self.lastModified)
            }
        }
    }

    @Test func noConditionalsProceed() {
        #expect(evaluate() == .proceed(honourRange: false))
        #expect(evaluate("Range: bytes=0-9") == .proceed(honourRange: true))
        #expect(evaluate("Range: bytes=0-9", method: "HEAD") == .proceed(honourRange: false), "Range applies to GET only")
    }

    // MARK: - If-Match (step 1)

    @Test(arguments: ["\"v1\"", "*", "\"v0\", \"v1\"", "\"v0\",\"v1\",\"v2\"", " \t\"v1\"", "\"x\", *"])
    func ifMatchThatMatchesProceeds(value: String) {
        #expect(evaluate("If-Match: \(value)") == .proceed(honourRange: false))
    }

    @Test(arguments: ["\"v2\"", "W/\"v1\"", "v1", "\"v1", "\"V1\"", "\"v1 \"", "", "W/v1", "\"v0\", W/\"v1\""])
    func ifMatchThatDoesNotMatchFails(value: String) {
        // If-Match uses the strong comparison: a weak tag never matches
        #expect(evaluate("If-Match: \(value)") == .preconditionFailed)
        #expect(evaluate("If-Match: \(value)", method: "PUT") == .preconditionFailed)
    }

    // MARK: - If-Unmodified-Since (step 2)

    @Test func ifUnmodifiedSince() {
        #expect(evaluate("If-Unmodified-Since: \(Self.lastModifiedText)") == .proceed(honourRange: false))
        #expect(evaluate("If-Unmodified-Since: \(Self.later)") == .proceed(honourRange: false))
        #expect(evaluate("If-Unmodified-Since: \(Self.earlier)") == .preconditionFailed)
        #expect(evaluate("If-Unmodified-Since: Saturday, 05-Nov-94 08:49:37 GMT") == .preconditionFailed)
        #expect(evaluate("If-Unmodified-Since: not a date") == .proceed(honourRange: false), "an invalid date is ignored")
    }

    @Test func ifUnmodifiedSinceIsIgnoredWhenIfMatchIsPresent() {
        #expect(evaluate("If-Match: \"v1\"", "If-Unmodified-Since: \(Self.earlier)") == .proceed(honourRange: false))
        #expect(evaluate("If-Match: \"v2\"", "If-Unmodified-Since: \(Self.later)") == .preconditionFailed)
    }

    // MARK: - If-None-Match (step 3)

    @Test(arguments: ["\"v1\"", "W/\"v1\"", "*", "\"a\", \"v1\"", "\"a\",W/\"v1\"", "\t\"a\" ,  \"v1\""])
    func ifNoneMatchThatMatchesIsNotModified(value: String) {
        // If-None-Match uses the weak comparison
        #expect(evaluate("If-None-Match: \(value)") == .notModified)
        #expect(evaluate("If-None-Match: \(value)", method: "HEAD") == .notModified)
    }

    @Test(arguments: ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
    func ifNoneMatchThatMatchesAnUnsafeMethodFails(method: String) {
        #expect(evaluate("If-None-Match: \"v1\"", method: method) == .preconditionFailed)
        #expect(evaluate("If-None-Match: *", method: method) == .preconditionFailed)
    }

    @Test(arguments: ["\"v2\"", "W/\"v2\"", "\"v1x\"", "v1", "\"v1", "", "\"a\", \"b\""])
    func ifNoneMatchThatDoesNotMatchProceeds(value: String) {
        #expect(evaluate("If-None-Match: \(value)") == .proceed(honourRange: false))
        #expect(evaluate("If-None-Match: \(value)", "Range: bytes=0-1") == .proceed(honourRange: true))
    }

    // MARK: - If-Modified-Since (step 4)

    @Test func ifModifiedSince() {
        #expect(evaluate("If-Modified-Since: \(Self.lastModifiedText)") == .notModified)
        #expect(evaluate("If-Modified-Since: \(Self.later)") == .notModified)
        #expect(evaluate("If-Modified-Since: \(Self.earlier)") == .proceed(honourRange: false))
        #expect(evaluate("If-Modified-Since: Sunday, 06-Nov-94 08:49:37 GMT") == .notModified)
        #expect(evaluate("If-Modified-Since: Sun Nov  6 08:49:37 1994") == .notModified)
        #expect(evaluate("If-Modified-Since: yesterday") == .proceed(honourRange: false), "an invalid date is ignored")
        #expect(evaluate("If-Modified-Since: \(Self.later)", method: "HEAD") == .notModified)
    }

    @Test func ifModifiedSinceOnlyAppliesToGETAndHEAD() {
        #expect(evaluate("If-Modified-Since: \(Self.later)", method: "POST") == .proceed(honourRange: false))
        #expect(evaluate("If-Modified-Since: \(Self.later)", method: "DELETE") == .proceed(honourRange: false))
    }

    @Test func ifModifiedSinceIsIgnoredWhenIfNoneMatchIsPresent() {
        #expect(evaluate("If-None-Match: \"v2\"", "If-Modified-Since: \(Self.later)") == .proceed(honourRange: false))
        #expect(evaluate("If-None-Match: \"v1\"", "If-Modified-Since: \(Self.earlier)") == .notModified)
    }

    // MARK: - Order of evaluation (RFC 9110 §13.2.2)

    @Test func preconditionsAreEvaluatedBeforeCacheValidators() {
        #expect(evaluate("If-Match: \"v2\"", "If-None-Match: \"v1\"") == .preconditionFailed)
        #expect(evaluate("If-Unmodified-Since: \(Self.earlier)", "If-None-Match: \"v1\"") == .preconditionFailed)
        #expect(evaluate("If-Match: \"v2\"", "If-Modified-Since: \(Self.later)") == .preconditionFailed)
        #expect(evaluate("If-Match: \"v1\"", "If-None-Match: \"v1\"") == .notModified)
        #expect(evaluate("If-None-Match: \"v1\"", "Range: bytes=0-1", "If-Range: \"v1\"") == .notModified)
    }

    // MARK: - If-Range (step 5)

    @Test func ifRangeWithTheCurrentStrongETagHonoursTheRange() {
        #expect(evaluate("Range: bytes=0-9", "If-Range: \"v1\"") == .proceed(honourRange: true))
    }

    @Test(arguments: ["\"v2\"", "W/\"v1\"", "\"v1\"x", "\"V1\"", "W/", "garbage", "\""])
    func ifRangeWithAnotherValidatorServesTheWholeRepresentation(value: String) {
        #expect(evaluate("Range: bytes=0-9", "If-Range: \(value)") == .proceed(honourRange: false))
    }

    @Test func ifRangeWithADate() {
        #expect(evaluate("Range: bytes=0-9", "If-Range: \(Self.lastModifiedText)") == .proceed(honourRange: true))
        #expect(evaluate("Range: bytes=0-9", "If-Range: \(Self.later)") == .proceed(honourRange: false))
        #expect(evaluate("Range: bytes=0-9", "If-Range: \(Self.earlier)") == .proceed(honourRange: false))
        #expect(evaluate("Range: bytes=0-9", "If-Range: Sunday, 06-Nov-94 08:49:37 GMT") == .proceed(honourRange: true))
    }

    @Test func ifRangeWithoutRangeChangesNothing() {
        #expect(evaluate("If-Range: \"v1\"") == .proceed(honourRange: false))
        #expect(evaluate("If-Range: \"v2\"") == .proceed(honourRange: false))
    }

    // MARK: - listMatches

    private func matches(_ list: String, weak: Bool) -> Bool {
        withBytes(list) { list in withBytes(Self.etag) { Conditionals.listMatches(list, etag: $0, weak: weak) } }
    }

    @Test func listMatchesComparesStronglyOrWeakly() {
        #expect(matches("\"v1\"", weak: false))
        #expect(matches("\"v1\"", weak: true))
        #expect(!matches("W/\"v1\"", weak: false))
        #expect(matches("W/\"v1\"", weak: true))
        #expect(matches("*", weak: false))
        #expect(!matches("", weak: true))
        #expect(!matches(" , ,", weak: true))
        #expect(!matches("\"v\"", weak: true))
        #expect(matches("\"a,b\", \"v1\"", weak: false), "a comma inside a tag does not split it")
        #expect(!matches("\"a\", v1, \"v1\"", weak: true), "a malformed member ends the list")
        #expect(!matches("w/\"v1\"", weak: true), "the weak prefix is case-sensitive")
    }
}
