import Testing

@testable import MarqueeLoad
import MarqueeTestSupport

/// The viewer model against scripted links: what it fetches, and that the startup time and stalls
/// it reports are the buffer's arithmetic, checked against a millisecond-by-millisecond reference.
@Suite("Load client: player model")
struct PlayerModelTests {
    /// A link whose bandwidth (bits/s, a multiple of 1000) changes at given times (ms).
    struct Link {
        var steps: [(fromMs: Int64, bitsPerSecond: Int64)]

        func bitsPerMs(at t: Int64) -> Int64 { (steps.last { $0.fromMs <= t } ?? steps[0]).bitsPerSecond / 1000 }

        /// When a download of `bits` started at `start` ends: the first millisecond boundary by
        /// which the link carried them all.
        func arrival(bits: Int64, start: Int64) -> Int64 {
            var left = bits
            var t = start
            while left > 0 {
                left -= bitsPerMs(at: t)
                t += 1
            }
            return t
        }
    }

    /// Plays the model over `link`; each segment is its rendition's bandwidth times its duration.
    /// Returns each fetch with the time it was asked for.
    static func play(_ model: inout PlayerModel, over link: Link) -> [(index: Int, rendition: Int, atMs: Int64)] {
        var fetched: [(Int, Int, Int64)] = []
        var now: Int64 = 0
        loop: while now < 10_000_000 {
            model.advance(toMs: now)
            switch model.next() {
            case .done:
                break loop
            case .wait(let until):
                guard let until else { Issue.record("waits for a download none runs"); break loop }
                now = until
            case .fetch(let index, let rendition):
                fetched.append((index, rendition, now))
                let bits = Int64(model.bandwidths[rendition]) * model.segmentDurationsMs[index] / 1000
                let arrival = link.arrival(bits: bits, start: now)
                model.advance(toMs: arrival)
                model.segmentArrived(bytes: Int(bits / 8), elapsedMs: arrival - now)
                now = arrival
            }
        }
        return fetched
    }

    @Test("With room to spare: starts on the lowest rendition, switches up once the first sample is in, never stalls, plays everything")
    func ample() {
        var model = PlayerModel(bandwidths: [1_000_000, 4_000_000], segmentDurationsMs: Array(repeating: 4_000, count: 10))
        let fetched = Self.play(&model, over: Link(steps: [(0, 10_000_000)]))
        #expect(fetched.map(\.rendition) == [0] + Array(repeating: 1, count: 9))
        #expect(model.startupMs == 400, "4 Mbit at 10 Mbit/s, and one 4 s segment is the startup buffer")
        #expect(model.stalls == 0 && model.stalledMs == 0 && model.switches == 1)
        #expect(model.phase == .ended && model.playedMs == 40_000)
        #expect(model.averageBitrate == 3_700_000)
    }

    @Test("A bandwidth drop below the top rendition: the player switches down, and stalls only while its buffer cannot cover the drop")
    func drop() {
        var model = PlayerModel(bandwidths: [500_000, 1_000_000, 3_000_000], segmentDurationsMs: Array(repeating: 4_000, count: 40))
        let link = Link(steps: [(0, 8_000_000), (40_000, 700_000)])
        let fetched = Self.play(&model, over: link)
        let afterDrop = fetched.suffix(5).map(\.rendition)
        #expect(fetched.contains { $0.rendition == 2 }, "the top rendition before the drop")
        #expect(afterDrop.allSatisfy { $0 == 0 }, "down to the lowest once the link carries 0.7 Mbit/s: \(afterDrop)")
        #expect(model.switches >= 2 && model.phase == .ended && model.playedMs == 160_000)
    }

    // MARK: - Behaviours

    static let thirtySegments = Array(repeating: Int64(2_000), count: 30)

    @Test("A pause holds the buffer: nothing is played or fetched past the cap while paused, no stall, and the title still plays to its end")
    func pause() {
        let script = PlayerModel.Script(pauseAtMs: 10_000, pauseForMs: 20_000)
        var model = PlayerModel(bandwidths: [1_000_000], segmentDurationsMs: Self.thirtySegments, script: script)
        // 10 Mbit/s: each 2 Mbit segment takes 200 ms.
        let fetched = Self.play(&model, over: Link(steps: [(0, 10_000_000)]))
        let fetchedDuringPause = fetched.filter { $0.atMs > 10_000 + 400 && $0.atMs < 30_000 }.count
        #expect(model.paused && model.phase == .ended && model.stalls == 0)
        #expect(model.playedMs == 60_000, "the whole title, the pause not counted as played")
        #expect(fetchedDuringPause == 0, "the buffer was at its 30 s cap when the pause began and does not drain while paused")
        #expect(model.nowMs >= 60_000 + 20_000, "the pause delays the end: \(model.nowMs)")
    }

