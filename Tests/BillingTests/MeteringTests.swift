import Foundation
import MarqueeBilling
import MarqueeMetering
import MarqueeBus
import MarqueeTestSupport
import Testing

@Suite("Metering: package timelines and session coverage")
struct MeteringTests {
    // A package as `marquee package` writes it: one video rendition, one audio, shared by HLS and DASH.
    static let master = """
        #EXTM3U
        #EXT-X-VERSION:7
        #EXT-X-INDEPENDENT-SEGMENTS
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="media_1.m3u8"
        #EXT-X-STREAM-INF:BANDWIDTH=220573,CODECS="avc1.4d401e,mp4a.40.2",RESOLUTION=640x360,AUDIO="audio"
        media_0.m3u8
        #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1000,URI="iframes.m3u8"

        """

    static func mediaPlaylist(stream: Int, durations: [String]) -> String {
        var text = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init-stream\(stream).m4s\"\n"
        for (i, d) in durations.enumerated() { text += "#EXTINF:\(d),\nchunk-stream\(stream)-\(String(format: "%05d", i + 1)).m4s\n" }
        return text + "#EXT-X-ENDLIST\n"
    }

    static let mpd = """
        <?xml version="1.0" encoding="utf-8"?>
        <MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT40.0S">
          <!-- a comment with <tags> inside -->
          <Period id="0" start="PT0.0S">
            <AdaptationSet id="0" contentType="video">
              <Representation id="0" mimeType="video/mp4" bandwidth="730000">
                <SegmentTemplate timescale="12800" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
                  <SegmentTimeline><S t="0" d="25600" r="19" /></SegmentTimeline>
                </SegmentTemplate>
              </Representation>
            </AdaptationSet>
            <AdaptationSet id="1" contentType="audio">
              <Representation id="1" mimeType="audio/mp4" bandwidth="128000">
                <SegmentTemplate timescale="48000" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
                  <SegmentTimeline><S t="0" d="92160" /><S d="96256" r="2" /></SegmentTimeline>
                </SegmentTemplate>
              </Representation>
            </AdaptationSet>
          </Period>
        </MPD>
        """

    static func record(_ path: String, size: UInt64 = 1_000, sent: UInt64? = nil, range: ClosedRange<UInt64>? = nil, status: UInt16 = 200, aborted: Bool = false)
        -> DeliveryRecord
    {
        let bytes = sent ?? range.map { $0.upperBound - $0.lowerBound + 1 } ?? size
        return DeliveryRecord(
            endMicroseconds: 0, durationMicroseconds: 0, status: status, bytesSent: bytes, objectSize: size, range: range, aborted: aborted,
            sessionID: "s", titleID: "t", packageVersion: "v", objectPath: path)
    }

    static let ourPackage = try! PackageTimeline(files: [
        "master.m3u8": master,
        "media_0.m3u8": mediaPlaylist(stream: 0, durations: Array(repeating: "2.000000", count: 20)),
        "media_1.m3u8": mediaPlaylist(stream: 1, durations: ["1.920000"] + Array(repeating: "2.005333", count: 19)),
    ])

    @Test("HLS media playlists give each segment its media time; init segments and playlists have none")
    func hlsTimeline() throws {
        let t = Self.ourPackage
        #expect(t.interval(of: "chunk-stream0-00001.m4s") == MediaInterval(start: 0, end: 2_000_000))
        #expect(t.interval(of: "chunk-stream0-00020.m4s") == MediaInterval(start: 38_000_000, end: 40_000_000))
        #expect(t.interval(of: "chunk-stream1-00002.m4s") == MediaInterval(start: 1_920_000, end: 3_925_333))
        #expect(t.interval(of: "init-stream0.m4s") == nil)
        #expect(t.interval(of: "media_0.m3u8") == nil)
        #expect(t.objectCount == 40)
    }

