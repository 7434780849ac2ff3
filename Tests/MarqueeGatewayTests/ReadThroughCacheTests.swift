import Testing

@testable import MarqueeGateway

@Suite("Read-through cache: keys")
struct ReadThroughCacheTests {
    @Test("Keys that could leave the cache folder are refused")
    func keys() {
        func valid(_ text: String) -> Bool {
            var text = text
            return text.withUTF8 { ReadThroughCache.isValidKey(UnsafeRawBufferPointer($0)) }
        }
        #expect(valid("titles/a/v1/master.m3u8"))
        #expect(valid("a..b/.hidden/x"))
        for bad in ["", "../x", "a/../b", "a/./b", "a//b", "/a", "a/", "a\\b", "a\u{01}b", ".", ".."] {
            #expect(!valid(bad), "\(bad.debugDescription)")
        }
    }
}
