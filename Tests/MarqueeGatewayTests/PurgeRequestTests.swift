import Testing

@testable import MarqueeGateway

@Suite("Purge requests: paths and prefixes as cache keys")
struct PurgeRequestTests {
    static func key(_ request: PurgeRequest) -> String? { try? request.normalised().get() }

    @Test("a leading slash is dropped; a folder prefix keeps its slash; / names everything")
    func normalised() {
        #expect(Self.key(.path("/titles/t/v1/seg_001.m4s")) == "titles/t/v1/seg_001.m4s")
        #expect(Self.key(.path("titles/t/v1/master.m3u8")) == "titles/t/v1/master.m3u8")
        #expect(Self.key(.prefix("/titles/t/")) == "titles/t/")
        #expect(Self.key(.prefix("/titles/t")) == "titles/t")
        #expect(Self.key(.prefix("/")) == "")
    }

    @Test("nothing that could not name a cached object", arguments: [
        PurgeRequest.path(""), .path("/"), .path("/titles/../etc/passwd"), .path("/a//b"), .path("/a\\b"),
        .prefix(""), .prefix("/titles/../"), .prefix("//"), .prefix("/a\u{01}/"),
    ])
    func refused(_ request: PurgeRequest) {
        #expect(Self.key(request) == nil, "\(request)")
    }
}
