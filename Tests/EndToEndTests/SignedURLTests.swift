import Foundation
import Glibc
import MarqueeTestSupport
import Testing

/// A gateway that requires signed URLs, with keys in a folder, and `marquee sign` as the backend
/// that mints them.
struct SignedGateway {
    let keys: URL
    let server: ServerProcess

    init(extra: [String] = [], keyIDs: [String] = ["k1"], configFile: URL? = nil) throws {
        let fixtures = try MediaFixtures.shared()
        keys = try Scratch.newDirectory("keys")
        for id in keyIDs { try Self.writeKey(id, in: keys) }
        server = try ServerProcess(
            root: fixtures.root, configFile: configFile, arguments: ["--token-key-dir", keys.path, "--require-token"] + extra)
    }

    static func writeKey(_ id: String, in folder: URL) throws {
        let secret = (0..<48).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! }
        try (String(secret) + "\n").write(to: folder.appendingPathComponent("\(id).key"), atomically: true, encoding: .utf8)
    }

    /// `marquee sign ... --token-only`.
    func token(_ path: String = "/titles/demo/", key: String = "k1", _ options: [String] = []) throws -> String {
        try Self.sign(["--key-id", key, "--secret-file", keys.appendingPathComponent("\(key).key").path, "--token-only", "--scope", path] + options + ["/x"])
    }

    static func sign(_ arguments: [String]) throws -> String {
        let result = try Tool.run(try MarqueeBinary.locate().path, ["sign"] + arguments)
        guard result.termination == .exited(0) else { throw ToolError(description: "marquee sign failed: \(result.stderrText)") }
        return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func pathURL(_ token: String, _ path: String) -> String { server.url("/t/\(token)\(path)") }
    func queryURL(_ token: String, _ path: String) -> String { server.url(path + "?token=" + token) }

    func status(_ url: String, _ options: [String] = []) throws -> Int { try Curl.fetch(url, options).status }
}

@Suite("Signed URLs")
struct SignedURLTests {
    @Test("ffmpeg plays the whole HLS and DASH title through path-mode URLs")
    func pathModePlays() throws {
        let gateway = try SignedGateway()
        defer { gateway.server.stop() }
        let token = try gateway.token("/titles/demo/1/")
        for entry in [MediaFixtures.hlsMaster, MediaFixtures.dashManifest] {
            let played = try PlaybackTests.decode(gateway.pathURL(token, entry))
            #expect(played.termination == .exited(0), "ffmpeg failed on \(entry): \(played.stderr)")
            #expect(abs(played.frames(stream: 0) - MediaFixtures.videoFrames) <= 2)
        }
        #expect(try gateway.server.metric(ServerProcess.responses(403)) == 0)
    }

    @Test("ffmpeg plays the whole HLS and DASH title through query-mode URLs; every URI in the rewritten playlists carries the token")
    func queryModePlays() throws {
        let gateway = try SignedGateway()
        defer { gateway.server.stop() }
        let token = try gateway.token("/titles/demo/")
        for entry in [MediaFixtures.hlsMaster, MediaFixtures.dashManifest] {
            let played = try PlaybackTests.decode(gateway.queryURL(token, entry))
            #expect(played.termination == .exited(0), "ffmpeg failed on \(entry): \(played.stderr)")
            #expect(abs(played.frames(stream: 0) - MediaFixtures.videoFrames) <= 2)
        }
        let media = try Curl.fetch(gateway.queryURL(token, MediaFixtures.hlsMedia))
        #expect(media.status == 200)
        #expect(media.header("cache-control") == "private, no-cache")
        let uris = media.bodyText.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }
        #expect(!uris.isEmpty)
        for uri in uris { #expect(uri.hasSuffix("?token=" + token), "\(uri) does not carry the token") }
        #expect(media.bodyText.contains("#EXT-X-MAP:URI=\"init.mp4?token=\(token)\""))
        let mpd = try Curl.fetch(gateway.queryURL(token, MediaFixtures.dashManifest))
        #expect(mpd.bodyText.contains("media=\"chunk-stream$RepresentationID$-$Number%05d$.m4s?token=\(token)\""))
        #expect(try gateway.server.metric(ServerProcess.responses(403)) == 0)
    }

