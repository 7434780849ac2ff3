import MarqueeTestSupport
import Testing

@testable import MarqueeTokens

func rewritten(_ document: String, _ kind: ManifestRewriter.Kind, _ placement: URLToken.Placement, token: String = "v1.P.M", host: String = "cdn.example:8080")
    -> (String, Int)
{
    var document = document
    var token = token
    var host = host
    return document.withUTF8 { input in
        token.withUTF8 { t in
            host.withUTF8 { h in
                let rewriter = ManifestRewriter(placement: placement, token: UnsafeRawBufferPointer(t), host: UnsafeRawBufferPointer(h))
                let measured = rewriter.rewrite(UnsafeRawBufferPointer(input), kind: kind, into: nil)!
                let out = UnsafeMutableRawBufferPointer.allocate(byteCount: measured.length, alignment: 1)
                defer { out.deallocate() }
                let outcome = rewriter.rewrite(UnsafeRawBufferPointer(input), kind: kind, into: out)!
                #expect(outcome == measured)
                if measured.length > 0 {
                    let small = UnsafeMutableRawBufferPointer.allocate(byteCount: measured.length - 1, alignment: 1)
                    defer { small.deallocate() }
                    #expect(rewriter.rewrite(UnsafeRawBufferPointer(input), kind: kind, into: small) == nil)
                }
                return (String(decoding: UnsafeRawBufferPointer(out), as: UTF8.self), outcome.changes)
            }
        }
    }
}

@Suite struct HLSRewriting {
    let master = """
        #EXTM3U
        #EXT-X-VERSION:7
        #EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="skd://key-1",KEYFORMAT="com.apple.streamingkeydelivery"
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",DEFAULT=YES,URI="audio/en.m3u8"
        #EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="aud"
        v0/index.m3u8
        #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=80000,URI="v0/iframes.m3u8"
        #EXT-X-STREAM-INF:BANDWIDTH=2400000
        https://other.example/v1/index.m3u8
        #EXT-X-STREAM-INF:BANDWIDTH=4800000
        http://CDN.example:8080/titles/a/v2/index.m3u8?x=1

        """

    @Test func queryPlacementReachesEveryURI() {
        let (out, changes) = rewritten(master, .hls, .query)
        #expect(out.contains(#"URI="audio/en.m3u8?token=v1.P.M""#))
        #expect(out.contains("\nv0/index.m3u8?token=v1.P.M\n"))
        #expect(out.contains(#"URI="v0/iframes.m3u8?token=v1.P.M""#))
        #expect(out.contains("http://CDN.example:8080/titles/a/v2/index.m3u8?x=1&token=v1.P.M\n"))
        // Third parties and other schemes never see the token.
        #expect(out.contains("\nhttps://other.example/v1/index.m3u8\n"))
        #expect(out.contains(#"URI="skd://key-1""#))
        #expect(changes == 4)
        #expect(out.hasPrefix("#EXTM3U\n#EXT-X-VERSION:7\n"))
    }

    @Test func mediaPlaylistTags() {
        let media = """
            #EXTM3U\r
            #EXT-X-TARGETDURATION:4\r
            #EXT-X-MAP:URI="init.mp4",BYTERANGE="800@0"\r
            #EXT-X-KEY:METHOD=AES-128,URI="/keys/k1",IV=0x1234\r
            #EXTINF:4.000,\r
            seg-1.m4s\r
            #EXT-X-PART:DURATION=1.0,URI="part-2.0.m4s",INDEPENDENT=YES\r
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-2.1.m4s"\r
            #EXT-X-RENDITION-REPORT:URI="../v1/index.m3u8",LAST-MSN=2\r
              seg-2.m4s  \r
            #EXT-X-ENDLIST
            """
        let (query, changes) = rewritten(media, .hls, .query)
        for uri in ["init.mp4", "/keys/k1", "part-2.0.m4s", "part-2.1.m4s", "../v1/index.m3u8"] {
            #expect(query.contains("URI=\"\(uri)?token=v1.P.M\""), "\(uri)")
        }
        #expect(query.contains("\r\nseg-1.m4s?token=v1.P.M\r\n"))
        #expect(query.contains("\r\n  seg-2.m4s?token=v1.P.M  \r\n"))
        #expect(query.contains(#"BYTERANGE="800@0""#) && query.contains("IV=0x1234"))
        #expect(changes == 7)
        // Path placement: only the absolute path needs the prefix.
        let (path, pathChanges) = rewritten(media, .hls, .path)
        #expect(path.contains(#"URI="/t/v1.P.M/keys/k1""#))
        #expect(path.contains(#"URI="init.mp4""#) && path.contains("\r\nseg-1.m4s\r\n"))
        #expect(pathChanges == 1)
    }

