import Foundation
import Glibc
import MarqueeTestSupport
import Synchronization
import Testing

/// The edge's fills against scripted upstreams, through a real `marquee edge`: what it stores,
/// what it refuses, when it fails over, how it keeps its connections, and that nothing but a whole
/// body ever becomes a cached file.
@Suite("Edge fills from scripted upstreams")
struct EdgeUpstreamTests {
    /// An edge serving public content (no token) from `upstreams`, with its cache in a scratch
    /// folder. One loop: each loop keeps its own connections, and the tests count them.
    struct PlainEdge {
        let cache: URL
        let server: ServerProcess

        init(_ upstreams: [String], config: String? = nil, extra: [String] = []) throws {
            cache = try Scratch.newDirectory("edge-cache")
            var configFile: URL?
            if let config {
                let file = Scratch.newFile("edge.yaml")
                try config.write(to: file, atomically: true, encoding: .utf8)
                configFile = file
            }
            server = try ServerProcess(
                role: "edge", root: cache, threads: 1, configFile: configFile, arguments: extra,
                serving: upstreams.flatMap { ["--upstream", $0] } + ["--cache-dir", cache.path])
        }

        func get(_ path: String) throws -> CurlResponse { try Curl.fetch(server.url(path), timeout: .seconds(20)) }

        /// The cached copy of `key`, if any.
        func cached(_ key: String) -> [UInt8]? {
            FileManager.default.contents(atPath: cache.appendingPathComponent("objects/" + key).path).map(Array.init)
        }

        /// Files of fills in progress (or left behind).
        var temporaryFiles: [String] { (try? FileManager.default.contentsOfDirectory(atPath: cache.appendingPathComponent("tmp").path)) ?? [] }
    }