    @Test("Missing, forged, tampered, truncated and re-encoded tokens are refused with 403")
    func forgeriesAreRefused() throws {
        let gateway = try SignedGateway()
        defer { gateway.server.stop() }
        let good = try gateway.token("/titles/demo/")
        let segment = MediaFixtures.hlsSegment
        #expect(try gateway.status(gateway.pathURL(good, segment)) == 200)
        #expect(try gateway.status(gateway.server.url(segment)) == 403)

        // Signed by a key the gateway does not hold, under a known key id: forged.
        let otherKeys = try Scratch.newDirectory("other-keys")
        try SignedGateway.writeKey("k1", in: otherKeys)
        let forged = try SignedGateway.sign([
            "--key-id", "k1", "--secret-file", otherKeys.appendingPathComponent("k1.key").path, "--token-only", "--scope", "/", "/x",
        ])
        var refusals = [forged]
        var bytes = Array(good.utf8)
        bytes[10] = bytes[10] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        refusals.append(String(decoding: bytes, as: UTF8.self))  // tampered claims
        refusals.append(String(good.dropLast(5)))  // truncated
        refusals.append(good.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "=")  // standard base64
        refusals.append(good.replacingOccurrences(of: ".", with: "%2E"))  // percent-encoded separators
        refusals.append("v1.e30.AAAA")
        for token in refusals {
            let status = try gateway.status(gateway.pathURL(token, segment))
            #expect(status == 403 || status == 400, "token \(token) got \(status)")
            let query = try gateway.status(gateway.queryURL(token.replacingOccurrences(of: "+", with: "%2B"), segment))
            #expect(query == 403, "token \(token) in the query got \(query)")
        }
        let body = try Curl.fetch(gateway.pathURL(forged, segment)).bodyText
        #expect(body == "token signature does not match\n")
        #expect(try gateway.server.metric(#"marquee_policy_decisions_total{check="token",outcome="deny",reason="bad_signature"}"#) >= 2)
        #expect(try gateway.server.metric(#"marquee_policy_decisions_total{check="token",outcome="deny",reason="missing"}"#) == 1)
    }

    @Test("Unknown key 403, expired 410, not yet valid 403, another title 403, another client address 403")
    func claimsAreEnforced() throws {
        let gateway = try SignedGateway(keyIDs: ["k1", "k9"])
        defer { gateway.server.stop() }
        let segment = MediaFixtures.hlsSegment
        try FileManager.default.removeItem(at: gateway.keys.appendingPathComponent("k9.key"))
        gateway.server.signal(SIGHUP)
        let now = Int(Date().timeIntervalSince1970)
        let expired = try gateway.token("/titles/demo/", key: "k1", ["--expires", "\(now - 5)"])
        let notYet = try gateway.token("/titles/demo/", key: "k1", ["--not-before", "\(now + 600)"])
        let otherTitle = try gateway.token("/titles/other/")
        let otherAddress = try gateway.token("/titles/demo/", key: "k1", ["--ip", "203.0.113.0/24"])
        let ownAddress = try gateway.token("/titles/demo/", key: "k1", ["--ip", "127.0.0.1"])
        #expect(try gateway.status(gateway.pathURL(expired, segment)) == 410)
        #expect(try Curl.fetch(gateway.pathURL(expired, segment)).bodyText == "token expired; request a new URL\n")
        #expect(try gateway.status(gateway.pathURL(notYet, segment)) == 403)
        #expect(try gateway.status(gateway.pathURL(otherTitle, segment)) == 403)
        #expect(try gateway.status(gateway.pathURL(otherAddress, segment)) == 403)
        #expect(try gateway.status(gateway.pathURL(ownAddress, segment)) == 200)
        // The removed key: its tokens are unknown once the gateway has reloaded its folder.
        let k9 = try SignedGateway.sign([
            "--key-id", "k9", "--secret-file", gateway.keys.appendingPathComponent("k1.key").path, "--token-only", "--scope", "/", "/x",
        ])
        #expect(try waitUntil(timeout: .seconds(5)) { try gateway.status(gateway.pathURL(k9, segment)) == 403 })
        #expect(try Curl.fetch(gateway.pathURL(k9, segment)).bodyText == "token signed with an unknown key\n")
    }

