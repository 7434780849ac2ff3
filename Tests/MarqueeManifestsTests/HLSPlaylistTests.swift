import Testing

@testable import MarqueeManifests
import MarqueeTestSupport

@Suite("Manifests: HLS playlists")
struct HLSPlaylistTests {
    static let master = """
        #EXTM3U\r
        #EXT-X-VERSION:7\r
        #EXT-X-INDEPENDENT-SEGMENTS\r
        #EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2000000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720\r
        720p/index.m3u8\r
        #EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.4d401e,mp4a.40.2",RESOLUTION=640x360\r
        /t/TOKEN/titles/demo/1/360p/index.m3u8\r

        """

    static let media = """
        #EXTM3U
        #EXT-X-VERSION:7
        #EXT-X-TARGETDURATION:4
        #EXT-X-PLAYLIST-TYPE:VOD
        #EXT-X-MAP:URI="init.mp4"
        #EXTINF:4.000,
        seg-1.m4s
        #EXTINF:4.004,
        seg-2.m4s
        #EXT-X-DISCONTINUITY
        #EXTINF:1.5
        seg-3.m4s?token=abc
        #EXT-X-ENDLIST
        """

    @Test("A master playlist's variants, lowest bandwidth first, whatever the attribute order and quoting")
    func masterPlaylist() throws {
        let parsed = try HLSPlaylist.parse(Self.master)
        #expect(parsed == .master([
            .init(bandwidth: 800_000, uri: "/t/TOKEN/titles/demo/1/360p/index.m3u8"), .init(bandwidth: 2_500_000, uri: "720p/index.m3u8"),
        ]))
        #expect(HLSPlaylist.attributeList(#"A=1,CODECS="x,y",B=two"#) == ["A": "1", "CODECS": "x,y", "B": "two"])
    }

    @Test("A media playlist's segments with their durations in ms, its init segment and its end")
    func mediaPlaylist() throws {
        guard case .media(let media) = try HLSPlaylist.parse(Self.media) else {
            Issue.record("not a media playlist")
            return
        }
        #expect(media.targetDurationMs == 4000 && media.initialization == "init.mp4" && media.ended)
        #expect(media.segments == [.init(durationMs: 4000, uri: "seg-1.m4s"), .init(durationMs: 4004, uri: "seg-2.m4s"), .init(durationMs: 1500, uri: "seg-3.m4s?token=abc")])
    }

    @Test("Each variant's audio: the default (else the first) rendition of its AUDIO group; none when the group's audio is muxed")
    func audioGroups() throws {
        let text = """
            #EXTM3U
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",DEFAULT=NO,URI="audio/en.m3u8"
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="French",DEFAULT=YES,URI="audio/fr.m3u8"
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="muxed",NAME="Main",DEFAULT=YES
            #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="en",URI="subs/en.m3u8"
            #EXT-X-STREAM-INF:BANDWIDTH=2000000,AUDIO="aac",SUBTITLES="subs"
            hi.m3u8
            #EXT-X-STREAM-INF:BANDWIDTH=500000,AUDIO="muxed"
            lo.m3u8
            #EXT-X-STREAM-INF:BANDWIDTH=900000
            mid.m3u8
            """
        #expect(try HLSPlaylist.parse(text) == .master([
            .init(bandwidth: 500_000, uri: "lo.m3u8"), .init(bandwidth: 900_000, uri: "mid.m3u8"), .init(bandwidth: 2_000_000, uri: "hi.m3u8", audio: "audio/fr.m3u8"),
        ]))
    }

    @Test("Byte ranges of one file: explicit offsets, offsets that follow on, and the init segment's")
    func byteRanges() throws {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"all.mp4\",BYTERANGE=\"720@0\"\n#EXTINF:2,\n#EXT-X-BYTERANGE:1000@720\nall.mp4\n#EXTINF:2,\n#EXT-X-BYTERANGE:500\nall.mp4\n#EXTINF:2,\nother.mp4\n"
        guard case .media(let media) = try HLSPlaylist.parse(text) else {
            Issue.record("not a media playlist")
            return
        }
        #expect(media.initialization == "all.mp4" && media.initializationBytes == 0..<720)
        #expect(media.segments.map(\.bytes) == [720..<1720, 1720..<2220, nil])
        for bad in ["#EXT-X-BYTERANGE:0@5", "#EXT-X-BYTERANGE:x", "#EXT-X-BYTERANGE:5@-1"] {
            #expect(throws: HLSPlaylist.Problem.self) { try HLSPlaylist.parse("#EXTM3U\n#EXTINF:2,\n\(bad)\na.mp4\n") }
        }
        // Without an offset, a range must follow one of the same file.
        #expect(throws: HLSPlaylist.Problem.self) { try HLSPlaylist.parse("#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:5\na.mp4\n") }
    }

    @Test("URIs resolve against the playlist's path; absolute paths and full URLs stay")
    func resolving() {
        #expect(HLSPlaylist.resolve("720p/index.m3u8", against: "/t/TOK/titles/demo/1/master.m3u8") == "/t/TOK/titles/demo/1/720p/index.m3u8")
        #expect(HLSPlaylist.resolve("seg-1.m4s", against: "/titles/demo/1/720p/index.m3u8?token=abc") == "/titles/demo/1/720p/seg-1.m4s")
        #expect(HLSPlaylist.resolve("/other/x.m4s", against: "/a/b.m3u8") == "/other/x.m4s")
        #expect(HLSPlaylist.resolve("http://cdn/x.m4s", against: "/a/b.m3u8") == "http://cdn/x.m4s")
    }

    @Test("What a load test must not guess at is refused, saying what is wrong")
    func refusals() {
        let cases: [(String, String)] = [
            ("<html>", "no #EXTM3U"),
            ("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\na.m3u8\n", "BANDWIDTH"),
            ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n", "no URI"),
            ("#EXTM3U\n#EXTINF:abc,\nseg.ts\n", "not a number"),
            ("#EXTM3U\nseg.ts\n", "without #EXTINF"),
            ("#EXTM3U\n#EXT-X-ENDLIST\n", "without segments"),
        ]
        for (text, expected) in cases {
            #expect(throws: HLSPlaylist.Problem.self) { try HLSPlaylist.parse(text) }
            do {
                _ = try HLSPlaylist.parse(text)
            } catch {
                #expect(error.description.contains(expected), "\(text.debugDescription): \(error.description)")
            }
        }
    }

    @Test("Hostile text never traps: it parses or is refused", arguments: 0..<4)
    func hostile(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let pieces = ["#EXTM3U\n", "#EXTINF:", "4.0,", "1e9,", "-1,", "\n", "\r\n", "seg.ts", "#EXT-X-STREAM-INF:", "BANDWIDTH=", "99999999999999999999", "\"", ",", "=",
                      "#EXT-X-MAP:URI=\"", "#EXT-X-ENDLIST", "é", "\u{0}", " ", "#EXT-X-TARGETDURATION:"]
        for _ in 0..<2000 {
            var text = Bool.random(using: &generator) ? "#EXTM3U\n" : ""
            for _ in 0..<Int.random(in: 0...30, using: &generator) { text += pieces.randomElement(using: &generator)! }
            switch Result(catching: { () throws(HLSPlaylist.Problem) -> HLSPlaylist.Parsed in try HLSPlaylist.parse(text) }) {
            case .success(.media(let media)): #expect(media.segments.allSatisfy { $0.durationMs >= 0 && !$0.uri.isEmpty })
            case .success(.master(let variants)): #expect(variants.allSatisfy { $0.bandwidth > 0 && !$0.uri.isEmpty })
            case .failure: break
            }
        }
    }
}
