import MarqueeHTTP
import Testing

@Suite("RequestPath")
struct RequestPathTests {
    enum Decoded: Equatable {
        case path(String)
        case refused(HTTPStatus)
    }

    /// Decodes `raw` into a buffer of exactly `maxLength + 1` bytes, checking the NUL terminator.
    private func decode(_ raw: String, maxLength: Int = 1024) -> Decoded {
        decode(bytes: Array(raw.utf8), maxLength: maxLength)
    }

    private func decode(bytes raw: [UInt8], maxLength: Int = 1024) -> Decoded {
        var out = [UInt8](repeating: 0xEE, count: maxLength + 1)
        let result = raw.withUnsafeBytes { raw in
            out.withUnsafeMutableBytes { RequestPath.decode(raw, into: $0, maxLength: maxLength) }
        }
        switch result {
        case .refused(let error): return .refused(error.status)
        case .relative(let length):
            #expect(length <= maxLength)
            #expect(out[length] == 0, "the decoded path is NUL-terminated for openat")
            #expect(!out[..<length].contains(0))
            return .path(String(decoding: out[..<length], as: UTF8.self))
        }
    }

    @Test(arguments: [
        ("/", ""), ("/index.m3u8", "index.m3u8"), ("/live/ch1/seg_42.m4s", "live/ch1/seg_42.m4s"),
        ("//a///b/", "a/b"), ("/a/", "a"), ("///", ""), ("/a//b", "a/b"),
        ("/a%20b.ts", "a b.ts"), ("/%41%62%63", "Abc"), ("/caf%C3%A9.mp4", "café.mp4"), ("/a%25b", "a%b"),
        ("/a+b", "a+b"), ("/a..b", "a..b"), ("/a.", "a."), ("/a..", "a.."), ("/a...b", "a...b"),
        ("/%7e/x", "~/x"), ("/a/b.c/d", "a/b.c/d"),
    ])
    func decodesSafePaths(raw: String, expected: String) {
        #expect(decode(raw) == .path(expected))
    }

    @Test func doubleEncodingIsDecodedOnlyOnce() {
        // %252e%252e is the literal name "%2e%2e": a harmless file name, never a parent directory
        #expect(decode("/%252e%252e/etc/passwd") == .path("%2e%2e/etc/passwd"))
        #expect(decode("/a/%252e%252e/b") == .path("a/%2e%2e/b"))
        #expect(decode("/%252f") == .path("%2f"))
    }

    @Test(arguments: [
        "/../etc/passwd", "/..", "/../", "/a/..", "/a/../b", "/a/../../etc/passwd", "/.", "/./a", "/a/.", "/a/./b",
        "/a/%2e%2e/b", "/%2e%2e/", "/%2E%2E/", "/%2e%2E", "/.%2e/x", "/%2e./x", "/%2e", "/a/%2e/b", "//..//x",
    ])
    func dotSegmentsAreRefused(raw: String) {
        #expect(decode(raw) == .refused(.badRequest))
    }

    @Test(arguments: [
        "/a%2fb", "/a%2Fb", "/..%2fetc", "/%2e%2e%2fetc%2fpasswd", "/a%5cb", "/a%5Cb", "/..%5c..%5cwin.ini", "/a\\b",
        "/..\\x",
    ])
    func encodedSlashesAndBackslashesAreRefused(raw: String) {
        #expect(decode(raw) == .refused(.badRequest))
    }

    @Test(arguments: ["/a%00b", "/a%00", "/%00/x", "/a%0a", "/a%0D%0Ab", "/a%09b", "/a%1fb", "/a%7fb", "/a%7F"])
    func encodedControlBytesAreRefused(raw: String) {
        #expect(decode(raw) == .refused(.badRequest))
    }

    @Test(arguments: ["/a%zz", "/a%", "/a%2", "/%g0", "/%0g", "/a%%41", "/%-1", "/% 1"])
    func malformedPercentEncodingIsRefused(raw: String) {
        #expect(decode(raw) == .refused(.badRequest))
    }

    @Test(arguments: ["", "a/b", "%2fa", "\\a", "*", "http://x/a"])
    func aPathMustStartWithASlash(raw: String) {
        #expect(decode(raw) == .refused(.badRequest))
    }

    @Test(arguments: [
        "/.git/config", "/a/.git/config", "/.env", "/.well-known/x", "/a/.hidden", "/a/...", "/a/%2egit/config",
        "/.htaccess",
    ])
    func hiddenFilesAreNotFound(raw: String) {
        #expect(decode(raw) == .refused(.notFound))
    }

    @Test func overlongPathsGet414() {
        #expect(decode("/" + String(repeating: "a", count: 16), maxLength: 16) == .path(String(repeating: "a", count: 16)))
        #expect(decode("/" + String(repeating: "a", count: 17), maxLength: 16) == .refused(.uriTooLong))
        #expect(decode("/aaaaaaaa/bbbbbbb", maxLength: 16) == .path("aaaaaaaa/bbbbbbb"))
        #expect(decode("/aaaaaaaa/bbbbbbbb", maxLength: 16) == .refused(.uriTooLong))
        // the limit is on the decoded path: three encoded bytes count as one
        #expect(decode("/" + String(repeating: "%41", count: 16), maxLength: 16) == .path(String(repeating: "A", count: 16)))
        #expect(decode("/" + String(repeating: "a", count: 5000)) == .refused(.uriTooLong))
        // merged slashes do not count
        #expect(decode(String(repeating: "/", count: 100) + "abc", maxLength: 16) == .path("abc"))
    }

    @Test func anOutputBufferSmallerThanMaxLengthIsRespected() {
        var out = [UInt8](repeating: 0, count: 5)
        let result = Array("/abcdefgh".utf8).withUnsafeBytes { raw in
            out.withUnsafeMutableBytes { RequestPath.decode(raw, into: $0, maxLength: 1024) }
        }
        guard case .refused(let error) = result else {
            Issue.record("a path longer than the output buffer was accepted: \(result)")
            return
        }
        #expect(error.status == .uriTooLong)
    }

    @Test func rawHighBytesPassThrough() {
        // The parser refuses raw non-ASCII in a target, but decode itself keeps such bytes as they are.
        #expect(decode(bytes: [0x2F, 0xC3, 0xA9]) == .path("é"))
    }
}