    @Test("A seek flushes the buffer and fetches from the new position; the wait until playing again is a seek wait, not a stall")
    func seek() throws {
        let script = PlayerModel.Script(seekAtMs: 10_000, seekTo: 0.5)
        var model = PlayerModel(bandwidths: [1_000_000], segmentDurationsMs: Self.thirtySegments, script: script)
        // 4 Mbit/s: each 2 Mbit segment takes 500 ms.
        let fetched = Self.play(&model, over: Link(steps: [(0, 4_000_000)])).map(\.index)
        // Before the seek at 10 s the buffer ran ahead to its cap; then fetching restarts at 50%.
        let restart = try #require(fetched.indices.dropFirst().first { fetched[$0] <= fetched[$0 - 1] }, "no seek in \(fetched)")
        #expect(Array(fetched[..<restart]) == Array(0..<restart), "in order up to the seek")
        #expect(Array(fetched[restart...]) == Array(15..<30), "from 50% of 30 segments, straight on: \(fetched)")
        #expect(model.seeked && model.stalls == 0 && model.seekWaitMs == 500, "one 2 s segment at 500 ms refills the 2 s rebuffer level")
        #expect(model.phase == .ended)
    }

    @Test("A seek while a segment downloads throws that segment away when it arrives")
    func seekDuringDownload() {
        let script = PlayerModel.Script(seekAtMs: 10_000, seekTo: 0.8)
        var model = PlayerModel(bandwidths: [1_000_000], segmentDurationsMs: Self.thirtySegments, script: script)
        var now: Int64 = 0
        // Slow downloads (1.5 s each for 2 s of media) so one is in flight at 10 s.
        while now < 10_000 {
            model.advance(toMs: now)
            guard case .fetch = model.next() else { break }
            if now + 1_500 > 10_000 {
                model.advance(toMs: 10_000)
                #expect(model.phase == .seeking && model.bufferMs == 0)
                model.advance(toMs: now + 1_500)
                model.segmentArrived(bytes: 250_000, elapsedMs: 1_500)
                #expect(model.bufferMs == 0, "the segment asked for before the seek is not buffered")
                now += 1_500
                break
            }
            model.advance(toMs: now + 1_500)
            model.segmentArrived(bytes: 250_000, elapsedMs: 1_500)
            now += 1_500
        }
        model.advance(toMs: now)
        #expect(model.next() == .fetch(index: 24, rendition: 0))
    }

    @Test("Abandoning ends the viewer at its time, whatever it was doing; before startup it never played")
    func abandon() {
        var model = PlayerModel(bandwidths: [1_000_000], segmentDurationsMs: Self.thirtySegments, script: .init(abandonAtMs: 15_000))
        _ = Self.play(&model, over: Link(steps: [(0, 10_000_000)]))
        #expect(model.abandoned && model.phase == .ended && model.playedMs == 15_000 - (model.startupMs ?? 0))
        var early = PlayerModel(bandwidths: [1_000_000], segmentDurationsMs: Self.thirtySegments, script: .init(abandonAtMs: 100))
        _ = Self.play(&early, over: Link(steps: [(0, 1_000_000)]))
        #expect(early.abandoned && early.startupMs == nil)
    }

