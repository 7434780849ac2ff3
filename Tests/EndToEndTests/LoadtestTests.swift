import Foundation
import MarqueeTestSupport
import Testing

/// `marquee loadtest` (viewers, and --raw) against a real server: what it reports is what the server saw.
@Suite("Load test: marquee loadtest against a real server")
struct LoadtestTests {
    static func loadtest(_ arguments: [String]) throws -> ToolResult {
        try Tool.run(try MarqueeBinary.locate().path, ["loadtest"] + arguments, timeout: .seconds(60))
    }

    static func report(_ file: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
    }

    @Test("against marquee origin: every response a 200, no failure, and the origin served what was counted (plus at most one in flight per connection)")
    func countsWhatTheServerServed() throws {
        let fixtures = try MediaFixtures.shared()
        let origin = try ServerProcess(root: fixtures.root, threads: 1)
        defer { origin.stop() }
        let before = (try? origin.metric(ServerProcess.responses(200))) ?? 0
        let json = Scratch.newFile("loadtest.json")
        let run = try Self.loadtest(["--raw", "--connections", "8", "--duration", "2", "--json", json.path, origin.url(MediaFixtures.hlsMaster)])
        #expect(run.termination == .exited(0), "\(run.stderrText)")
        let report = try Self.report(json)
        let requests = try #require(report["requests"] as? Int)
        #expect(requests > 100)
        #expect((report["statuses"] as? [String: Int]) == ["200": requests])
        #expect((report["failures"] as? [String: Int]) == ["connect": 0, "send": 0])
        let latency = try #require(report["latency_us"] as? [String: Any])
        #expect((latency["p50"] as? Int ?? 0) > 0 && (latency["p99"] as? Int ?? 0) >= (latency["p50"] as? Int ?? 0))
        let served = Int(try origin.metric(ServerProcess.responses(200)) - before)
        #expect(served >= requests && served <= requests + 8, "the origin served \(served), the load test counted \(requests)")
        #expect(run.stdoutText.contains("statuses  200 × "))
    }

    @Test("error statuses and refused connections are reported as such, and a bad URL is refused with the reason")
    func errors() throws {
        let fixtures = try MediaFixtures.shared()
        let origin = try ServerProcess(root: fixtures.root, threads: 1)
        defer { origin.stop() }
        let json = Scratch.newFile("loadtest-404.json")
        let missing = try Self.loadtest(["--raw", "--connections", "2", "--duration", "1", "--json", json.path, origin.url("/no/such/file.m4s")])
        #expect(missing.termination == .exited(0))
        let statuses = try #require(try Self.report(json)["statuses"] as? [String: Int])
        #expect(statuses.keys.sorted() == ["404"] && (statuses["404"] ?? 0) > 0)

        let refused = Scratch.newFile("loadtest-refused.json")
        _ = try Self.loadtest(["--raw", "--connections", "2", "--duration", "0.5", "--json", refused.path, "http://127.0.0.1:1/x"])
        let failures = try #require(try Self.report(refused)["failures"] as? [String: Int])
        #expect((failures["connect"] ?? 0) > 0)

        let bad = try Self.loadtest(["--raw", "https://example.com/x"])
        #expect(bad.termination == .exited(2) && bad.stderrText.contains("only http:// URLs"))
    }

    @Test("viewers play the HLS title: master, playlist, init and every segment once each, all 200s, no stall, and the origin served exactly that")
    func viewersPlay() throws {
        let fixtures = try MediaFixtures.shared()
        let origin = try ServerProcess(root: fixtures.root, threads: 1)
        defer { origin.stop() }
        let before = (try? origin.metric(ServerProcess.responses(200))) ?? 0
        let json = Scratch.newFile("loadtest-viewers.json")
        // The fixture title is 6 s of 2 s segments; 10 s covers a 1 s ramp, startup and the end.
        let run = try Self.loadtest(["--viewers", "10", "--ramp", "1", "--duration", "10", "--json", json.path, origin.url(MediaFixtures.hlsMaster)])
        #expect(run.termination == .exited(0), "\(run.stderrText)")
        let report = try Self.report(json)
        #expect(report["viewers_started"] as? Int == 10 && report["viewers_never_played"] as? Int == 0)
        #expect(report["stalls"] as? Int == 0)
        let kinds = try #require(report["by_kind"] as? [String: [String: Any]])
        var total = 0
        for (kind, each) in [("master", 1), ("playlist", 1), ("init", 1), ("segment", 3)] {
            let requests = kinds[kind]?["requests"] as? Int ?? -1
            #expect(requests == 10 * each, "\(kind): \(requests)")
            #expect((kinds[kind]?["statuses"] as? [String: Int]) == ["200": 10 * each], "\(kind)")
            total += requests
        }
        let startup = try #require(report["startup_ms"] as? [String: Double])
        #expect((startup["p50"] ?? -1) >= 0 && (startup["p99"] ?? 10_000) < 2_000, "startup on loopback: \(startup)")
        #expect(Int(try origin.metric(ServerProcess.responses(200)) - before) == total)
    }

