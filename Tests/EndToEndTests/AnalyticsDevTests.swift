import Foundation
import MarqueeTestSupport
import Testing

/// Analytics as `marquee dev` runs it: the gateway's delivery log read on analytics' own
/// position, viewers learned from billing, the API behind the gateway, the dashboard page, and
/// the player's "continue watching" row.
@Suite("Analytics on marquee dev", .serialized)
struct AnalyticsDevTests {
    @Test("A viewer watches 40 s: within seconds the title shows the view and ~40 s watched, the dashboard draws it, the player offers to resume")
    func watchAndCount() throws {
        let data = try Scratch.newDirectory("dev-analytics")
        let port = try RedisServer.freePort()
        let base = "http://127.0.0.1:\(port)"
        let dev = try DevPlatformTests.DevProcess(data: data, port: port)
        let playlist = try #require(dev.line("playlist", timeout: .seconds(600)), "no playlist line: \(dev.output.text)")
        #expect(dev.line("dashboard", timeout: .seconds(5)) == "\(base)/dashboard/ (sign in as the publisher)")
        let text = dev.output.text
        let viewerPassword = try #require(DevPlatformTests.value(after: "viewer:    viewer@demo.marquee password ", in: text))
        let publisherPassword = try #require(DevPlatformTests.value(after: "publisher: publisher@demo.marquee password ", in: text))
        let titleID = try String(contentsOf: data.appendingPathComponent("demo-title-id"), encoding: .utf8).trimmingCharacters(in: .newlines)

        // The viewer's session dev printed, watched for 40 s in real time.
        let watched = try Tool.run("/usr/bin/ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", playlist, "-t", "40", "-f", "null", "-"], timeout: .seconds(180))
        #expect(watched.termination == .exited(0), "ffmpeg: \(watched.stderrText)")

        let publisher = try #require(
            try JSONCall.send("POST", "\(base)/api/auth/login", json: ["email": "publisher@demo.marquee", "password": publisherPassword]).body["access_token"] as? String)
        var figures: [String: Any] = [:]
        let counted = waitUntil(timeout: .seconds(30), interval: .milliseconds(250)) {
            figures = (try? JSONCall.send("GET", "\(base)/api/analytics/titles/\(titleID)", token: publisher))?.body ?? [:]
            return (figures["views"] as? Int ?? 0) >= 1 && (figures["watch_seconds"] as? Double ?? 0) >= 40 && figures["unique_viewers"] as? Int == 1
        }
        #expect(counted, "the title's analytics: \(figures)")
        // ffmpeg holds a segment or two beyond what it has played (4-second segments).
        #expect((figures["watch_seconds"] as? Double ?? 0) <= 52, "\(figures)")
        #expect(figures["views"] as? Int == 1, "\(figures)")
        #expect(figures["startup_ms_avg"] is Double, "\(figures)")
        #expect((figures["revenue"] as? [[String: Any]])?.first?["minutes"] as? Int == 1, "\(figures)")

        // A viewer cannot read a title's analytics; their own history says where to resume.
        let viewer = try #require(
            try JSONCall.send("POST", "\(base)/api/auth/login", json: ["email": "viewer@demo.marquee", "password": viewerPassword]).body["access_token"] as? String)
        #expect(try JSONCall.send("GET", "\(base)/api/analytics/titles/\(titleID)", token: viewer).status == 403)
        let history = try JSONCall.send("GET", "\(base)/api/analytics/me/history", token: viewer).body["items"] as? [[String: Any]] ?? []
        let resume = try #require(history.first { $0["title_id"] as? String == titleID }, "\(history)")
        let position = try #require(resume["position_seconds"] as? Double)
        #expect(position >= 40 && position <= 52, "\(resume)")

        // The dashboard in Chromium, signed in as the publisher: the title with its view.
        try FileManager.default.createDirectory(at: DevPlatformTests.outputFolder, withIntermediateDirectories: true)
        let screenshot = DevPlatformTests.outputFolder.appendingPathComponent("dev-dashboard.png")
        let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts")
        let dashboard = try Tool.run(
            try PythonEnvironment.python().path,
            // Options first, then `--`: a generated password may start with "-".
            [scripts.appendingPathComponent("dashboard_in_browser.py").path, "--expect-title", titleID, "--range", "hour", "--timeout", "60", "--",
             base, "publisher@demo.marquee", publisherPassword, screenshot.path],
            timeout: .seconds(180))
        #expect(dashboard.termination == .exited(0), "the dashboard: \(dashboard.stderrText) \(dashboard.stdoutText)")
        let drawn = (try? JSONSerialization.jsonObject(with: Data(dashboard.stdoutText.utf8))) as? [String: Any] ?? [:]
        #expect((drawn["views"] as? Int ?? 0) >= 1, "\(drawn)")
        #expect((drawn["watch_seconds"] as? Double ?? 0) >= 40, "\(drawn)")
        #expect((drawn["top_titles"] as? [String])?.contains(titleID) == true, "\(drawn)")
        #expect((drawn["console_errors"] as? [Any])?.isEmpty == true, "\(drawn)")
        #expect(FileManager.default.fileExists(atPath: screenshot.path))

        // The player page offers to continue, and resumes there.
        let resumed = try Tool.run(
            try PythonEnvironment.python().path,
            [scripts.appendingPathComponent("continue_watching_in_browser.py").path, "--timeout", "60", "--", base, "viewer@demo.marquee", viewerPassword, titleID],
            timeout: .seconds(180))
        #expect(resumed.termination == .exited(0), "continue watching: \(resumed.stderrText) \(resumed.stdoutText)")
        let player = (try? JSONSerialization.jsonObject(with: Data(resumed.stdoutText.utf8))) as? [String: Any] ?? [:]
        #expect((player["current_time"] as? Double ?? 0) >= position - 2, "\(player)")

        // The pipeline's own metrics on the analytics service.
        let service = try #require(DevPlatformTests.value(after: "analytics: ", in: text)?.split(separator: " ").first.map(String.init))
        let metrics = try Curl.fetch(service + "/metrics")
        let exposition = metrics.bodyText
        for name in ["marquee_analytics_records_total", "marquee_analytics_lag_seconds", "marquee_analytics_batch_seconds"] {
            #expect(exposition.contains(name), "no \(name) in /metrics")
        }
        #expect(dev.interrupt(timeout: .seconds(30)) == 0, "did not stop cleanly: \(dev.output.text)")
    }
}
