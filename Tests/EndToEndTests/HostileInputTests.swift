import MarqueeTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// What an attacker can send: request-smuggling shapes, path traversal spellings, oversize and
/// unsupported heads, random bytes, slow clients, too many connections. Each must be refused
/// without serving anything it should not, and without hurting the clients that behave.
@Suite("Hostile input")
struct HostileInputTests {
    /// A request that must be refused, and how.
    struct Hostile: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        /// Acceptable statuses (usually exactly one).
        var statuses: Set<Int>
        /// Whether the server must close afterwards: a head it could not frame leaves it no choice.
        var closes: Bool
        var testDescription: String { name }

        init(_ name: String, _ text: String, _ statuses: Set<Int>, closes: Bool = true) {
            self.name = name
            self.bytes = Array(text.utf8)
            self.statuses = statuses
            self.closes = closes
        }
    }

    /// Sent right behind each smuggling shape: it must never be answered, since the server cannot
    /// know where the refused request ended.
    static let follower = "GET \(MediaFixtures.small) HTTP/1.1\r\nHost: t\r\n\r\n"

    static let smugglingShapes: [Hostile] = [
        Hostile("Content-Length with Transfer-Encoding", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", [400]),
        Hostile("Transfer-Encoding with Content-Length", "POST /files/small.bin HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", [400]),
        Hostile("duplicate Content-Length", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", [400]),
        Hostile("conflicting Content-Length", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n", [400]),
        Hostile("Content-Length list", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nContent-Length: 0, 0\r\n\r\n", [400]),
        Hostile("negative Content-Length", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", [400]),
        Hostile("signed Content-Length", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nContent-Length: +0\r\n\r\n", [400]),
        Hostile("hex Content-Length", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nContent-Length: 0x0\r\n\r\n", [400]),
        Hostile("Content-Length with inner space", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nContent-Length: 1 0\r\n\r\n", [400]),
        Hostile("huge Content-Length", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n", [400]),
        Hostile("obs-fold (space)", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nX-Note: a\r\n folded\r\n\r\n", [400]),
        Hostile("obs-fold (tab)", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nX-Note: a\r\n\tfolded\r\n\r\n", [400]),
        Hostile("bare LF line endings", "GET /files/small.bin HTTP/1.1\nHost: t\n\n", [400]),
        Hostile("bare LF in one header", "GET /files/small.bin HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n", [400]),
        Hostile("bare CR", "GET /files/small.bin HTTP/1.1\rHost: t\r\n\r\n", [400]),
        Hostile("bare CR in a value", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n", [400]),
        Hostile("control character in a value", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nX-A: a\u{01}b\r\n\r\n", [400]),
        Hostile("NUL in a value", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nX-A: a\u{00}b\r\n\r\n", [400]),
        Hostile("DEL in a value", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nX-A: a\u{7F}b\r\n\r\n", [400]),
        Hostile("space before colon", "GET /files/small.bin HTTP/1.1\r\nHost : t\r\n\r\n", [400]),
        Hostile("tab before colon", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nTransfer-Encoding\t: chunked\r\n\r\n", [400]),
        Hostile("non-token header name", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nX(A): b\r\n\r\n", [400]),
        Hostile("missing Host in HTTP/1.1", "GET /files/small.bin HTTP/1.1\r\nAccept: */*\r\n\r\n", [400]),
        Hostile("duplicate Host", "GET /files/small.bin HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", [400]),
        Hostile("Transfer-Encoding in HTTP/1.0", "GET /files/small.bin HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", [400]),
        // RFC 9112 §6.1: an unknown transfer coding is 501 (as nginx answers), never served.
        Hostile("unknown Transfer-Encoding on a GET", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n", [501]),
        Hostile("Transfer-Encoding list", "POST /files/small.bin HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", [501]),
        Hostile("two Transfer-Encoding lines", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", [501]),
        Hostile("lower-case HTTP version", "GET /files/small.bin http/1.1\r\nHost: t\r\n\r\n", [400]),
        Hostile("two spaces after the method", "GET  /files/small.bin HTTP/1.1\r\nHost: t\r\n\r\n", [400]),
    ]

    static let oversizeAndUnsupported: [Hostile] = [
        Hostile("request line over 8 KiB", "GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: t\r\n\r\n", [414]),
        // A well-framed request whose path is too long may leave the connection open.
        Hostile("path over the path limit", "GET /\(String(repeating: "a/", count: 700))x HTTP/1.1\r\nHost: t\r\n\r\n", [414], closes: false),
        // Far over the limits: the client must still read its answer before the close.
        Hostile("70 kB request line", "GET /\(String(repeating: "a", count: 70_000)) HTTP/1.1\r\nHost: t\r\n\r\n", [414]),
        Hostile("100 kB header", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nX-Big: \(String(repeating: "b", count: 100_000))\r\n\r\n", [431]),
        Hostile("1 MB of header lines", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\n" + String(repeating: "X-A: \(String(repeating: "c", count: 1000))\r\n", count: 1000) + "\r\n", [431]),
        Hostile("20 kB header", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\nX-Big: \(String(repeating: "b", count: 20000))\r\n\r\n", [431]),
        Hostile("head over 16 KiB in many headers",
            "GET /files/small.bin HTTP/1.1\r\nHost: t\r\n" + (0..<90).map { "X-H\($0): \(String(repeating: "v", count: 200))\r\n" }.joined() + "\r\n", [431]),
        Hostile("too many header fields", "GET /files/small.bin HTTP/1.1\r\nHost: t\r\n" + (0..<150).map { "X-H\($0): v\r\n" }.joined() + "\r\n", [431]),
        Hostile("HTTP/2.0", "GET /files/small.bin HTTP/2.0\r\nHost: t\r\n\r\n", [505]),
        Hostile("HTTP/3.0", "GET /files/small.bin HTTP/3.0\r\nHost: t\r\n\r\n", [505]),
        Hostile("HTTP/2 connection preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", [400, 505]),
    ]

    /// The served root is `<fixtures>/media`; the secret is in `<fixtures>/outside/secret.txt`.
    static let traversals: [Hostile] = [
        Hostile("dot-dot", "/../outside/secret.txt", [400]),
        Hostile("dot-dot deeper", "/files/../../outside/secret.txt", [400]),
        Hostile("dot-dot to /etc/passwd", "/../../../../../../etc/passwd", [400]),
        Hostile("encoded dot-dot", "/%2e%2e/outside/secret.txt", [400]),
        Hostile("upper-case encoded dot-dot", "/%2E%2E/outside/secret.txt", [400]),
        Hostile("half-encoded dot-dot", "/.%2e/outside/secret.txt", [400]),
        Hostile("encoded dot-dot and slashes", "/%2E%2E%2Foutside%2Fsecret.txt", [400]),
        Hostile("dot-dot with encoded slash", "/files/..%2f..%2foutside/secret.txt", [400]),
        Hostile("encoded backslashes", "/files/..%5c..%5coutside%5csecret.txt", [400]),
        Hostile("backslashes", "/files/..\\..\\outside\\secret.txt", [400]),
        Hostile("encoded NUL", "/files/small.bin%00.m3u8", [400]),
        Hostile("dot segment", "/files/./small.bin", [400]),
        Hostile("through a directory", "/files/dir/../../outside/secret.txt", [400]),
        Hostile("overlong UTF-8 dots", "/%c0%ae%c0%ae/outside/secret.txt", [404]),
        Hostile("double-encoded dot-dot", "/%252e%252e/outside/secret.txt", [404]),
        Hostile("double slash to /etc", "//etc/passwd", [404]),
        Hostile("symlink to a file outside", "/files/leak.txt", [403]),
        Hostile("relative symlink climbing out", "/files/up", [403]),
        Hostile("symlink to /etc/passwd", "/files/passwd", [403]),
        Hostile("through a symlinked directory", "/files/escape/secret.txt", [403]),
        Hostile("hidden .git", "/.git/config", [404]),
        Hostile("absolute-form with dot-dot", "http://127.0.0.1/../outside/secret.txt", [400]),
        Hostile("overlong path", "/" + String(repeating: "%61", count: 1100), [414]),
    ]

    static func request(for path: String) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8)
    }

    /// Sends `bytes` and returns every response and how the connection ended.
    static func exchange(_ bytes: [UInt8], port: UInt16, timeout: Duration = .seconds(10)) throws
        -> (responses: [HTTPResponse], leftover: [UInt8], ending: RawConnection.Ending)
    {
        let connection = try RawConnection(port: port)
        // The server may refuse and close before it has read everything.
        try? connection.send(bytes)
        let (received, ending) = connection.readToEnd(timeout: timeout)
        let (responses, leftover) = try HTTPResponse.parseAll(received)
        return (responses, leftover, ending)
    }

    // MARK: - Smuggling

    @Test("Request-smuggling shapes get 400, the connection is closed and nothing behind them is answered", arguments: smugglingShapes)
    func smugglingShapeIsRefusedAndClosed(_ shape: Hostile) throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }

        let (responses, leftover, ending) = try Self.exchange(shape.bytes + Array(Self.follower.utf8), port: server.mediaPort)
        #expect(responses.count == 1, "\(responses.count) responses (statuses \(responses.map(\.status))); the request behind the refused one must not be served")
        #expect(leftover.isEmpty, "unparseable bytes after the response: \(String(decoding: leftover.prefix(100), as: UTF8.self).debugDescription)")
        if let response = responses.first {
            #expect(shape.statuses.contains(response.status), "got \(response.status): \(response.bodyText)")
            #expect(response.header("Connection") == "close")
            #expect(!response.bodyText.isEmpty, "error without a body saying why")
        }
        #expect(ending.isClosed, "connection not closed after refusing a request it cannot frame")
        #expect(server.isRunning)
    }

    // MARK: - Oversize heads and versions

    @Test("Oversize heads get 414 or 431 and unsupported versions 505, then the connection is closed", arguments: oversizeAndUnsupported)
    func oversizeOrUnsupportedIsRefused(_ shape: Hostile) throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }

        if shape.closes {
            let (responses, _, ending) = try Self.exchange(shape.bytes, port: server.mediaPort)
            #expect(responses.count == 1)
            if let response = responses.first {
                #expect(shape.statuses.contains(response.status), "got \(response.status): \(response.bodyText)")
                #expect(!response.bodyText.isEmpty, "error without a body saying why")
            }
            #expect(ending.isClosed, "connection not closed after a head that could not be framed")
        } else {
            let connection = try RawConnection(port: server.mediaPort)
            try connection.send(shape.bytes)
            let response = try connection.readResponse()
            #expect(shape.statuses.contains(response.status), "got \(response.status): \(response.bodyText)")
            #expect(!response.bodyText.isEmpty, "error without a body saying why")
        }
        // The server still answers a normal request.
        let normal = try Curl.fetch(server.url(MediaFixtures.small))
        #expect(normal.status == 200)
    }

    // MARK: - Traversal

    @Test("Traversal spellings and escaping symlinks never serve anything outside the root", arguments: traversals)
    func traversalIsRefused(_ traversal: Hostile) throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }
        let path = String(decoding: traversal.bytes, as: UTF8.self)

        let (responses, _, ending) = try Self.exchange(Self.request(for: path), port: server.mediaPort)
        let response = try #require(responses.first, "no response (connection \(ending))")
        #expect(traversal.statuses.contains(response.status), "GET \(path) got \(response.status): \(response.bodyText)")
        #expect(!response.bodyText.contains("MARQUEE-E2E-SECRET"), "the secret outside the root was served")
        #expect(!response.bodyText.contains("root:x:0:0"), "/etc/passwd was served")
        #expect(!response.bodyText.isEmpty, "error without a body saying why")
    }

    // MARK: - Random input

    static let mutationTemplate = Array(
        "GET /files/small.bin?x=1 HTTP/1.1\r\nHost: t\r\nRange: bytes=0-10\r\nIf-None-Match: \"x\"\r\nOrigin: https://o\r\nConnection: close\r\n\r\n".utf8)

    /// 1 to 4 random edits (replace, insert, delete, duplicate a span) of a valid request.
    static func mutate(_ template: [UInt8], _ rng: inout SeededGenerator) -> [UInt8] {
        var bytes = template
        for _ in 0..<Int.random(in: 1...4, using: &rng) where !bytes.isEmpty {
            let at = Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: bytes[at] = UInt8.random(in: 0...255, using: &rng)
            case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: at)
            case 2: bytes.remove(at: at)
            default:
                let end = min(bytes.count, at + Int.random(in: 1...20, using: &rng))
                bytes.insert(contentsOf: bytes[at..<end], at: at)
            }
        }
        return bytes + Array("\r\n\r\n".utf8)
    }

    static let statusesTheServerSpeaks: Set<Int> = [200, 204, 206, 304, 400, 403, 404, 405, 412, 414, 416, 431, 501, 505]

    @Test("The whole corpus and 400 random or mutated requests on one server: 4xx or a close, never a crash")
    func randomInputNeverBreaksTheServer() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }

        var cases: [(name: String, bytes: [UInt8], random: Bool)] = []
        for shape in Self.smugglingShapes + Self.oversizeAndUnsupported {
            cases.append((shape.name, shape.bytes + Array(Self.follower.utf8), false))
        }
        for traversal in Self.traversals { cases.append((traversal.name, Self.request(for: String(decoding: traversal.bytes, as: UTF8.self)), false)) }
        var rng = SeededGenerator(seed: 0x00C0_FFEE)
        for i in 0..<400 {
            if i % 2 == 0 {
                let length = i % 50 == 0 ? 20_000 : Int.random(in: 1...600, using: &rng)
                cases.append(("random #\(i)", rng.bytes(length) + Array("\r\n\r\n".utf8), true))
            } else {
                cases.append(("mutated #\(i)", Self.mutate(Self.mutationTemplate, &rng), false))
            }
        }

        var statuses: [Int: Int] = [:]
        for (name, bytes, random) in cases {
            let connection = try RawConnection(port: server.mediaPort)
            try? connection.send(bytes)
            let (head, ending) = try connection.readFirstHead(timeout: .seconds(5))
            connection.close()
            guard let head else {
                #expect(ending != .timedOut, "\(name): no answer and still open after 5 s")
                statuses[0, default: 0] += 1
                continue
            }
            statuses[head.status, default: 0] += 1
            #expect(Self.statusesTheServerSpeaks.contains(head.status), "\(name): status \(head.status)")
            if random { #expect(head.status >= 400, "\(name): random bytes got \(head.status)") }
            #expect(!head.headers.isEmpty)
            guard server.isRunning else {
                Issue.record("the server died on \(name): \(bytes.prefix(200)) stderr \(server.stderr.text)")
                return
            }
        }
        #expect(statuses[0, default: 0] < cases.count / 10, "too many requests got no answer at all: \(statuses)")

        #expect(server.isRunning, "server died: \(server.stderr.text)")
        let health = try server.admin("/healthz")
        #expect(health.status == 200)
        let normal = try Curl.fetch(server.url(MediaFixtures.big))
        #expect(normal.status == 200)
        let bigBytes = try fixtures.contents(MediaFixtures.big)
        #expect(sameBytes(normal.body, bigBytes), "\(mismatch(normal.body, bigBytes))")
        // Every hostile connection was let go: nothing leaks.
        #expect(try waitUntil(timeout: .seconds(10)) { try server.metric("marquee_connections_open") == 0 })
    }

    // MARK: - Slow and hostile clients

    /// Clients that connect and send a never-ending head one byte at a time, from a thread of their own.
    final class SlowClients: Sendable {
        let stopped = Atomic(false)
        let closedByServer = Atomic(0)
        let connected = Atomic(0)

        init(port: UInt16, count: Int, interval: Duration) {
            let thread = Thread { [self] in
                let head = Array("GET /files/small.bin HTTP/1.1\r\nHost: t\r\nX-Padding: \(String(repeating: "a", count: 4000))".utf8)
                var clients: [(RawConnection, Int)] = []
                for _ in 0..<count {
                    if let c = try? RawConnection(port: port) { clients.append((c, 0)) }
                }
                connected.store(clients.count, ordering: .releasing)
                var alive = Array(repeating: true, count: clients.count)
                while !stopped.load(ordering: .acquiring) {
                    for i in clients.indices where alive[i] {
                        let (connection, sent) = clients[i]
                        if connection.isClosedByPeer || (try? connection.send([head[sent % head.count]])) == nil {
                            alive[i] = false
                            closedByServer.add(1, ordering: .relaxed)
                            continue
                        }
                        clients[i].1 = sent + 1
                    }
                    Thread.sleep(forTimeInterval: interval.seconds)  // the pace of a slowloris client
                }
                for (connection, _) in clients { connection.close() }
            }
            thread.start()
        }

        func stop() { stopped.store(true, ordering: .releasing) }
    }

    /// Clients that keep sending smuggling shapes and garbage on new connections.
    final class HostileClients: Sendable {
        let stopped = Atomic(false)
        let refused = Atomic(0)
        let other = Atomic(0)

        init(port: UInt16) {
            let thread = Thread { [self] in
                var rng = SeededGenerator(seed: 7)
                var i = 0
                while !stopped.load(ordering: .acquiring) {
                    let shapes = HostileInputTests.smugglingShapes + HostileInputTests.oversizeAndUnsupported
                    let bytes = i % 3 == 2 ? rng.bytes(300) + Array("\r\n\r\n".utf8) : shapes[i % shapes.count].bytes
                    i += 1
                    guard let connection = try? RawConnection(port: port) else { continue }
                    try? connection.send(bytes)
                    if let (head, _) = try? connection.readFirstHead(timeout: .seconds(5)), let head, head.status >= 400 {
                        refused.add(1, ordering: .relaxed)
                    } else {
                        other.add(1, ordering: .relaxed)
                    }
                }
            }
            thread.start()
        }

        func stop() { stopped.store(true, ordering: .releasing) }
    }

    @Test("A normal client keeps getting 200s while slowloris and hostile clients are connected")
    func normalClientIsServedUnderAttack() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }

        let slow = SlowClients(port: server.mediaPort, count: 32, interval: .milliseconds(100))
        defer { slow.stop() }
        #expect(try waitUntil(timeout: .seconds(5)) { try server.metric("marquee_connections_open") >= 32 }, "slow clients did not connect")
        let hostile = HostileClients(port: server.mediaPort)
        defer { hostile.stop() }

        let files = [MediaFixtures.small, MediaFixtures.big, MediaFixtures.hlsMaster, MediaFixtures.hlsSegment]
        let expected = try files.map { try fixtures.contents($0) }
        for i in 0..<40 {
            let response = try Curl.fetch(server.url(files[i % files.count]), timeout: .seconds(10))
            #expect(response.status == 200, "request \(i) for \(files[i % files.count]): \(response.status) \(response.stderr)")
            #expect(sameBytes(response.body, expected[i % files.count]), "request \(i): wrong bytes: \(mismatch(response.body, expected[i % files.count]))")
        }
        // The attack was really on: slow clients still connected (header timeout is 10 s), hostile ones refused.
        #expect(slow.closedByServer.load(ordering: .relaxed) == 0)
        #expect(try server.metric("marquee_connections_open") >= 32)
        #expect(hostile.refused.load(ordering: .relaxed) > 0)
        hostile.stop()
        slow.stop()
        #expect(server.isRunning)
    }

    @Test("With a 500 ms header timeout, slowloris and silent connections are closed and counted")
    func headerTimeoutClosesSlowClients() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root, environment: ["MARQUEE_HTTP_HEADER_TIMEOUT_MS": "500"])
        defer { server.stop() }
        let timeouts = "marquee_connection_timeouts_total{kind=\"header\"}"
        #expect(try server.metric(timeouts) == 0)

        let silent = try RawConnection(port: server.mediaPort)
        let slow = try RawConnection(port: server.mediaPort)
        let dribble = slow.dribble(Array("GET /files/small.bin HTTP/1.1\r\nHost: t\r\nX-A: ".utf8) + Array(repeating: 0x61, count: 1000), every: .milliseconds(100), for: .seconds(10))
        #expect(dribble.closedByServer, "a client sending one byte every 100 ms was kept for \(dribble.elapsed) despite a 500 ms header timeout")
        #expect(silent.waitForClose(timeout: .seconds(5)).isClosed, "a connection that never sent a byte was not closed")
        #expect(try waitUntil(timeout: .seconds(5)) { try server.metric(timeouts) >= 2 }, "header timeouts not counted")

        // Someone who sends a whole request promptly is served.
        let normal = try Curl.fetch(server.url(MediaFixtures.small))
        #expect(normal.status == 200)
    }

    @Test("At the connection limit a new connection gets 503 and Connection: close")
    func connectionLimitRefusesWith503() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root, threads: 1, environment: ["MARQUEE_HTTP_MAX_CONNECTIONS": "4"])
        defer { server.stop() }

        let held = try (0..<4).map { _ in try RawConnection(port: server.mediaPort) }
        #expect(try waitUntil(timeout: .seconds(5)) { try server.metric("marquee_connections_open") == 4 })

        let fifth = try RawConnection(port: server.mediaPort)
        let (received, ending) = fifth.readToEnd(timeout: .seconds(5))
        let (responses, _) = try HTTPResponse.parseAll(received)
        let refusal = try #require(responses.first, "the 5th connection got no response (\(ending))")
        #expect(refusal.status == 503)
        #expect(refusal.header("Connection") == "close")
        #expect(!refusal.bodyText.isEmpty)
        #expect(ending.isClosed)
        // This server's only refusal is the one above; the loop counts it around the close, so
        // wait for the counter rather than read it once.
        #expect(try waitUntil(timeout: .seconds(10)) { try server.metric("marquee_connections_refused_total") == 1 })
        #expect(try server.metric("marquee_connections_refused_total") == 1)

        // The held connections are still served...
        try held[0].send("GET \(MediaFixtures.small) HTTP/1.1\r\nHost: t\r\n\r\n")
        let answer = try held[0].readResponse()
        #expect(answer.status == 200)
        // ...and once one closes, a newcomer gets in.
        held[1].close()
        #expect(try waitUntil(timeout: .seconds(5)) { try server.metric("marquee_connections_open") == 3 })
        let newcomer = try Curl.fetch(server.url(MediaFixtures.small))
        #expect(newcomer.status == 200)
        let smallBytes = try fixtures.contents(MediaFixtures.small)
        #expect(sameBytes(newcomer.body, smallBytes), "\(mismatch(newcomer.body, smallBytes))")
    }
}
