import Foundation
import Glibc
import MarqueeGateway
import MarqueeHTTP
import MarqueeTestSupport
import MarqueeTokens
import Synchronization
import Testing

@testable import MarqueeEdge

/// The edge's upstream client against scripted upstreams: what it stores, what it refuses, when
/// it fails over, and that nothing but a whole body ever becomes a cached file.
@Suite("Edge upstream fetches (scripted upstreams)")
struct HTTPUpstreamSourceTests {
    static let key = Array("an edge key of at least thirty-two bytes!".utf8)

    static func source(_ upstreams: [ScriptedUpstream], signed: Bool = true, downMilliseconds: Int64 = 5000) throws -> HTTPUpstreamSource {
        let signer = signed ? (try EdgeSignature(secrets: [key]), "edge-test.eu") : nil
        return HTTPUpstreamSource(
            upstreams: try upstreams.map { try ServiceUpstream(name: "upstream", url: $0.url) }, signer: signer, edgeID: "edge-test.eu",
            downMilliseconds: downMilliseconds, maxIdlePerUpstream: 4)
    }

    static func target() -> String {
        let folder = NSTemporaryDirectory() + "marquee-edge-tests-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder + "/fetch"
    }

    static func contents(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map(Array.init) }

    @Test("a 200 is stored whole with the upstream's Last-Modified; the request carries the edge's signature, no token, and reuses its connection")
    func storesAndSigns() throws {
        let body = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let upstream = try ScriptedUpstream { _ in
            .init(bytes: ScriptedUpstream.response(200, body, extra: ["Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT"]))
        }
        let source = try Self.source([upstream])
        let first = Self.target()
        #expect(source.download("titles/a b/v1/seg-1.m4s", toFile: first, timeoutMilliseconds: 5000, revalidating: nil, fill: nil).isStored)
        #expect(Self.contents(first) == body)
        let modified = try FileManager.default.attributesOfItem(atPath: first)[.modificationDate] as? Date
        #expect(modified == Date(timeIntervalSince1970: 1_796_119_200))
        let second = Self.target()
        #expect(source.download("titles/a b/v1/seg-2.m4s", toFile: second, timeoutMilliseconds: 5000, revalidating: nil, fill: nil).isStored)
        #expect(upstream.connections == 1, "the second fetch reused the kept-alive connection")

        let head = try #require(upstream.requests.first)
        #expect(head.hasPrefix("GET /titles/a%20b/v1/seg-1.m4s HTTP/1.1\r\n"))
        #expect(head.contains("Host: 127.0.0.1:\(upstream.port)\r\n"))
        #expect(!head.lowercased().contains("token"))
        let value = try #require(head.split(separator: "\r\n").first { $0.hasPrefix("Marquee-Edge: ") }?.dropFirst("Marquee-Edge: ".count))
        let verifier = try EdgeSignature(secrets: [Self.key])
        let now = Int64(Date().timeIntervalSince1970)
        let check = Array(value.utf8).withUnsafeBytes { v in
            Array("/titles/a b/v1/seg-1.m4s".utf8).withUnsafeBytes { verifier.verify(v, absolutePath: $0, nowSeconds: now) }
        }
        #expect(check == .valid)
        let other = Array(value.utf8).withUnsafeBytes { v in
            Array("/titles/a b/v1/seg-2.m4s".utf8).withUnsafeBytes { verifier.verify(v, absolutePath: $0, nowSeconds: now) }
        }
        #expect(other == .badSignature, "a signature is good for its own path only")
    }

    @Test("a refresh is conditional: If-None-Match and If-Modified-Since go up, a 304 renews the copy's freshness and keeps its validators")
    func conditionalRefresh() throws {
        let upstream = try ScriptedUpstream { head in
            head.contains("If-None-Match: \"v1\"\r\n")
                ? .init(bytes: Array("HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=30\r\n\r\n".utf8))
                : .init(bytes: ScriptedUpstream.response(200, Array("body".utf8), extra: ["ETag: \"v1\"", "Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT", "Cache-Control: max-age=5"]))
        }
        let source = try Self.source([upstream])
        guard case .storedExpiring(let first) = source.download("k", toFile: Self.target(), timeoutMilliseconds: 2000, revalidating: nil, fill: nil) else {
            Issue.record("not stored")
            return
        }
        #expect(first.etag == "\"v1\"" && first.lastModified == 1_796_119_200)
        let path = Self.target()
        guard case .notModified(let renewed) = source.download("k", toFile: path, timeoutMilliseconds: 2000, revalidating: first, fill: nil) else {
            Issue.record("the refresh was not answered 304")
            return
        }
        #expect(renewed.etag == "\"v1\"" && renewed.lastModified == 1_796_119_200, "a 304 without validators keeps the copy's")
        #expect(renewed.freshUntil > first.freshUntil + 20_000, "the 304's max-age=30 renews the copy")
        #expect(!FileManager.default.fileExists(atPath: path), "a 304 writes no file")
        let conditional = try #require(upstream.requests.last)
        #expect(conditional.contains("If-Modified-Since: Tue, 01 Dec 2026 10:00:00 GMT\r\n"))
        #expect(upstream.connections == 1, "the 304 kept the connection")
    }