    @Test("viewers play the DASH title from its manifest: the manifest, the video's and the audio's init, and every video and audio segment once each, all 200s, no stall")
    func viewersPlayDASH() throws {
        let fixtures = try MediaFixtures.shared()
        let origin = try ServerProcess(root: fixtures.root, threads: 1)
        defer { origin.stop() }
        let before = (try? origin.metric(ServerProcess.responses(200))) ?? 0
        let json = Scratch.newFile("loadtest-dash.json")
        let run = try Self.loadtest(["--viewers", "5", "--ramp", "1", "--duration", "10", "--json", json.path, origin.url(MediaFixtures.dashManifest)])
        #expect(run.termination == .exited(0), "\(run.stderrText)")
        let report = try Self.report(json)
        #expect(report["viewers_started"] as? Int == 5 && report["viewers_never_played"] as? Int == 0 && report["stalls"] as? Int == 0)
        #expect((report["content_errors"] as? [String: Int]) == [:])
        let kinds = try #require(report["by_kind"] as? [String: [String: Any]])
        var total = 0
        // 6 s of 2 s segments: the manifest is the "master", then no playlist, the video's and the
        // audio's init, three video segments and the three audio segments of the same time.
        for (kind, each) in [("master", 1), ("playlist", 0), ("init", 2), ("segment", 3), ("audio", 3)] {
            let requests = kinds[kind]?["requests"] as? Int ?? -1
            #expect(requests == 5 * each, "\(kind): \(requests)")
            total += requests
        }
        #expect(Int(try origin.metric(ServerProcess.responses(200)) - before) == total)
    }

    @Test("--compare: the same viewers against marquee origin (A) and nginx (B) in one run; both reports complete, 0 errors, B's requests are nginx's, and B/A ratios")
    func compareOriginAndNginx() throws {
        let fixtures = try MediaFixtures.shared()
        let origin = try ServerProcess(root: fixtures.root, threads: 1)
        defer { origin.stop() }
        let nginx = try NginxOrigin(root: fixtures.root)
        defer { nginx.stop() }
        let nginxBefore = nginx.requests.count
        let json = Scratch.newFile("loadtest-compare.json")
        let run = try Self.loadtest([
            "--viewers", "8", "--ramp", "1", "--duration", "10", "--json", json.path, origin.url(MediaFixtures.hlsMaster), "--compare", nginx.url + MediaFixtures.hlsMaster,
        ])
        #expect(run.termination == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText.contains("B/A"), "\(run.stdoutText)")
        let report = try Self.report(json)
        #expect(report["compare"] as? Bool == true)
        for side in ["a", "b"] {
            let each = try #require(report[side] as? [String: Any], "\(side)")
            #expect(each["viewers_started"] as? Int == 8 && each["stalls"] as? Int == 0, "\(side): \(each)")
            let kinds = try #require(each["by_kind"] as? [String: [String: Any]])
            #expect((kinds["segment"]?["statuses"] as? [String: Int]) == ["200": 24], "\(side)")
        }
        let b = try #require(report["b"] as? [String: Any])
        #expect(nginx.requests.count - nginxBefore == b["requests"] as? Int)
        let ratios = try #require(report["ratios"] as? [String: [String: Any]])
        #expect((ratios["viewers played"]?["ratio"] as? Double) == 1.0)
        #expect(ratios["segment latency µs p99"]?["b"] is Double)
    }

    @Test("--raw --compare alternates A and B in three rounds and reports both and their ratio")
    func rawCompare() throws {
        let fixtures = try MediaFixtures.shared()
        let origin = try ServerProcess(root: fixtures.root, threads: 1)
        defer { origin.stop() }
        let nginx = try NginxOrigin(root: fixtures.root)
        defer { nginx.stop() }
        let json = Scratch.newFile("loadtest-raw-compare.json")
        let run = try Self.loadtest([
            "--raw", "--connections", "4", "--duration", "1.5", "--json", json.path, origin.url(MediaFixtures.small), "--compare", nginx.url + MediaFixtures.small,
        ])
        #expect(run.termination == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText.contains("3 rounds") && run.stdoutText.contains("B/A"), "\(run.stdoutText)")
        let report = try Self.report(json)
        let a = try #require(report["a"] as? [String: Any])
        let b = try #require(report["b"] as? [String: Any])
        #expect((a["requests"] as? Int ?? 0) > 0 && (b["requests"] as? Int ?? 0) > 0)
        #expect((a["statuses"] as? [String: Int])?.keys.sorted() == ["200"] && (b["statuses"] as? [String: Int])?.keys.sorted() == ["200"])
        let ratios = try #require(report["ratios"] as? [String: [String: Any]])
        #expect((ratios["requests/s"]?["ratio"] as? Double ?? 0) > 0)
    }