    /// An address nobody listens on: bind a port, note it, close it.
    static func deadURL() -> String {
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, length) == 0 && getsockname(probe, $0, &length) == 0 }
        }
        close(probe)
        return "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
    }

    @Test("a 200 is stored whole with the upstream's Last-Modified; the GET carries the edge's signature and no token; the next miss reuses the connection")
    func storesAndSigns() throws {
        let body = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let upstream = try ScriptedUpstream { _ in
            .init(bytes: ScriptedUpstream.response(200, body, extra: ["Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT"]))
        }
        let edgeKey = Scratch.newFile("edge-key")
        try "a shared edge key of at least thirty-two bytes\n".write(to: edgeKey, atomically: true, encoding: .utf8)
        let edge = try PlainEdge([upstream.url], extra: ["--upstream-key-file", edgeKey.path])
        defer { edge.server.stop() }

        let first = try edge.get("/titles/a%20b/v1/seg-1.m4s")
        #expect(first.status == 200 && Array(first.body) == body)
        #expect(edge.cached("titles/a b/v1/seg-1.m4s") == body)
        let path = edge.cache.appendingPathComponent("objects/titles/a b/v1/seg-1.m4s").path
        let modified = try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date
        #expect(modified == Date(timeIntervalSince1970: 1_796_119_200))
        #expect(first.header("Last-Modified") == "Tue, 01 Dec 2026 10:00:00 GMT")

        #expect(try edge.get("/titles/a%20b/v1/seg-2.m4s").status == 200)
        #expect(upstream.connections == 1, "the second fill reused the kept-alive connection")
        #expect(Array(try edge.get("/titles/a%20b/v1/seg-1.m4s").body) == body)
        #expect(upstream.requests.count == 2, "a hit asks nothing upstream")

        let head = try #require(upstream.requests.first)
        #expect(head.hasPrefix("GET /titles/a%20b/v1/seg-1.m4s HTTP/1.1\r\n"))
        #expect(head.contains("Host: 127.0.0.1:\(upstream.port)\r\n"))
        #expect(head.contains("\r\nMarquee-Edge: "))
        #expect(!head.lowercased().contains("token"))
    }

    @Test("a stale copy is refreshed conditionally: a 304 serves the copy, renews it (the next request asks nothing), and keeps the connection")
    func conditionalRefresh() throws {
        let upstream = try ScriptedUpstream { head in
            head.contains("If-None-Match: \"v1\"\r\n")
                ? .init(bytes: Array("HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=30\r\n\r\n".utf8))
                : .init(bytes: ScriptedUpstream.response(200, Array("body".utf8), extra: ["ETag: \"v1\"", "Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT", "Cache-Control: max-age=0"]))
        }
        let edge = try PlainEdge([upstream.url], config: "edge:\n  stale_while_revalidate_s: 0\n")
        defer { edge.server.stop() }
        #expect(try edge.get("/k").bodyText == "body")
        // Stale at once (max-age=0): refreshed before it is served.
        let refreshed = try edge.get("/k")
        #expect(refreshed.status == 200 && refreshed.bodyText == "body")
        #expect(upstream.requests.count == 2)
        let conditional = try #require(upstream.requests.last)
        #expect(conditional.contains("If-None-Match: \"v1\"\r\n"))
        #expect(conditional.contains("If-Modified-Since: Tue, 01 Dec 2026 10:00:00 GMT\r\n"))
        #expect(try edge.get("/k").bodyText == "body")
        #expect(upstream.requests.count == 2, "the 304's max-age=30 renewed the copy")
        #expect(upstream.connections == 1, "the 304 kept the connection")
        #expect(edge.cached("k") == Array("body".utf8))
    }

    @Test("1xx interim answers are skipped and a chunked body is served and stored de-chunked")
    func chunked() throws {
        let upstream = try ScriptedUpstream { _ in
            .init(bytes: Array("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n".utf8))
        }
        let edge = try PlainEdge([upstream.url])
        defer { edge.server.stop() }
        let response = try edge.get("/x/y")
        #expect(response.status == 200 && response.bodyText == "hello world")
        #expect(edge.cached("x/y") == Array("hello world".utf8))
    }

    @Test("a body cut short, a malformed head or chunk, or a stalled upstream stores nothing, and the players are never sent a whole wrong body")
    func partialNeverStored() throws {
        let answers: [String: ScriptedUpstream.Answer] = [
            "/cut": .init(bytes: Array("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part".utf8), close: true),
            "/chunk": .init(bytes: Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbad\r\n".utf8), close: true),
            "/head": .init(bytes: Array("HTTP/9 200\r\n\r\n".utf8), close: true),
            "/stall": .init(bytes: [], stall: true),
        ]
        let upstream = try ScriptedUpstream { head in
            let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            return answers[path] ?? .init(bytes: ScriptedUpstream.response(404, []))
        }
        let edge = try PlainEdge([upstream.url], config: "cache:\n  fetch_timeout_ms: 700\n")
        defer { edge.server.stop() }
        for path in answers.keys.sorted() {
            let response = try edge.get(path)
            #expect(response.status != 200 || response.body.count < 100, "\(path): \(response.status)")
            if path == "/stall" { #expect(response.status == 504) }
            if path == "/chunk" || path == "/head" { #expect(response.status == 502) }
            #expect(edge.cached(String(path.dropFirst())) == nil, "\(path) was cached")
        }
        #expect(waitUntil(timeout: .seconds(10), interval: .milliseconds(20)) { edge.temporaryFiles.isEmpty }, "left in tmp: \(edge.temporaryFiles)")
        #expect(edge.server.isRunning)
    }

    @Test("404 and 410 are 404s; a 403 is the answer (502) without asking another upstream")
    func refusals() throws {
        let gone = try ScriptedUpstream { head in
            .init(bytes: ScriptedUpstream.response(head.hasPrefix("GET /a ") ? 404 : 410, Array("gone".utf8)))
        }
        let plain = try PlainEdge([gone.url])
        defer { plain.server.stop() }
        #expect(try plain.get("/a").status == 404)
        #expect(try plain.get("/b").status == 404)

        let forbidding = try ScriptedUpstream { _ in .init(bytes: ScriptedUpstream.response(403, Array("no".utf8))) }
        let other = try ScriptedUpstream { _ in .init(bytes: ScriptedUpstream.response(200, Array("yes".utf8))) }
        let edge = try PlainEdge([forbidding.url, other.url])
        defer { edge.server.stop() }
        var refused = 0
        for n in 0..<20 {
            let before = other.requests.count
            let response = try edge.get("/k\(n)")
            if other.requests.count == before {
                refused += 1
                #expect(response.status == 502)
            } else {
                #expect(response.bodyText == "yes")
            }
        }
        #expect(refused > 0)
        #expect(forbidding.requests.count == refused, "each 403 came from one request, with no failover")
    }

    @Test("a refused connection or a 5xx fails over to the next upstream and puts the failed one last for a while")
    func failover() throws {
        let failing = try ScriptedUpstream { _ in .init(bytes: ScriptedUpstream.response(503, Array("busy".utf8))) }
        let healthy = try ScriptedUpstream { _ in .init(bytes: ScriptedUpstream.response(200, Array("ok".utf8))) }
        let edge = try PlainEdge([failing.url, Self.deadURL(), healthy.url], config: "edge:\n  upstream_down_ms: 60000\n  health_check_ms: 0\n")
        defer { edge.server.stop() }
        for n in 0..<30 {
            let response = try edge.get("/titles/t/seg-\(n).ts")
            #expect(response.status == 200 && response.bodyText == "ok")
        }
        #expect(failing.requests.count == 1, "after its first 503 the failing upstream is asked last, so never again: \(failing.requests.count)")
        #expect(healthy.requests.count == 30)
    }

    @Test("an upstream marked down is probed with HEAD / and takes its place again once it answers, before its down time runs out")
    func healthProbe() throws {
        let healthy = Mutex(false)
        let recovering = try ScriptedUpstream { head in
            if head.hasPrefix("HEAD / ") { return .init(bytes: Array("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".utf8)) }
            return healthy.withLock { $0 }
                ? .init(bytes: ScriptedUpstream.response(200, Array("back".utf8), extra: ["Cache-Control: no-store"]))
                : .init(bytes: ScriptedUpstream.response(503, Array("down".utf8)))
        }
        let other = try ScriptedUpstream { _ in .init(bytes: ScriptedUpstream.response(200, Array("other".utf8), extra: ["Cache-Control: no-store"])) }
        let edge = try PlainEdge([recovering.url, other.url], config: "edge:\n  upstream_down_ms: 600000\n  health_check_ms: 50\n")
        defer { edge.server.stop() }
        // A key the recovering upstream is asked first for: its 503 fails over.
        var key: String?
        for n in 0..<40 where key == nil {
            let response = try edge.get("/titles/t/seg-\(n).ts")
            #expect(response.bodyText == "other")
            if recovering.requests.contains(where: { $0.hasPrefix("GET /titles/t/seg-\(n).ts ") }) { key = "/titles/t/seg-\(n).ts" }
        }
        let asked = try #require(key)
        healthy.withLock { $0 = true }
        // no-store: every request asks upstream; once probed back, the recovering one answers first.
        let back = waitUntil(timeout: .seconds(20), interval: .milliseconds(50)) { (try? edge.get(asked).bodyText) == "back" }
        #expect(back, "the probe never brought the upstream back (its down time is 10 minutes)")
        #expect(recovering.requests.contains { $0.hasPrefix("HEAD / HTTP/1.1\r\n") })
    }

    @Test("a pooled connection the upstream closed while idle is replaced without failing the fill")
    func staleConnection() throws {
        // Answers, then closes without saying so: the edge keeps the connection, which is dead.
        let upstream = try ScriptedUpstream { _ in .init(bytes: ScriptedUpstream.response(200, Array("fresh".utf8)), close: true) }
        let edge = try PlainEdge([upstream.url])
        defer { edge.server.stop() }
        for n in 0..<5 {
            let response = try edge.get("/k\(n)")
            #expect(response.status == 200 && response.bodyText == "fresh")
        }
    }

    @Test("hostile answers: random bytes never crash the edge, every request is answered, and a file is cached only as the whole body it served", arguments: 0..<2)
    func hostileAnswers(seed: Int) throws {
        var generator = SystemRandomNumberGenerator()
        var script: [String: [UInt8]] = [:]
        for round in 0..<40 {
            var bytes: [UInt8]
            switch round % 4 {
            case 0: bytes = (0..<Int.random(in: 1...600, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 1:
                bytes = Array("HTTP/1.1 200 OK\r\nContent-Length: \(Int.random(in: -5...300, using: &generator))\r\n\r\n".utf8)
                bytes += (0..<Int.random(in: 0...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 2:
                bytes = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
                bytes += (0..<Int.random(in: 0...200, using: &generator)).map { _ in Array("0123456789abcdefxyz\r\n;= ".utf8).randomElement(using: &generator)! }
            default:
                bytes = Array("HTTP/1.1 \(Int.random(in: 0...999, using: &generator)) X\r\n".utf8)
                bytes += (0..<Int.random(in: 0...300, using: &generator)).map { _ in Array("ab:\r\n \t".utf8).randomElement(using: &generator)! }
            }
            script["/h/\(round)"] = bytes
        }
        let answers = script
        let upstream = try ScriptedUpstream { head in
            let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            return .init(bytes: answers[path] ?? [], close: true)
        }
        let edge = try PlainEdge([upstream.url], config: "cache:\n  fetch_timeout_ms: 500\n")
        defer { edge.server.stop() }
        for round in 0..<40 {
            let response = try edge.get("/h/\(round)")
            #expect(response.status != 0, "seed \(seed) round \(round): no answer")
            #expect(edge.server.isRunning, "seed \(seed) round \(round): the edge died")
            if let kept = edge.cached("h/\(round)") {
                #expect(response.status == 200 && Array(response.body) == kept, "seed \(seed) round \(round): cached bytes the player was not served whole")
            }
        }
        #expect(waitUntil(timeout: .seconds(10), interval: .milliseconds(20)) { edge.temporaryFiles.isEmpty })
    }
}
