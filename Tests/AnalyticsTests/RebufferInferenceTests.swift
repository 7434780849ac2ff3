import MarqueeBus
import MarqueeMetering
import MarqueeTestSupport
import Testing

@testable import MarqueeAnalytics

/// The rebuffering inferred from delivery timing (`PlayheadModel`), checked against scripted
/// players whose stalls are known: a player that plays from its first segment, keeps a buffer
/// of `target` seconds, and fetches one segment at a time over a link whose rate drops.
@Suite("Analytics: rebuffering inferred from delivery timing")
struct RebufferInferenceTests {
    struct ScriptedPlayer {
        var segmentSeconds = 2.0
        var segmentBits = 8_000_000.0  // 4 Mbit/s media
        var target = 10.0
        var segments = 60
        /// Each segment's separate audio, fetched after its video (0: the media is muxed).
        var audioBits = 0.0
        /// (from s, rate bit/s): the link's rate from each time on.
        var link: [(Double, Double)] = [(0, 40_000_000)]

        func rate(at time: Double) -> Double { link.last { $0.0 <= time }!.1 }

        /// Seconds to move `bits` starting at `time`, following the link's rate changes.
        func transfer(_ bits: Double, from time: Double) -> Double {
            var left = bits
            var t = time
            while true {
                let next = link.first { $0.0 > t }?.0 ?? .infinity
                let r = rate(at: t)
                if left <= r * (next - t) { return t + left / r - time }
                left -= r * (next - t)
                t = next
            }
        }

        /// Each segment's arrival (s; its video's, and its audio's when separate) and the stalls
        /// the viewer saw (start, end). A segment plays once all of it is there.
        func play() -> (arrivals: [Double], audioArrivals: [Double], stalls: [(Double, Double)]) {
            var t = 0.0
            var buffered = 0.0  // media seconds received
            var playhead = 0.0
            var playing = false
            var arrivals: [Double] = []
            var audioArrivals: [Double] = []
            var stalls: [(Double, Double)] = []
            for _ in 0..<segments {
                if playing, buffered - playhead >= target {
                    let wait = buffered - playhead - target + 0.001
                    playhead += wait
                    t += wait
                }
                let videoArrival = t + transfer(segmentBits, from: t)
                let arrival = audioBits > 0 ? videoArrival + transfer(audioBits, from: videoArrival) : videoArrival
                if playing {
                    let runway = buffered - playhead
                    if arrival - t > runway {
                        stalls.append((t + runway, arrival))
                        playhead = buffered
                    } else {
                        playhead += arrival - t
                    }
                }
                buffered += segmentSeconds
                playing = true
                t = arrival
                arrivals.append(videoArrival)
                if audioBits > 0 { audioArrivals.append(arrival) }
            }
            return (arrivals, audioArrivals, stalls)
        }
    }

    /// The model fed the arrivals: its stalls as (start, end) in seconds.
    static func inferred(_ arrivals: [Double], audio audioArrivals: [Double] = [], segmentSeconds: Double) -> [(Double, Double)] {
        var model = PlayheadModel()
        var found: [(Double, Double)] = []
        func note(_ stall: PlayheadModel.Stall?, _ arrival: Double) {
            if let stall { found.append((arrival - Double(stall.microseconds) / 1_000_000, arrival)) }
        }
        for (k, arrival) in arrivals.enumerated() {
            let start = Int64(Double(k) * segmentSeconds * 1_000_000)
            let interval = MediaInterval(start: start, end: start + Int64(segmentSeconds * 1_000_000))
            note(model.receive(interval, at: Int64(arrival * 1_000_000)), arrival)
            if k < audioArrivals.count {
                note(model.receiveAudio(interval, at: Int64(audioArrivals[k] * 1_000_000)), audioArrivals[k])
            }
        }
        return found
    }

