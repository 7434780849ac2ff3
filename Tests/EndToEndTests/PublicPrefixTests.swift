import Foundation
import MarqueeTestSupport
import Testing

/// `tokens.public_prefixes`: a web app's files (the player page) served without a token by a
/// gateway that requires signed URLs for everything else; a folder's address serves its
/// index.html.
@Suite("Public prefixes")
struct PublicPrefixTests {
    @Test("Pages under a public prefix need no token; media still does; folders serve index.html")
    func publicPages() throws {
        let root = try Scratch.newDirectory("site-root")
        let files = FileManager.default
        try files.createDirectory(at: root.appendingPathComponent("player"), withIntermediateDirectories: true)
        try files.createDirectory(at: root.appendingPathComponent("titles/demo"), withIntermediateDirectories: true)
        try "<!doctype html><title>player</title>".write(to: root.appendingPathComponent("player/index.html"), atomically: true, encoding: .utf8)
        try "console.log(1)".write(to: root.appendingPathComponent("player/player.js"), atomically: true, encoding: .utf8)
        try "body{}".write(to: root.appendingPathComponent("player/player.css"), atomically: true, encoding: .utf8)
        try "#EXTM3U\n".write(to: root.appendingPathComponent("titles/demo/master.m3u8"), atomically: true, encoding: .utf8)
        try "secret".write(to: root.appendingPathComponent("private.html"), atomically: true, encoding: .utf8)
        let keys = try Scratch.newDirectory("keys")
        try SignedGateway.writeKey("k1", in: keys)
        let config = Scratch.newFile("config.yaml")
        try "tokens:\n  public_prefixes: [\"/player/\"]\n".write(to: config, atomically: true, encoding: .utf8)
        let server = try ServerProcess(root: root, configFile: config, arguments: ["--token-key-dir", keys.path, "--require-token"])
        defer { server.stop() }

        let page = try Curl.fetch(server.url("/player/"))
        #expect(page.status == 200)
        #expect(page.header("content-type") == "text/html; charset=utf-8")
        #expect(String(decoding: page.body, as: UTF8.self).contains("<title>player</title>"))
        #expect(try Curl.fetch(server.url("/player/index.html")).status == 200)
        let script = try Curl.fetch(server.url("/player/player.js"))
        #expect(script.status == 200)
        #expect(script.header("content-type") == "text/javascript; charset=utf-8")
        #expect(try Curl.fetch(server.url("/player/player.css")).header("content-type") == "text/css; charset=utf-8")
        #expect(try Curl.fetch(server.url("/player/missing.js")).status == 404)
        // Everything else still needs a signed URL.
        #expect(try Curl.fetch(server.url("/titles/demo/master.m3u8")).status == 403)
        #expect(try Curl.fetch(server.url("/private.html")).status == 403)
        #expect(try Curl.fetch(server.url("/")).status == 403)
        #expect(try Curl.fetch(server.url("/playerx/index.html")).status == 403)
        #expect(try Curl.fetch(server.url("/player")).status == 403)
        // A bad token is still refused, public or not.
        #expect(try Curl.fetch(server.url("/player/index.html?token=v1.bad.bad")).status == 403)
    }

    @Test("A public prefix that would expose media or the services is refused at start, naming the setting")
    func refusesMediaPrefixes() throws {
        for prefix in ["/titles/", "/t/", "/api/", "/", "player/", "/a b/"] {
            let config = Scratch.newFile("config.yaml")
            try "tokens:\n  public_prefixes: [\"\(prefix)\"]\n".write(to: config, atomically: true, encoding: .utf8)
            let root = try Scratch.newDirectory("root")
            let result = try Tool.run(
                try MarqueeBinary.locate().path, ["origin", "--root", root.path, "--listen", "127.0.0.1:0", "--admin", "off", "--config", config.path],
                timeout: .seconds(20))
            #expect(result.termination != .exited(0), "\(prefix) was accepted")
            #expect(result.stderrText.contains("tokens.public_prefixes"), "\(prefix): \(result.stderrText)")
        }
    }
}