    @Test("--pause/--seek/--abandon: viewers behave as scripted and the report counts it; none of it is a failure")
    func behaviours() throws {
        let fixtures = try MediaFixtures.shared()
        let origin = try ServerProcess(root: fixtures.root, threads: 1)
        defer { origin.stop() }
        let json = Scratch.newFile("loadtest-behaviours.json")
        let run = try Self.loadtest([
            "--viewers", "20", "--ramp", "1", "--duration", "12", "--pause", "50", "--seek", "50", "--abandon", "50", "--seed", "3", "--json", json.path,
            origin.url(MediaFixtures.hlsMaster),
        ])
        #expect(run.termination == .exited(0), "\(run.stderrText)")
        let report = try Self.report(json)
        let started = report["viewers_started"] as? Int ?? -1
        let early = report["abandoned_before_start"] as? Int ?? -1
        #expect(report["viewers_never_played"] as? Int == 0 && started + early == 20, "\(report)")
        #expect((report["abandoned"] as? Int ?? 0) > 0 && (report["pauses"] as? Int ?? 0) + (report["seeks"] as? Int ?? 0) > 0, "\(report)")
        let kinds = try #require(report["by_kind"] as? [String: [String: Any]])
        #expect((kinds["segment"]?["statuses"] as? [String: Int])?.keys.sorted() == ["200"])
        #expect(run.stdoutText.contains("behaviours"), "\(run.stdoutText)")
        let bad = try Self.loadtest(["--viewers", "2", "--pause", "120", origin.url(MediaFixtures.hlsMaster)])
        #expect(bad.termination == .exited(64) && bad.stderrText.contains("--pause is a percentage"), "\(bad.stderrText)")
    }

    @Test("HLS with a separate audio track (EXT-X-MEDIA): each video segment is followed by the audio segments of its media time, whatever their durations")
    func separateAudio() throws {
        let root = try Scratch.newDirectory("audio-title")
        let title = root.appendingPathComponent("show")  // not "t": /t/ is the signed-URL route
        for folder in ["v", "a"] { try FileManager.default.createDirectory(at: title.appendingPathComponent(folder), withIntermediateDirectories: true) }
        try """
            #EXTM3U
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=YES,URI="a/index.m3u8"
            #EXT-X-STREAM-INF:BANDWIDTH=400000,AUDIO="aud"
            v/index.m3u8
            """.write(to: title.appendingPathComponent("master.m3u8"), atomically: true, encoding: .utf8)
        // Video in 2 s segments, audio in 3 s ones: 6 s of each.
        var video = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"
        for k in 0..<3 {
            video += "#EXTINF:2.0,\nseg\(k).m4s\n"
            try Data(repeating: 1, count: 20_000).write(to: title.appendingPathComponent("v/seg\(k).m4s"))
        }
        var audio = "#EXTM3U\n#EXT-X-TARGETDURATION:3\n"
        for k in 0..<2 {
            audio += "#EXTINF:3.0,\nseg\(k).m4s\n"
            try Data(repeating: 2, count: 3_000).write(to: title.appendingPathComponent("a/seg\(k).m4s"))
        }
        try (video + "#EXT-X-ENDLIST\n").write(to: title.appendingPathComponent("v/index.m3u8"), atomically: true, encoding: .utf8)
        try (audio + "#EXT-X-ENDLIST\n").write(to: title.appendingPathComponent("a/index.m3u8"), atomically: true, encoding: .utf8)
        let origin = try ServerProcess(root: root, threads: 1)
        defer { origin.stop() }
        let json = Scratch.newFile("loadtest-audio.json")
        let run = try Self.loadtest(["--viewers", "3", "--duration", "10", "--json", json.path, origin.url("/show/master.m3u8")])
        #expect(run.termination == .exited(0), "\(run.stderrText)")
        let report = try Self.report(json)
        #expect(report["viewers_started"] as? Int == 3 && report["stalls"] as? Int == 0, "\(report)")
        let kinds = try #require(report["by_kind"] as? [String: [String: Any]])
        // Audio [0,3) goes with video [0,2), audio [3,6) with video [2,4); video [4,6) needs no more.
        for (kind, each) in [("master", 1), ("playlist", 2), ("segment", 3), ("audio", 2)] {
            #expect(kinds[kind]?["requests"] as? Int == 3 * each, "\(kind): \(String(describing: kinds[kind]))")
        }
    }
}