    @Test("Behaviours: about the asked share of viewers gets each, at times inside their run, the same for the same seed")
    func behaviourShares() {
        let behaviours = Behaviours(pausePercent: 30, seekPercent: 10, abandonPercent: 50, seed: 7)
        let scripts = (0..<10_000).map { behaviours.script(viewer: $0, remainingMs: 60_000) }
        let pauses = scripts.filter { $0.pauseAtMs != nil }.count
        let seeks = scripts.filter { $0.seekAtMs != nil }.count
        let leaves = scripts.filter { $0.abandonAtMs != nil }.count
        #expect((2_800...3_200).contains(pauses) && (850...1_150).contains(seeks) && (4_800...5_200).contains(leaves), "\(pauses) \(seeks) \(leaves)")
        #expect(scripts.allSatisfy { s in
            (s.pauseAtMs.map { (4_000..<60_000).contains($0) } ?? true) && (s.abandonAtMs.map { $0 < 60_000 } ?? true) && s.seekTo < 0.9
                && (s.pauseAtMs == nil || (5_000...30_000).contains(s.pauseForMs))
        })
        #expect(scripts == (0..<10_000).map { behaviours.script(viewer: $0, remainingMs: 60_000) })
        #expect(Behaviours().script(viewer: 3, remainingMs: 60_000) == PlayerModel.Script())
    }

    /// The buffer's rules stepped one millisecond at a time: the reference the model must equal.
    struct Reference {
        var stalls = 0
        var stalledMs: Int64 = 0
        var startupMs: Int64?
        var playedMs: Int64 = 0

        init(durations: [Int64], bandwidth: Int64, link: Link, settings: PlayerModel.Settings) {
            var buffer: Int64 = 0
            var state = PlayerModel.Phase.starting
            var next = 0
            var downloading = false
            var bitsLeft: Int64 = 0
            var t: Int64 = 0
            while state != .ended && t < 10_000_000 {
                // A download that ended by this millisecond.
                if downloading && bitsLeft <= 0 {
                    downloading = false
                    buffer += durations[next]
                    next += 1
                    let last = next == durations.count
                    if state == .starting && (buffer >= settings.startupBufferMs || last) {
                        state = .playing
                        startupMs = t
                    } else if state == .stalled && (buffer >= settings.rebufferMs || last) {
                        state = .playing
                    }
                }
                if !downloading && next < durations.count && (state != .playing || settings.maxBufferMs - buffer >= durations[next]) {
                    downloading = true
                    bitsLeft = bandwidth * durations[next] / 1000
                }
                if state == .playing && buffer == 0 {
                    if next == durations.count && !downloading {
                        state = .ended
                        break
                    }
                    state = .stalled
                    stalls += 1
                }
                switch state {
                case .playing:
                    buffer -= 1
                    playedMs += 1
                case .stalled:
                    stalledMs += 1
                default:
                    break
                }
                if downloading { bitsLeft -= link.bitsPerMs(at: t) }
                t += 1
            }
        }
    }

    @Test("Startup, stalls and stalled time equal the millisecond-by-millisecond reference over random links", arguments: 0..<6)
    func matchesReference(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        var stalledRuns = 0
        for _ in 0..<25 {
            let durations = (0..<Int.random(in: 1...25, using: &generator)).map { _ in Int64.random(in: 1...6, using: &generator) * 1000 }
            var steps: [(fromMs: Int64, bitsPerSecond: Int64)] = [(0, Int64.random(in: 1...40, using: &generator) * 250_000)]
            for _ in 0..<Int.random(in: 0...4, using: &generator) {
                steps.append((steps.last!.fromMs + Int64.random(in: 1_000...30_000, using: &generator), Int64.random(in: 1...40, using: &generator) * 250_000))
            }
            let link = Link(steps: steps)
            var settings = PlayerModel.Settings()
            settings.startupBufferMs = Int64.random(in: 1...3, using: &generator) * 2000
            settings.maxBufferMs = Int64.random(in: 2...8, using: &generator) * 4000
            let bandwidth: Int64 = 2_000_000
            var model = PlayerModel(bandwidths: [Int(bandwidth)], segmentDurationsMs: durations, settings: settings)
            _ = Self.play(&model, over: link)
            let reference = Reference(durations: durations, bandwidth: bandwidth, link: link, settings: settings)
            let context = "durations \(durations) link \(steps) startup \(settings.startupBufferMs) max \(settings.maxBufferMs)"
            #expect(model.startupMs == reference.startupMs, "\(context)")
            #expect(model.stalls == reference.stalls, "\(context)")
            #expect(model.stalledMs == reference.stalledMs, "\(context)")
            #expect(model.playedMs == reference.playedMs && model.phase == .ended, "\(context)")
            if reference.stalls > 0 { stalledRuns += 1 }
        }
        #expect(stalledRuns > 0, "no random link made the player stall: the comparison proved little")
    }
}
