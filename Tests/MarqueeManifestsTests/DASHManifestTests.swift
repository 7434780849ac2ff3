import Testing

@testable import MarqueeManifests
import MarqueeTestSupport

/// DASH manifests as players and meters read them: each representation's bandwidth, type, init
/// segment and segments with their media time, however the manifest addresses them.
@Suite("Manifests: DASH")
struct DASHManifestTests {
    /// What ffmpeg's dash muxer writes (and our packager keeps): a template with a timeline.
    static let packaged = """
        <?xml version="1.0" encoding="utf-8"?>
        <MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" mediaPresentationDuration="PT5.0S">
          <Period id="0" start="PT0.0S">
            <AdaptationSet id="0" contentType="video" segmentAlignment="true">
              <Representation id="0" mimeType="video/mp4" codecs="avc1.64001f" bandwidth="2500000" width="1280" height="720">
                <SegmentTemplate timescale="12800" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
                  <SegmentTimeline><S t="0" d="25600" r="1" /><S d="12800" /></SegmentTimeline>
                </SegmentTemplate>
              </Representation>
              <Representation id="1" mimeType="video/mp4" bandwidth="800000" width="640" height="360">
                <SegmentTemplate timescale="12800" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
                  <SegmentTimeline><S t="0" d="25600" r="1" /><S d="12800" /></SegmentTimeline>
                </SegmentTemplate>
              </Representation>
            </AdaptationSet>
            <AdaptationSet id="1" contentType="audio">
              <Representation id="2" mimeType="audio/mp4" bandwidth="128000">
                <SegmentTemplate timescale="48000" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" duration="96000" />
              </Representation>
            </AdaptationSet>
          </Period>
        </MPD>
        """

    @Test("A packaged manifest: types, bandwidths, init segments, numbered segments and their media time")
    func packaged() throws {
        let manifest = DASHManifest(Self.packaged)
        #expect(manifest.isManifest)
        let all = try manifest.representations(segmentLimit: 100)
        #expect(all.map(\.id) == ["0", "1", "2"])
        #expect(all.map(\.contentType) == ["video", "video", "audio"])
        #expect(all.map(\.bandwidth) == [2_500_000, 800_000, 128_000])
        #expect(all[0].initialization == "init-stream0.m4s")
        #expect(all[0].segments.map(\.path) == ["chunk-stream0-00001.m4s", "chunk-stream0-00002.m4s", "chunk-stream0-00003.m4s"])
        #expect(all[0].segments.map(\.start) == [0, 2_000_000, 4_000_000] && all[0].segments.map(\.end) == [2_000_000, 4_000_000, 5_000_000])
        // A fixed duration: segments until the period (the presentation) ends, the last one short.
        #expect(all[2].segments.map(\.path) == ["chunk-stream2-00001.m4s", "chunk-stream2-00002.m4s", "chunk-stream2-00003.m4s"])
        #expect(all[2].segments.last?.end == 5_000_000)
    }

    @Test("BaseURLs join down the tree; an absolute one replaces what is above it and says so")
    func baseURLs() throws {
        let text = """
            <MPD mediaPresentationDuration="PT4S"><BaseURL>titles/x/</BaseURL><Period>
            <AdaptationSet mimeType="video/mp4"><BaseURL>video/</BaseURL>
            <Representation id="a" bandwidth="1"><SegmentTemplate media="$RepresentationID$-$Number$.m4s" duration="2" /></Representation>
            <Representation id="b" bandwidth="2"><BaseURL>https://cdn.example/b/</BaseURL><SegmentTemplate media="$Number$.m4s" duration="2" /></Representation>
            </AdaptationSet></Period></MPD>
            """
        let all = try DASHManifest(text).representations(segmentLimit: 10)
        #expect(all[0].base == "titles/x/video/" && !all[0].baseIsAbsolute && all[0].contentType == "video")
        #expect(all[0].segments.map(\.path) == ["a-1.m4s", "a-2.m4s"])
        #expect(all[1].base == "https://cdn.example/b/" && all[1].baseIsAbsolute)
    }

    @Test("SegmentList: its Initialization, explicit URLs and byte ranges")
    func segmentList() throws {
        let text = """
            <MPD mediaPresentationDuration="PT6S"><Period><AdaptationSet contentType="video"><Representation id="v" bandwidth="500000">
            <SegmentList timescale="1000" duration="2000"><Initialization sourceURL="all.mp4" />
            <SegmentURL media="all.mp4" mediaRange="800-1799" /><SegmentURL media="all.mp4" mediaRange="1800-2999" /></SegmentList>
            </Representation></AdaptationSet></Period></MPD>
            """
        let all = try DASHManifest(text).representations(segmentLimit: 10)
        #expect(all[0].initialization == "all.mp4")
        #expect(all[0].segments == [
            .init(path: "all.mp4", start: 0, end: 2_000_000, bytes: 800..<1800), .init(path: "all.mp4", start: 2_000_000, end: 4_000_000, bytes: 1800..<3000),
        ])
    }

    @Test("More segments than the limit is refused, saying so; random bytes never trap")
    func hostile() {
        let tooMany = "<MPD mediaPresentationDuration=\"PT1H\"><Period><AdaptationSet><Representation id=\"x\"><SegmentTemplate media=\"$Number$\" duration=\"1\"/></Representation></AdaptationSet></Period></MPD>"
        #expect(throws: DASHManifest.Failure.self) { try DASHManifest(tooMany).representations(segmentLimit: 100) }
        #expect(!DASHManifest("#EXTM3U\n").isManifest && !DASHManifest("").isManifest)
        var generator = SeededGenerator(seed: 5)
        let alphabet = Array("<>/=\"' MPDPeriodAdaptationSetRepresentationSegmentTemplateTimelineListURLBaseS d r t $Number%0 duration media initialization 0123456789.-PTHMS")
        for _ in 0..<500 {
            let length = Int.random(in: 0..<800, using: &generator)
            let text = "<MPD mediaPresentationDuration=\"PT9S\">" + String((0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
            if let all = try? DASHManifest(text).representations(segmentLimit: 10_000) {
                #expect(all.allSatisfy { $0.segments.allSatisfy { $0.end >= $0.start } })
            }
        }
    }
}