    @Test("Traversal inside the scope is refused, in every spelling")
    func traversalIsRefused() throws {
        let gateway = try SignedGateway()
        defer { gateway.server.stop() }
        let token = try gateway.token("/titles/demo/1/")
        for path in [
            "/titles/demo/1/../../other/1/x.m4s", "/titles/demo/1/%2e%2e/%2E%2E/other/x", "/titles/demo/1/..%2fother", "/titles/demo/1/.%2e/x",
            "/titles/demo/1/%2fetc/passwd",
        ] {
            let status = try Curl.run(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--path-as-is", gateway.pathURL(token, path)]).stdoutText
            #expect(status == "400" || status == "403", "\(path) got \(status)")
        }
        // The token's own segment in the path cannot smuggle a different path either.
        let status = try Curl.run(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--path-as-is", gateway.server.url("/t/\(token)/../titles/demo/1/hls/seg_000.m4s")])
            .stdoutText
        #expect(status == "400" || status == "403")
    }

    @Test("A key added to the folder is accepted after SIGHUP without a restart (rotation)")
    func rotationWithoutRestart() throws {
        let gateway = try SignedGateway()
        defer { gateway.server.stop() }
        try SignedGateway.writeKey("k2", in: gateway.keys)
        let fresh = try gateway.token("/titles/demo/", key: "k2")
        gateway.server.signal(SIGHUP)
        #expect(try waitUntil(timeout: .seconds(5)) { try gateway.status(gateway.pathURL(fresh, MediaFixtures.hlsSegment)) == 200 })
        #expect(try gateway.status(gateway.pathURL(try gateway.token("/titles/demo/", key: "k1"), MediaFixtures.hlsSegment)) == 200)
        #expect(gateway.server.isRunning)
    }

    @Test("Hostile token bytes in the path and the query never get through and never hurt the gateway")
    func hostileTokens() throws {
        let gateway = try SignedGateway()
        defer { gateway.server.stop() }
        let good = try gateway.token("/titles/demo/")
        var random = SeededGenerator(seed: 0x7E57)
        let connection = try RawConnection(port: gateway.server.mediaPort)
        let alphabet = Array("ABCabc019-_.%~!$&'()*+,;=:@/?v1".utf8)
        for i in 0..<400 {
            var token = Array(good.utf8)
            switch i % 4 {
            case 0: token = (0..<Int.random(in: 0...120, using: &random)).map { _ in alphabet.randomElement(using: &random)! }
            case 1: token[Int.random(in: 0..<token.count, using: &random)] = alphabet.randomElement(using: &random)!
            case 2: token.insert(alphabet.randomElement(using: &random)!, at: Int.random(in: 0...token.count, using: &random))
            default: token.removeSubrange(Int.random(in: 0..<token.count, using: &random)...)
            }
            let text = String(decoding: token, as: UTF8.self)
            let target = i % 2 == 0 ? "/t/\(text)\(MediaFixtures.hlsSegment)" : "\(MediaFixtures.hlsSegment)?a=1&token=\(text)&b"
            try connection.send("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n")
            let response = try connection.readResponse()
            if text == good { continue }
            #expect([400, 403, 404, 410].contains(response.status), "\(target) got \(response.status)")
            if response.header("connection") == "close" { break }
        }
        #expect(gateway.server.isRunning)
        #expect(try gateway.status(gateway.pathURL(good, MediaFixtures.hlsSegment)) == 200)
    }
}