    @Test func pathPlacementLeavesRelativePlaylistsUntouched() {
        let (out, changes) = rewritten(master, .hls, .path)
        #expect(changes == 1)
        #expect(out.contains("http://CDN.example:8080/t/v1.P.M/titles/a/v2/index.m3u8?x=1\n"))
    }

    @Test func alreadySignedURIsAreLeftAlone() {
        let (out, changes) = rewritten("#EXTM3U\na.m4s?token=v1.X.Y\n/t/v1.X.Y/b.m4s\n", .hls, .query)
        #expect(out == "#EXTM3U\na.m4s?token=v1.X.Y\n/t/v1.X.Y/b.m4s?token=v1.P.M\n")
        #expect(changes == 1)
    }
}

@Suite struct DASHRewriting {
    let mpd = """
        <?xml version="1.0" encoding="utf-8"?>
        <MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">
          <!-- <SegmentTemplate media="commented.m4s"/> -->
          <Location>http://cdn.example:8080/titles/a/manifest.mpd</Location>
          <Period>
            <BaseURL>video/</BaseURL>
            <AdaptationSet contentType="video">
              <SegmentTemplate timescale="1000" initialization="init-$RepresentationID$.m4s" media='chunk-$RepresentationID$-$Number%05d$.m4s?v=2' startNumber="1">
                <SegmentTimeline><S t="0" d="4000" r="3"/></SegmentTimeline>
              </SegmentTemplate>
              <Representation id="0" bandwidth="800000"/>
            </AdaptationSet>
            <AdaptationSet>
              <Representation id="1"><BaseURL>audio.mp4</BaseURL><SegmentBase indexRange="0-99"><Initialization range="0-50"/></SegmentBase></Representation>
              <Representation id="2"><SegmentList><Initialization sourceURL="a/init.mp4"/><SegmentURL media="a/1.m4s"/><SegmentURL media="https://elsewhere.example/2.m4s"/></SegmentList></Representation>
            </AdaptationSet>
          </Period>
        </MPD>
        """

    @Test func queryPlacement() {
        let (out, changes) = rewritten(mpd, .dash, .query)
        #expect(out.contains(#"initialization="init-$RepresentationID$.m4s?token=v1.P.M""#))
        #expect(out.contains("media='chunk-$RepresentationID$-$Number%05d$.m4s?v=2&amp;token=v1.P.M'"))
        #expect(out.contains("<Location>http://cdn.example:8080/titles/a/manifest.mpd?token=v1.P.M</Location>"))
        #expect(out.contains("<BaseURL>video/</BaseURL>"))
        #expect(out.contains("<BaseURL>audio.mp4?token=v1.P.M</BaseURL>"))
        #expect(out.contains(#"<Initialization sourceURL="a/init.mp4?token=v1.P.M"/>"#))
        #expect(out.contains(#"<SegmentURL media="a/1.m4s?token=v1.P.M"/>"#))
        #expect(out.contains(#"<SegmentURL media="https://elsewhere.example/2.m4s"/>"#))
        #expect(out.contains(#"<!-- <SegmentTemplate media="commented.m4s"/> -->"#))
        #expect(out.contains(#"<Initialization range="0-50"/>"#))
        #expect(changes == 6)
    }

    @Test func pathPlacement() {
        let (out, changes) = rewritten(mpd, .dash, .path)
        #expect(out.contains("<Location>http://cdn.example:8080/t/v1.P.M/titles/a/manifest.mpd</Location>"))
        #expect(out.contains("<BaseURL>video/</BaseURL>"))
        #expect(changes == 1)
        let absolute = rewritten("<MPD><BaseURL>/titles/a/1/</BaseURL></MPD>", .dash, .path)
        #expect(absolute.0 == "<MPD><BaseURL>/t/v1.P.M/titles/a/1/</BaseURL></MPD>")
    }

    @Test func hostileDocumentsNeverCrash() {
        var random = SeededGenerator(seed: 42)
        let pieces = ["<", ">", "/", "=", "\"", "'", "SegmentTemplate", "media", "BaseURL", "<!--", "-->", "<![CDATA[", "]]>", "#EXT-X-MAP:", "URI=", ",", "\n", "\r", "x", "?", "http://", "//"]
        for _ in 0..<3000 {
            let document = (0..<Int(random.next() % 40)).map { _ in pieces[Int(random.next() % UInt64(pieces.count))] }.joined()
            for kind in [ManifestRewriter.Kind.hls, .dash] {
                for placement in URLToken.Placement.allCases {
                    let (out, changes) = rewritten(document, kind, placement)
                    #expect(out.utf8.count >= document.utf8.count)
                    if changes == 0 { #expect(out == document) }
                }
            }
        }
    }
}
