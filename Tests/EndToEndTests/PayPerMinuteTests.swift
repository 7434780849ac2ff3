import Foundation
import Glibc
import MarqueeTestSupport
import Testing

/// Paying per minute, end to end on `marquee dev`: the gateway writes a delivery record per
/// response, billing meters the media time delivered from the package's own playlists, charges
/// each minute once, and revokes the session on the gateway when the money runs out.
@Suite("Pay per minute (marquee dev)", .serialized)
struct PayPerMinuteTests {
    /// A test card of `seconds` with a tone, made with ffmpeg's CLI and packaged by `marquee
    /// package` into `folder` (one 180p rendition, 2-second segments).
    static func packageTestCard(seconds: Int, into folder: URL) throws {
        let work = try Scratch.newDirectory("test-card")
        let source = work.appendingPathComponent("source.mp4")
        let made = try Tool.run(
            "/usr/bin/ffmpeg",
            ["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10", "-f", "lavfi", "-i",
             "sine=frequency=440:sample_rate=48000", "-t", "\(seconds)", "-c:v", "libx264", "-preset", "ultrafast", "-g", "20", "-c:a", "aac",
             "-shortest", source.path], timeout: .seconds(300))
        #expect(made.termination == .exited(0), "ffmpeg could not make the source: \(made.stderrText)")
        let packaged = try Tool.run(
            try MarqueeBinary.locate().path,
            ["package", source.path, "--out", folder.path, "--ladder", "180", "--segment", "2", "--preset", "ultrafast"], timeout: .seconds(600))
        #expect(packaged.termination == .exited(0), "marquee package failed: \(packaged.stderrText)")
    }

    /// A 4-minute title of 2-second segments, made with ffmpeg's CLI and `marquee package` and
    /// attached by its publisher: long enough to run out of money in.
    static func longTitle(base: String, data: URL, publisherToken: String, price: Int) throws -> String {
        let created = try JSONCall.send(
            "POST", base + "/api/catalog/titles", token: publisherToken,
            json: ["name": "Four minutes", "description": "A long test card", "genres": ["Test"], "price_per_minute": price, "currency": "EUR"])
        #expect(created.status == 201, "\(created.body)")
        let titleID = try #require(created.body["id"] as? String)
        let version = "long1"
        try packageTestCard(seconds: 240, into: data.appendingPathComponent("media/titles/\(titleID)/\(version)"))
        let attached = try JSONCall.send(
            "PUT", base + "/api/catalog/titles/\(titleID)/package", token: publisherToken,
            json: ["package_version": version, "duration_seconds": 240,
                   "renditions": [["name": "180p", "width": 320, "height": 180, "bandwidth": 300_000, "codecs": "avc1.42c00d,mp4a.40.2"]]])
        #expect(attached.status == 200, "\(attached.body)")
        let published = try JSONCall.send("POST", base + "/api/catalog/titles/\(titleID)/publish", token: publisherToken)
        #expect(published.status == 200, "\(published.body)")
        return titleID
    }

    static func signIn(_ base: String, _ email: String, _ password: String) throws -> String {
        let login = try JSONCall.send("POST", base + "/api/auth/login", json: ["email": email, "password": password])
        return try #require(login.body["access_token"] as? String, "cannot sign in as \(email): \(login.body)")
    }

    static func newViewer(_ base: String, _ email: String) throws -> (token: String, password: String) {
        let password = "a long enough passphrase \(UUID().uuidString)"
        let registered = try JSONCall.send("POST", base + "/api/auth/register", json: ["email": email, "password": password])
        #expect(registered.status == 201, "\(registered.body)")
        return (try signIn(base, email, password), password)
    }

    static func balance(_ base: String, _ token: String) throws -> Int {
        let wallet = try JSONCall.send("GET", base + "/api/billing/wallet?currency=EUR", token: token)
        return wallet.body["balance"] as? Int ?? -1
    }