    @Test("Loading follows the master playlist, and falls back to the DASH manifest")
    func loadsFromStore() async throws {
        let files = [
            "master.m3u8": Self.master, "media_0.m3u8": Self.mediaPlaylist(stream: 0, durations: ["2", "2"]),
            "media_1.m3u8": Self.mediaPlaylist(stream: 1, durations: ["2"]), "iframes.m3u8": "#EXTM3U\n#EXT-X-I-FRAMES-ONLY\n#EXTINF:2,\nx.m4s\n",
        ]
        let hls = try await PackageTimeline.load { files[$0] }
        #expect(hls.objectCount == 3)
        let dash = try await PackageTimeline.load { $0 == "manifest.mpd" ? Self.mpd : nil }
        #expect(dash.interval(of: "chunk-stream0-00020.m4s") == MediaInterval(start: 38_000_000, end: 40_000_000))
        #expect(dash.interval(of: "chunk-stream1-00002.m4s") == MediaInterval(start: 1_920_000, end: 3_925_333))
        #expect(dash.objectCount == 24)
        await #expect(throws: PackageTimeline.Failure.self) { _ = try await PackageTimeline.load { _ in nil } }
    }

    @Test("DASH templates: $Time$, fixed durations, multiple periods, BaseURL, SegmentList byte ranges")
    func dashAddressing() throws {
        let mpd = """
            <MPD mediaPresentationDuration="PT10S">
              <Period start="PT0S" duration="PT4S"><BaseURL>p1/</BaseURL>
                <AdaptationSet><SegmentTemplate timescale="1000" duration="2000" media="$RepresentationID$/s$Number$.m4s"/>
                  <Representation id="hi" bandwidth="5"/><Representation id="lo" bandwidth="1"/>
                </AdaptationSet>
              </Period>
              <Period>
                <AdaptationSet><Representation id="v" bandwidth="9">
                  <SegmentTemplate timescale="90000" presentationTimeOffset="900000" media="t_$Time$_$Bandwidth$.m4s">
                    <SegmentTimeline><S t="900000" d="270000" r="-1"/></SegmentTimeline></SegmentTemplate>
                </Representation></AdaptationSet>
                <AdaptationSet><Representation id="a"><BaseURL>audio/</BaseURL>
                  <SegmentList timescale="10" duration="30"><SegmentURL media="all.mp4" mediaRange="0-99"/><SegmentURL media="all.mp4" mediaRange="100-199"/></SegmentList>
                </Representation></AdaptationSet>
              </Period>
            </MPD>
            """
        let t = try PackageTimeline(files: ["dash/manifest.mpd": mpd])
        #expect(t.interval(of: "dash/p1/hi/s1.m4s") == MediaInterval(start: 0, end: 2_000_000))
        #expect(t.interval(of: "dash/p1/lo/s2.m4s") == MediaInterval(start: 2_000_000, end: 4_000_000))
        #expect(t.interval(of: "dash/t_900000_9.m4s") == MediaInterval(start: 4_000_000, end: 7_000_000))
        #expect(t.interval(of: "dash/t_1170000_9.m4s") == MediaInterval(start: 7_000_000, end: 10_000_000))
        #expect(t.interval(of: "dash/t_1440000_9.m4s") == nil)  // r=-1 stops at the period's end
        #expect(t.segments(of: "dash/audio/all.mp4") == [
            TimelineSegment(bytes: 0..<100, interval: MediaInterval(start: 4_000_000, end: 7_000_000)),
            TimelineSegment(bytes: 100..<200, interval: MediaInterval(start: 7_000_000, end: 10_000_000)),
        ])
    }

    @Test("HLS byte-range segments of one file, with and without explicit offsets")
    func hlsByteRanges() throws {
        let playlist = "#EXTM3U\n#EXTINF:4,\n#EXT-X-BYTERANGE:500@0\nall.ts\n#EXTINF:4,\n#EXT-X-BYTERANGE:300\nall.ts\n#EXTINF:2,\n#EXT-X-BYTERANGE:200@800\nall.ts\n"
        let t = try PackageTimeline(files: ["v/index.m3u8": playlist])
        #expect(t.interval(of: "v/all.ts") == nil)
        #expect(t.segments(of: "v/all.ts").map(\.bytes) == [0..<500, 500..<800, 800..<1000])
        var c = SessionCoverage()
        do { let grew = c.apply(Self.record("v/all.ts", size: 1_000, range: 0...799), timeline: t); #expect(grew) }
        #expect(c.coveredMicroseconds == 8_000_000)
        do { let grew = c.apply(Self.record("v/all.ts", size: 1_000, range: 900...999), timeline: t); #expect(grew == false) }
        do { let grew = c.apply(Self.record("v/all.ts", size: 1_000, range: 800...899), timeline: t); #expect(grew) }
        #expect(c.coveredMicroseconds == 10_000_000)
    }

    @Test("Hostile playlists: escaping paths, absolute URLs, absurd numbers, random bytes")
    func hostilePlaylists() throws {
        let escaping = "#EXTM3U\n#EXTINF:2,\n../../other/seg.m4s\n#EXTINF:2,\nhttp://evil/seg.m4s\n#EXTINF:2,\n/abs.m4s\n#EXTINF:-1,\nneg.m4s\n#EXTINF:1e9,\nexp.m4s\n#EXTINF:99999999,\nhuge.m4s\n#EXTINF:2,\nok.m4s?x=1\n"
        let t = try PackageTimeline(files: ["a/b.m3u8": escaping])
        #expect(t.objectCount == 1)
        #expect(t.interval(of: "a/ok.m4s") == MediaInterval(start: 6_000_000, end: 8_000_000))  // refused paths still take their time; unreadable durations do not

        let bigRepeat = "<MPD mediaPresentationDuration=\"PT10S\"><Period><AdaptationSet><Representation id=\"x\"><SegmentTemplate media=\"$Number$\"><SegmentTimeline><S d=\"1\" r=\"999999999999\"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period></MPD>"
        #expect(try PackageTimeline(files: ["m.mpd": bigRepeat]).objectCount == 0)
        let tooMany = "<MPD mediaPresentationDuration=\"P29D\"><Period><AdaptationSet><Representation id=\"x\"><SegmentTemplate timescale=\"1000\" duration=\"1\" media=\"$Number$\"/></Representation></AdaptationSet></Period></MPD>"
        #expect(throws: PackageTimeline.Failure.self) { try PackageTimeline(files: ["m.mpd": tooMany]) }

        var generator = SeededGenerator(seed: 11)
        let alphabet = Array("<>/=\"' MPDPeriodSegmentTemplateTimelineS d r t $Number% #EXTINF:2,\n#EXT-X-BYTERANGE:1@2\nseg.m4s 0123456789.-")
        for _ in 0..<300 {
            let length = Int.random(in: 0..<600, using: &generator)
            let text = String((0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
            _ = try? PackageTimeline(files: ["x.mpd": "<MPD>" + text, "y.m3u8": "#EXTM3U\n#EXTINF:2,\n" + text])
        }
    }

    @Test("Coverage counts a segment once all its bytes went out: whole, in ranges, or after an abort")
    func coverageRules() {
        let t = Self.ourPackage
        var c = SessionCoverage()
        // Cut short: nothing yet. The rest by range completes it.
        do { let grew = c.apply(Self.record("chunk-stream0-00001.m4s", sent: 600, aborted: true), timeline: t); #expect(!grew) }
        do { let grew = c.apply(Self.record("chunk-stream0-00001.m4s", range: 600...999), timeline: t); #expect(grew) }
        #expect(c.coveredMicroseconds == 2_000_000)
        // The same time in audio or another rendition adds nothing; a refusal adds nothing.
        do { let grew = c.apply(Self.record("chunk-stream0-00001.m4s"), timeline: t); #expect(!grew) }
        do { let grew = c.apply(Self.record("chunk-stream0-00002.m4s", status: 403), timeline: t); #expect(!grew) }
        do { let grew = c.apply(Self.record("init-stream0.m4s"), timeline: t); #expect(!grew) }
        // Audio past the video extends coverage only by what is new.
        do { let grew = c.apply(Self.record("chunk-stream1-00002.m4s"), timeline: t); #expect(grew) }
        #expect(c.coveredMicroseconds == 3_925_333)
        #expect(c.billedMinutes == 1)
        // A seek far ahead: a second interval.
        do { let grew = c.apply(Self.record("chunk-stream0-00020.m4s"), timeline: t); #expect(grew) }
        #expect(c.intervals.count == 2)
        // A lying record (more bytes than the range) cannot cover more than its range.
        do { let grew = c.apply(Self.record("chunk-stream0-00010.m4s", sent: 5_000, range: 0...9), timeline: t); #expect(!grew) }
        var whole = SessionCoverage()
        for i in 1...20 { _ = whole.apply(Self.record("chunk-stream0-\(String(format: "%05d", i)).m4s"), timeline: t) }
        #expect(whole.coveredMicroseconds == 40_000_000 && whole.billedMinutes == 1)
    }

    @Test("Minutes: the ceiling of covered time, but a minute entered by an audio tail of at most 250 ms is not billed")
    func minuteBoundaries() {
        #expect(SessionCoverage.billedMinutes(covering: 0) == 0)
        #expect(SessionCoverage.billedMinutes(covering: 1) == 1)
        #expect(SessionCoverage.billedMinutes(covering: 60_000_000) == 1)
        #expect(SessionCoverage.billedMinutes(covering: 60_010_667) == 1)  // a 60 s title's AAC tail
        #expect(SessionCoverage.billedMinutes(covering: 60_250_000) == 1)
        #expect(SessionCoverage.billedMinutes(covering: 60_250_001) == 2)
        #expect(SessionCoverage.billedMinutes(covering: 182_000_000) == 4)
    }

    /// Property: random delivery logs (renditions, seeks, duplicates, reordering, partial ranges,
    /// aborts) always give the coverage an independent byte-by-byte oracle gives, whatever the
    /// order and however the state is persisted between records.
    @Test("Stored coverage: the compact text round-trips, JSON rows still load, damaged text is refused")
    func storedCoverageText() throws {
        let timeline = try PackageTimeline(files: [
            "master.m3u8": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv/v.m3u8\n",
            "v/v.m3u8": "#EXTM3U\n#EXTINF:2,\na;b=c,1.m4s\n#EXTINF:2,\nb.m4s\n#EXTINF:2,\nc.m4s\n#EXT-X-ENDLIST\n",
        ])
        var coverage = SessionCoverage()
        _ = coverage.apply(Self.record("v/b.m4s", size: 100), timeline: timeline)
        _ = coverage.apply(Self.record("v/a;b=c,1.m4s", size: 100, range: 0...9, status: 206), timeline: timeline)
        #expect(coverage.text == "c1:2000000-4000000;15:v/a;b=c,1.m4s@0=0-10")
        let decoded = try SessionCoverage(text: coverage.text) { _ in SessionCoverage() }
        #expect(decoded == coverage)
        // The piece kept across a reload still completes the segment.
        var resumed = decoded
        let completed = resumed.apply(Self.record("v/a;b=c,1.m4s", size: 100, range: 10...99, status: 206), timeline: timeline)
        #expect(completed)
        #expect(resumed.coveredMicroseconds == 4_000_000)

        // Rows written before the compact text hold JSON.
        let json = String(decoding: try JSONEncoder().encode(coverage), as: UTF8.self)
        let legacy = try SessionCoverage(text: json) { try JSONDecoder().decode(SessionCoverage.self, from: Data($0.utf8)) }
        #expect(legacy == coverage)

        for damaged in [
            "", "c1", "x1:0-1", "c1:5-1", "c1:0-2,1-3", "c1:0-", "c1:-1-2", "c1:0-99999999999999999999", "c1:0-9223372036854775808",
            "c1:0-1;", "c1:0-1;5:ab=0-1", "c1:0-1;2:ab0-1", "c1:0-1;2:ab=3-1", "c1:0-1,", "c1:0-1 ",
        ] {
            #expect(throws: CoverageTextError.self, "\(damaged)") { try SessionCoverage(text: damaged) { _ in SessionCoverage() } }
        }
        // Random bytes never crash the reader.
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("c1:0123456789-,;=ab{".utf8)
        for _ in 0..<20_000 {
            let bytes = (0..<Int.random(in: 0..<24, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            _ = try? SessionCoverage(text: "c1:" + String(decoding: bytes, as: UTF8.self)) { _ in SessionCoverage() }
        }
    }

    @Test("Random delivery logs: billed minutes = ceil(covered), in any order, through persistence")
    func randomLogsMatchTheOracle() throws {
        var generator = SeededGenerator(seed: 2026)
        for round in 0..<150 {
            // A package: 3 video renditions of 2-second segments, audio of 1.92/2.005333 s, 60–300 s long.
            let count = Int.random(in: 30...150, using: &generator)
            var files = ["master.m3u8": Self.master]
            var sizes: [String: UInt64] = [:]
            for stream in 0..<4 {
                let durations = stream == 3 ? ["1.920000"] + Array(repeating: "2.005333", count: count - 1) : Array(repeating: "2.000000", count: count)
                files["media_\(stream).m3u8"] = Self.mediaPlaylist(stream: stream, durations: durations)
                for i in 1...count { sizes["chunk-stream\(stream)-\(String(format: "%05d", i)).m4s"] = UInt64.random(in: 1...400, using: &generator) }
            }
            let timeline = try PackageTimeline(files: files)
            // A viewer: plays from a random point, switches renditions, seeks, retries, fetches in ranges.
            var records: [DeliveryRecord] = []
            var position = Int.random(in: 1...count, using: &generator)
            for _ in 0..<Int.random(in: 5...200, using: &generator) {
                if Int.random(in: 0..<10, using: &generator) == 0 { position = Int.random(in: 1...count, using: &generator) }
                let stream = Int.random(in: 0..<4, using: &generator)
                let path = "chunk-stream\(stream)-\(String(format: "%05d", position)).m4s"
                let size = sizes[path]!
                switch Int.random(in: 0..<6, using: &generator) {
                case 0:  // an abort part way
                    records.append(Self.record(path, size: size, sent: UInt64.random(in: 0..<size, using: &generator), aborted: true))
                case 1:  // two or three ranges
                    var start: UInt64 = 0
                    while start < size {
                        let end = min(size - 1, start + UInt64.random(in: 0..<size, using: &generator))
                        records.append(Self.record(path, size: size, range: start...end, status: 206))
                        start = end + 1 + (Int.random(in: 0..<4, using: &generator) == 0 ? 1 : 0)  // sometimes a byte is skipped
                    }
                case 2:
                    records.append(Self.record(path, size: size, status: [403, 404, 410, 402][Int.random(in: 0..<4, using: &generator)]))
                default:
                    records.append(Self.record(path, size: size))
                }
                if Int.random(in: 0..<5, using: &generator) == 0, let again = records.randomElement(using: &generator) { records.append(again) }
                position = min(count, position + 1)
            }
            records.shuffle(using: &generator)

            let expected = Self.oracle(records, timeline: timeline)
            var coverage = SessionCoverage()
            for (i, record) in records.enumerated() {
                _ = coverage.apply(record, timeline: timeline)
                if i % 17 == 0 {  // persisted and reloaded, as the consumer does between batches
                    let reloaded = try SessionCoverage(text: coverage.text) { _ in Issue.record("not JSON"); return SessionCoverage() }
                    #expect(reloaded == coverage)
                    coverage = reloaded
                }
            }
            #expect(coverage.coveredMicroseconds == expected, "round \(round)")
            let minutes = (expected + 59_999_999) / 60_000_000
            let grace = minutes > 1 && expected - (minutes - 1) * 60_000_000 <= 250_000
            #expect(coverage.billedMinutes == (grace ? minutes - 1 : minutes), "round \(round)")
        }
    }

    /// Covered microseconds computed the slow way: a bitmap of bytes per object, then the union
    /// of the complete segments' intervals by sorting.
    static func oracle(_ records: [DeliveryRecord], timeline: PackageTimeline) -> Int64 {
        var received: [String: [Bool]] = [:]
        for r in records where r.status == 200 || r.status == 206 {
            var bits = received[r.objectPath] ?? Array(repeating: false, count: Int(r.objectSize))
            let start = Int(r.range?.lowerBound ?? 0)
            let limit = min(Int(r.objectSize), r.range.map { Int($0.upperBound) + 1 } ?? Int.max)
            for i in start..<max(start, min(limit, start + Int(r.bytesSent))) { bits[i] = true }
            received[r.objectPath] = bits
        }
        var complete: [MediaInterval] = []
        for (path, bits) in received where bits.allSatisfy({ $0 }) {
            complete += timeline.segments(of: path).map(\.interval)
        }
        complete.sort { $0.start < $1.start }
        var total: Int64 = 0
        var current: MediaInterval?
        for i in complete {
            if let c = current, i.start <= c.end {
                current = MediaInterval(start: c.start, end: max(c.end, i.end))
            } else {
                if let c = current { total += c.duration }
                current = i
            }
        }
        return total + (current?.duration ?? 0)
    }
}