    @Test("1xx interim answers are skipped and a chunked body is stored de-chunked")
    func chunked() throws {
        let upstream = try ScriptedUpstream { _ in
            .init(bytes: Array("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n".utf8))
        }
        let path = Self.target()
        #expect(try Self.source([upstream]).download("x/y", toFile: path, timeoutMilliseconds: 5000, revalidating: nil, fill: nil).isStored)
        #expect(Self.contents(path) == Array("hello world".utf8))
    }

    @Test("a body cut short, a malformed head or chunk, or a stalled upstream stores nothing")
    func partialNeverStored() throws {
        let answers: [ScriptedUpstream.Answer] = [
            .init(bytes: Array("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part".utf8), close: true),
            .init(bytes: Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbad\r\n".utf8), close: true),
            .init(bytes: Array("HTTP/9 200\r\n\r\n".utf8), close: true),
            .init(bytes: [], stall: true),
        ]
        for answer in answers {
            let upstream = try ScriptedUpstream { _ in answer }
            let path = Self.target()
            let outcome = try Self.source([upstream]).download("k", toFile: path, timeoutMilliseconds: 700, revalidating: nil, fill: nil)
            #expect(!outcome.isStored && outcome != .notFound, "\(answer.bytes.count) bytes: \(outcome)")
            #expect(!FileManager.default.fileExists(atPath: path), "a partial body was left at \(path)")
        }
    }

    @Test("404 and 410 say the object does not exist; a 403 is the answer without asking another upstream")
    func refusals() throws {
        for status in [404, 410] {
            let upstream = try ScriptedUpstream { _ in .init(bytes: ScriptedUpstream.response(status, Array("gone".utf8))) }
            #expect(try Self.source([upstream]).download("k", toFile: Self.target(), timeoutMilliseconds: 2000, revalidating: nil, fill: nil) == .notFound)
        }
        let forbidding = try ScriptedUpstream { _ in .init(bytes: ScriptedUpstream.response(403, Array("no".utf8))) }
        let other = try ScriptedUpstream { _ in .init(bytes: ScriptedUpstream.response(200, Array("yes".utf8))) }
        let source = try Self.source([forbidding, other])
        // Keys whose first choice is the forbidding upstream.
        var asked = 0
        for n in 0..<20 {
            let before = other.requests.count
            let outcome = source.download("k\(n)", toFile: Self.target(), timeoutMilliseconds: 2000, revalidating: nil, fill: nil)
            if other.requests.count == before {
                asked += 1
                #expect(outcome == .failed("the upstream answered 403"))
            }
        }
        #expect(asked > 0)
        #expect(forbidding.requests.count == asked, "each 403 came from one request, with no failover")
    }

    @Test("a refused connection or a 5xx fails over to the next upstream and puts the failed one last for a while")
    func failover() throws {
        let failing = try ScriptedUpstream { _ in .init(bytes: ScriptedUpstream.response(503, Array("busy".utf8))) }
        let healthy = try ScriptedUpstream { _ in .init(bytes: ScriptedUpstream.response(200, Array("ok".utf8))) }
        // A port nobody listens on: bind one, note it, close it.
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, length) == 0 && getsockname(probe, $0, &length) == 0 }
        }
        close(probe)
        let deadURL = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
        let source = HTTPUpstreamSource(
            upstreams: [try ServiceUpstream(name: "upstream", url: failing.url), try ServiceUpstream(name: "upstream", url: deadURL),
                        try ServiceUpstream(name: "upstream", url: healthy.url)],
            signer: nil, edgeID: "e", downMilliseconds: 60_000, maxIdlePerUpstream: 2)
        for n in 0..<30 {
            let path = Self.target()
            #expect(source.download("titles/t/seg-\(n).ts", toFile: path, timeoutMilliseconds: 5000, revalidating: nil, fill: nil).isStored)
            #expect(Self.contents(path) == Array("ok".utf8))
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
                ? .init(bytes: ScriptedUpstream.response(200, Array("back".utf8)))
                : .init(bytes: ScriptedUpstream.response(503, Array("down".utf8)))
        }
        let other = try ScriptedUpstream { _ in .init(bytes: ScriptedUpstream.response(200, Array("other".utf8))) }
        let source = HTTPUpstreamSource(
            upstreams: [try ServiceUpstream(name: "upstream", url: recovering.url), try ServiceUpstream(name: "upstream", url: other.url)],
            signer: nil, edgeID: "e", downMilliseconds: 600_000, maxIdlePerUpstream: 2, healthCheckMilliseconds: 50)
        // A key the recovering upstream is asked first for.
        let key = try #require((0..<100).map { "titles/t/seg-\($0).ts" }.first { key in
            UpstreamSelection(names: source.upstreams.map(\.authority), downMilliseconds: 0).order(for: key, now: 0).first == 0
        })
        let first = Self.target()
        #expect(source.download(key, toFile: first, timeoutMilliseconds: 5000, revalidating: nil, fill: nil).isStored)
        #expect(Self.contents(first) == Array("other".utf8), "the 503 failed over")
        #expect(source.isDown(0))
        healthy.withLock { $0 = true }
        source.startHealthChecks()
        let back = waitUntil(timeout: .seconds(20), interval: .milliseconds(20)) { !source.isDown(0) }
        #expect(back, "the probe never brought the upstream back (its down time is 10 minutes)")
        let second = Self.target()
        #expect(source.download(key, toFile: second, timeoutMilliseconds: 5000, revalidating: nil, fill: nil).isStored)
        #expect(Self.contents(second) == Array("back".utf8))
        #expect(recovering.requests.contains { $0.hasPrefix("HEAD / HTTP/1.1\r\n") })
    }

    @Test("a pooled connection the upstream closed while idle is replaced without failing the fetch")
    func staleConnection() throws {
        let upstream = try ScriptedUpstream { _ in .init(bytes: ScriptedUpstream.response(200, Array("fresh".utf8)), close: true) }
        let source = try Self.source([upstream])
        for _ in 0..<5 {
            let path = Self.target()
            #expect(source.download("k", toFile: path, timeoutMilliseconds: 2000, revalidating: nil, fill: nil).isStored)
            #expect(Self.contents(path) == Array("fresh".utf8))
        }
    }

    @Test("hostile answers: random bytes never crash the fetch, and never leave a file unless a whole 200 was read", arguments: 0..<4)
    func hostileAnswers(seed: Int) throws {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<40 {
            var bytes: [UInt8]
            switch round % 4 {
            case 0: bytes = (0..<Int.random(in: 1...600, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 1:
                bytes = Array("HTTP/1.1 200 OK\r\nContent-Length: \(Int.random(in: -5...90000, using: &generator))\r\n\r\n".utf8)
                bytes += (0..<Int.random(in: 0...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 2:
                bytes = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
                bytes += (0..<Int.random(in: 0...200, using: &generator)).map { _ in Array("0123456789abcdefxyz\r\n;= ".utf8).randomElement(using: &generator)! }
            default:
                bytes = Array("HTTP/1.1 \(Int.random(in: 0...999, using: &generator)) X\r\n".utf8)
                bytes += (0..<Int.random(in: 0...300, using: &generator)).map { _ in Array("ab:\r\n \t".utf8).randomElement(using: &generator)! }
            }
            let answer = bytes
            let upstream = try ScriptedUpstream { _ in .init(bytes: answer, close: true) }
            let path = Self.target()
            let outcome = try Self.source([upstream]).download("k", toFile: path, timeoutMilliseconds: 500, revalidating: nil, fill: nil)
            if !outcome.isStored { #expect(!FileManager.default.fileExists(atPath: path), "seed \(seed) round \(round): \(outcome) left a file") }
        }
    }
}

extension ReadThroughDownload {
    var isStored: Bool {
        switch self {
        case .stored, .storedExpiring: true
        default: false
        }
    }
}