    @Test("A player that stalls and one that does not are told apart, stall for stall")
    func tellsApart() {
        var smooth = ScriptedPlayer()
        smooth.link = [(0, 20_000_000)]
        let (calm, _, none) = smooth.play()
        #expect(none.isEmpty)
        #expect(Self.inferred(calm, segmentSeconds: 2).isEmpty)

        var starved = ScriptedPlayer()
        // The link falls to 1.5 Mbit/s (below the media's 4) for 40 s, then recovers.
        starved.link = [(0, 20_000_000), (20, 1_500_000), (60, 20_000_000)]
        let (arrivals, _, all) = starved.play()
        // Waits under the model's threshold are delivery jitter to it.
        let truth = all.filter { $0.1 - $0.0 > Double(PlayheadModel.threshold) / 1_000_000 }
        #expect(truth.count >= 2)
        let found = Self.inferred(arrivals, segmentSeconds: 2)
        #expect(found.count == truth.count)
        let truthTime = truth.reduce(0) { $0 + $1.1 - $1.0 }
        let foundTime = found.reduce(0) { $0 + $1.1 - $1.0 }
        #expect(abs(foundTime - truthTime) < 0.01, "inferred \(foundTime) s, truth \(truthTime) s")
    }

    @Test("Precision and recall over 500 scripted players with random link drops")
    func precisionAndRecall() {
        var generator = SeededGenerator(seed: 2_026_12_06)
        var truthEvents = 0
        var foundEvents = 0
        var matchedTruth = 0
        var matchedFound = 0
        var truthSeconds = 0.0
        var foundSeconds = 0.0
        for _ in 0..<500 {
            var player = ScriptedPlayer()
            player.segmentSeconds = [2.0, 4.0, 6.0].randomElement(using: &generator)!
            player.segmentBits = player.segmentSeconds * Double.random(in: 1_000_000...6_000_000, using: &generator)
            player.target = Double.random(in: 6...30, using: &generator)
            player.segments = Int(120 / player.segmentSeconds)
            var link: [(Double, Double)] = [(0, Double.random(in: 8_000_000...50_000_000, using: &generator))]
            var time = 0.0
            for _ in 0..<Int.random(in: 0...3, using: &generator) {
                time += Double.random(in: 5...40, using: &generator)
                link.append((time, Double.random(in: 200_000...4_000_000, using: &generator)))
                time += Double.random(in: 2...30, using: &generator)
                link.append((time, Double.random(in: 8_000_000...50_000_000, using: &generator)))
            }
            player.link = link
            // Half of them fetch each segment's audio separately, after its video.
            if Bool.random(using: &generator) { player.audioBits = player.segmentSeconds * Double.random(in: 64_000...256_000, using: &generator) }
            let (arrivals, audioArrivals, all) = player.play()
            // Waits shorter than the model's threshold are jitter to it; score the rest.
            let truth = all.filter { $0.1 - $0.0 > 0.6 }
            let found = Self.inferred(arrivals, audio: audioArrivals, segmentSeconds: player.segmentSeconds)
            truthEvents += truth.count
            foundEvents += found.count
            func overlaps(_ a: (Double, Double), _ b: (Double, Double)) -> Bool { a.0 < b.1 && b.0 < a.1 }
            matchedTruth += truth.filter { t in found.contains { overlaps($0, t) } }.count
            matchedFound += found.filter { f in all.contains { overlaps($0, f) } }.count
            truthSeconds += all.reduce(0) { $0 + $1.1 - $1.0 }
            foundSeconds += found.reduce(0) { $0 + $1.1 - $1.0 }
        }
        let precision = Double(matchedFound) / Double(max(1, foundEvents))
        let recall = Double(matchedTruth) / Double(max(1, truthEvents))
        print("rebuffer inference: \(truthEvents) stalls scripted, \(foundEvents) inferred; precision \(precision), recall \(recall); stalled \(truthSeconds) s, inferred \(foundSeconds) s")
        #expect(truthEvents > 100)
        #expect(precision >= 0.99)
        #expect(recall >= 0.95)
        #expect(abs(foundSeconds - truthSeconds) / truthSeconds < 0.02)
    }

