import MarqueeHTTP
import MarqueeTestSupport
import Testing

@Suite("Cache-Control (a shared cache's reading)")
struct CacheControlTests {
    static func parse(_ fields: String...) -> CacheControl {
        var control = CacheControl()
        for field in fields { Array(field.utf8).withUnsafeBytes { control.add($0) } }
        return control
    }

    @Test("directives, in any case, spacing and order, across several fields")
    func directives() {
        let c = Self.parse("public, MAX-AGE=60 ,s-maxage=\"120\"", "stale-while-revalidate=30,stale-if-error=600, immutable")
        #expect(c.maxAge == 60 && c.sharedMaxAge == 120 && c.staleWhileRevalidate == 30 && c.staleIfError == 600 && c.immutable)
        #expect(c.lifetime == 120, "s-maxage wins for a shared cache")
        #expect(c.isStorable && !c.noCache && !c.mustRevalidate)
        let strict = Self.parse("no-cache=\"Set-Cookie, X-A\", proxy-revalidate, max-age=5")
        #expect(strict.noCache && strict.mustRevalidate && strict.lifetime == 0)
        #expect(!Self.parse("private").isStorable && !Self.parse("no-store").isStorable)
        #expect(Self.parse("").lifetime == nil && Self.parse("public").lifetime == nil)
    }

    @Test("durations that are not non-negative integers count as 0; huge ones are cut to 2^31")
    func durations() {
        #expect(Self.parse("max-age=abc").maxAge == 0)
        #expect(Self.parse("max-age=-5").maxAge == 0)
        #expect(Self.parse("max-age=").maxAge == 0)
        #expect(Self.parse("max-age").maxAge == 0)
        #expect(Self.parse("max-age=1.5").maxAge == 0)
        #expect(Self.parse("max-age=99999999999999999999999999").maxAge == CacheControl.maxSeconds)
    }

    @Test("hostile values never crash and never give a negative or oversized duration", arguments: 0..<4)
    func hostile(seed: UInt64) {
        var random = SeededGenerator(seed: 0xCAC4E + seed)
        let alphabet = Array("max-age=s-maxage,stale-if-error=\"\\ ;\t0123456789-abcdefghijklmnopqrstuvwxyz=,\"\u{00}\u{ff}".utf8)
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...120, using: &random)).map { _ in alphabet.randomElement(using: &random)! }
            var control = CacheControl()
            bytes.withUnsafeBytes { control.add($0) }
            for value in [control.maxAge, control.sharedMaxAge, control.staleIfError, control.staleWhileRevalidate].compactMap({ $0 }) {
                #expect(value >= 0 && value <= CacheControl.maxSeconds, "\(bytes)")
            }
        }
    }
}