    @Test("A viewer with funds for 3 minutes is cut off with 402 after minute 3, billed exactly 3 minutes, balance 0; a viewer with no money gets 402 at once; a greedy client gets at most a minute past what it paid")
    func runsOutOfMoney() throws {
        let data = try Scratch.newDirectory("pay-data")
        let port = try RedisServer.freePort()
        let base = "http://127.0.0.1:\(port)"
        let dev = try DevPlatformTests.DevProcess(data: data, port: port, extra: ["--demo-seconds", "10"])
        _ = try #require(dev.line("playlist", timeout: .seconds(600)), "marquee dev did not come up: \(dev.output.text)")
        let publisherPassword = try #require(DevPlatformTests.value(after: "publisher: publisher@demo.marquee password ", in: dev.output.text))
        let publisher = try Self.signIn(base, "publisher@demo.marquee", publisherPassword)
        let price = 2  // cents per minute
        let titleID = try Self.longTitle(base: base, data: data, publisherToken: publisher, price: price)

        // No money: refused before any URL is minted, with the shortfall named.
        let brokeEmail = "broke-\(UUID().uuidString.prefix(8))@example.com"
        let broke = try Self.newViewer(base, brokeEmail)
        let refused = try JSONCall.send("POST", base + "/api/playback/sessions", token: broke.token, json: ["title_id": titleID])
        #expect(refused.status == 402, "\(refused.body)")
        #expect(refused.raw.header("Content-Type")?.hasPrefix("application/problem+json") == true)

        // The same viewer on the player page: the balance, the 402 explained, add funds, play.
        try FileManager.default.createDirectory(at: DevPlatformTests.outputFolder, withIntermediateDirectories: true)
        let screenshot = DevPlatformTests.outputFolder.appendingPathComponent("pay-per-minute.png")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts/pay_in_browser.py")
        let browser = try Tool.run(
            try PythonEnvironment.python().path, [script.path, base + "/player/", brokeEmail, broke.password, titleID, screenshot.path],
            timeout: .seconds(180))
        #expect(browser.termination == .exited(0), "the pay flow failed in Chromium: \(browser.stderrText) \(browser.stdoutText)")
        let page = (try? JSONSerialization.jsonObject(with: Data(browser.stdoutText.utf8))) as? [String: Any] ?? [:]
        #expect((page["card_meta"] as? String)?.contains("/min") == true, "the price is not on the title card: \(page)")
        #expect((page["balance_before"] as? String)?.contains("0.00") == true, "\(page)")
        #expect((page["deposit_label"] as? String)?.contains("5.00") == true, "\(page)")
        #expect((page["balance"] as? String)?.contains("4.9") == true, "a minute held from the 5.00 deposit: \(page)")

        // Funds for exactly three minutes (self-service deposits are on in marquee dev).
        let viewer = try Self.newViewer(base, "three-\(UUID().uuidString.prefix(8))@example.com").token
        let deposit = try JSONCall.send(
            "POST", base + "/api/billing/deposits", token: viewer, json: ["amount": 3 * price, "currency": "EUR"],
            headers: ["Idempotency-Key: three-minutes"])
        #expect(deposit.status == 201, "\(deposit.body)")
        #expect(try Self.balance(base, viewer) == 3 * price)
        let session = try JSONCall.send("POST", base + "/api/playback/sessions", token: viewer, json: ["title_id": titleID])
        #expect(session.status == 201, "\(session.body)")
        let sessionID = try #require(session.body["id"] as? String)
        let playlist = try #require(session.body["hls_url"] as? String)

        // ffmpeg plays at three times real time until the gateway refuses it.
        _ = try Tool.run(
            "/usr/bin/ffmpeg", ["-v", "error", "-nostdin", "-readrate", "3", "-i", playlist, "-map", "0", "-c", "copy", "-f", "null", "-"],
            timeout: .seconds(300))

        var billed: [String: Any] = [:]
        let revoked = waitUntil(timeout: .seconds(60), interval: .milliseconds(200)) {
            billed = (try? JSONCall.send("GET", base + "/api/billing/sessions/\(sessionID)", token: viewer).body) ?? [:]
            return billed["state"] as? String == "revoked"
        }
        #expect(revoked, "the session was not revoked: \(billed)")
        #expect(billed["billed_minutes"] as? Int == 3, "\(billed)")
        #expect(billed["charged"] as? Int == 3 * price, "\(billed)")
        let covered = billed["covered_seconds"] as? Double ?? Double(billed["covered_seconds"] as? Int ?? 0)
        #expect(covered > 180 && covered <= 240, "covered \(covered) s: at most one minute past the three paid")
        print("pay-per-minute: \(covered) s of media delivered when the session was cut at 180 s paid")
        #expect(try Self.balance(base, viewer) == 0)

        // Every later media request of the session is refused with 402, the playlist included.
        let again = try Curl.fetch(playlist)
        #expect(again.status == 402, "the revoked session's playlist answered \(again.status)")

        // A greedy client with funds for one minute: it takes the first 50 s, idles until the
        // gateway's pacing forgives it a full burst, then fetches the rest with 16 connections as
        // fast as it is answered. It still gets at most one minute past what it paid.
        let greedy = try Self.newViewer(base, "greedy-\(UUID().uuidString.prefix(8))@example.com").token
        let greedyDeposit = try JSONCall.send(
            "POST", base + "/api/billing/deposits", token: greedy, json: ["amount": price, "currency": "EUR"],
            headers: ["Idempotency-Key: one-minute"])
        #expect(greedyDeposit.status == 201, "\(greedyDeposit.body)")
        let greedySession = try JSONCall.send("POST", base + "/api/playback/sessions", token: greedy, json: ["title_id": titleID])
        #expect(greedySession.status == 201, "\(greedySession.body)")
        let greedyID = try #require(greedySession.body["id"] as? String)
        let greedyPlaylist = try #require(greedySession.body["hls_url"] as? String)
        let client = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts/greedy_client.py")
        let run = try Tool.run(try PythonEnvironment.python().path, [client.path, greedyPlaylist, "50", "6", "16"], timeout: .seconds(300))
        #expect(run.termination == .exited(0), "the greedy client failed: \(run.stderrText)")
        let taken = (try? JSONSerialization.jsonObject(with: Data(run.stdoutText.utf8))) as? [String: Any] ?? [:]
        let takenSeconds = taken["covered_seconds"] as? Double ?? -1
        let statuses = taken["statuses"] as? [String: Int] ?? [:]
        print("pay-per-minute: a greedy client paid for 60 s and received \(takenSeconds) s of media: \(taken)")
        #expect(takenSeconds >= 60 && takenSeconds <= 120, "paid for 60 s, received \(takenSeconds) s: \(taken)")
        #expect((statuses["402"] ?? 0) > 0, "the greedy client was never cut off: \(taken)")
        #expect(statuses["429"] == nil, "pacing delays, it does not refuse: \(taken)")
        var greedyBill: [String: Any] = [:]
        #expect(waitUntil(timeout: .seconds(60), interval: .milliseconds(200)) {
            greedyBill = (try? JSONCall.send("GET", base + "/api/billing/sessions/\(greedyID)", token: greedy).body) ?? [:]
            return greedyBill["state"] as? String == "revoked"
        }, "\(greedyBill)")
        #expect(greedyBill["billed_minutes"] as? Int == 1, "\(greedyBill)")
        let meteredGreedy = greedyBill["covered_seconds"] as? Double ?? Double(greedyBill["covered_seconds"] as? Int ?? 0)
        #expect(meteredGreedy > 60 && meteredGreedy <= 120, "billing saw \(meteredGreedy) s delivered: \(greedyBill)")
        #expect(try Self.balance(base, greedy) == 0)

        #expect(dev.interrupt(timeout: .seconds(30)) == 0, "did not stop cleanly: \(dev.output.text)")
    }
}