    @Test("Seeks and re-fetches at another rendition are not stalls")
    func seeksAreNotStalls() {
        var model = PlayheadModel()
        func segment(_ k: Int64) -> MediaInterval { MediaInterval(start: k * 2_000_000, end: (k + 1) * 2_000_000) }
        #expect(model.receive(segment(0), at: 0) == nil)
        #expect(model.receive(segment(1), at: 100_000) == nil)
        #expect(model.receive(segment(2), at: 200_000) == nil)
        // The same media again at another rendition, ahead of the playhead.
        #expect(model.receive(segment(2), at: 300_000) == nil)
        // A seek forward to 60 s, 5 s later: a wait, not a stall.
        #expect(model.receive(segment(30), at: 5_300_000) == nil)
        #expect(model.receive(segment(31), at: 5_400_000) == nil)
        // A seek back to the start.
        #expect(model.receive(segment(0), at: 6_000_000) == nil)
        // The buffer then runs dry: 2 s of media, next segment 3.5 s later → 1.5 s stall.
        let stall = model.receive(segment(1), at: 9_500_000)
        #expect(stall == PlayheadModel.Stall(microseconds: 1_500_000))
        #expect(PlayheadModel(text: model.text) == model)
    }
    @Test("Separate audio: playback starts when the start's audio is there, and a stall lasts until the late audio arrives")
    func separateAudio() {
        var model = PlayheadModel()
        func segment(_ k: Int64) -> MediaInterval { MediaInterval(start: k * 4_000_000, end: (k + 1) * 4_000_000) }
        // Video 0 at 0 s, its audio 3 s later: the start, not a stall; playback from 3 s.
        #expect(model.receive(segment(0), at: 0) == nil)
        #expect(model.receiveAudio(segment(0), at: 3_000_000) == nil)
        // Video 1 early (2 s), its audio late (8 s): the player waited from 7 s to 8 s for it.
        #expect(model.receive(segment(1), at: 2_000_000) == nil)
        #expect(model.receiveAudio(segment(1), at: 8_000_000) == PlayheadModel.Stall(microseconds: 1_000_000))
        #expect(PlayheadModel(text: model.text) == model)
        // Following the video alone, the same arrivals show no stall at all.
        var videoOnly = PlayheadModel()
        #expect(videoOnly.receive(segment(0), at: 0) == nil)
        #expect(videoOnly.receive(segment(1), at: 2_000_000) == nil)
        // A stored model from before audio was followed still reads.
        let stored = PlayheadModel(text: "10,20,30")
        #expect(stored.wallAnchor == 10 && stored.mediaAnchor == 20 && stored.bufferedEnd == 30 && stored.audio == nil)
    }

    @Test("A player that sends CMCD: a run of requests marked `bs` is one rebuffer, a new run another; the inference is kept apart")
    func starvationRuns() throws {
        let timeline = try AnalyticsFixtures.timeline()
        let start: Int64 = 1_796_000_000_000_000
        // Video segments 0–7 of 2 s; the player marks 2 and 3 (one stall spanning two requests),
        // then 6 (another).
        let starvedAt: Set = [2, 3, 6]
        var records: [DeliveryRecord] = []
        for k in 0..<8 {
            let cmcd = "bl=\(starvedAt.contains(k) ? 0 : 8000)" + (starvedAt.contains(k) ? ",bs" : "")
            records.append(
                DeliveryRecord(
                    endMicroseconds: start + Int64(k) * 1_000_000, durationMicroseconds: 1000, status: 200, bytesSent: AnalyticsFixtures.segmentBytes,
                    objectSize: AnalyticsFixtures.segmentBytes, sessionID: "s1", titleID: "title-a", packageVersion: "v1", objectPath: "chunk-0-\(k).m4s",
                    cmcd: cmcd))
        }
        var engine = RollupEngine()
        engine.apply(records, origins: [], timelines: ["title-a/v1": timeline])
        let session = try #require(engine.sessions["s1"])
        #expect(session.sendsCMCD)
        #expect(session.rebuffers == 2)
        #expect(engine.delta.counters.reduce(0) { $0 + $1.rebuffers } == 2)
    }
}
