import MarqueeTestSupport
import Foundation
import Glibc
import Testing

/// What an operator relies on: health and readiness, metrics that count what happened, and a
/// SIGTERM that drains (finish what is in flight, close what is idle, exit 0) instead of cutting
/// viewers off.
@Suite("Lifecycle")
struct LifecycleTests {
    @Test("/healthz and /readyz answer 200; other admin paths 404")
    func healthAndReadiness() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }

        let health = try server.admin("/healthz")
        #expect(health.status == 200)
        #expect(health.bodyText == "ok\n")
        let ready = try server.admin("/readyz")
        #expect(ready.status == 200)
        #expect(try server.admin("/nothing").status == 404)
        // The media listener does not expose the admin endpoints.
        #expect(try Curl.fetch(server.url("/metrics")).status == 404)
    }

    @Test("/metrics counts responses by status, and connections")
    func metricsCountRequestsByStatus() throws {
        let fixtures = try MediaFixtures.shared()
        let server = try ServerProcess(root: fixtures.root)
        defer { server.stop() }
        for code in [200, 206, 304, 404, 405] {
            #expect(try server.metric(ServerProcess.responses(code)) == 0, "\(code) before any request")
        }

        for _ in 0..<3 { #expect(try Curl.fetch(server.url(MediaFixtures.small)).status == 200) }
        #expect(try Curl.fetch(server.url(MediaFixtures.big), ["-r", "0-9"]).status == 206)
        for _ in 0..<2 { #expect(try Curl.fetch(server.url("/missing.m4s")).status == 404) }
        let etag = try #require(try Curl.fetch(server.url(MediaFixtures.hlsMaster)).header("ETag"))
        #expect(try Curl.fetch(server.url(MediaFixtures.hlsMaster), ["-H", "If-None-Match: \(etag)"]).status == 304)
        #expect(try Curl.fetch(server.url(MediaFixtures.small), ["-X", "DELETE"]).status == 405)

        let expected: [Int: Double] = [200: 4, 206: 1, 304: 1, 404: 2, 405: 1, 400: 0, 500: 0]
        // A response is counted once its last byte is handed to the kernel, which may be a moment
        // after curl has it.
        let counted = try waitUntil(timeout: .seconds(5)) {
            try expected.allSatisfy { try server.metric(ServerProcess.responses($0.key)) == $0.value }
        }
        let actual = try expected.keys.sorted().map { "\($0): \(try server.metric(ServerProcess.responses($0)))" }
        #expect(counted, "responses by status \(actual), expected \(expected.sorted { $0.key < $1.key })")
        #expect(try server.metric("marquee_connections_accepted_total") == 9)
        #expect(try server.metric("marquee_http_response_bytes_total") > Double(3 * MediaFixtures.smallSize))
        #expect(try waitUntil(timeout: .seconds(5)) { try server.metric("marquee_connections_open") == 0 })
    }

    enum NewConnection: Equatable, CustomStringConvertible {
        case refused
        case closedWithoutResponse
        case served
        case leftHanging

        var description: String {
            switch self {
            case .refused: "refused"
            case .closedWithoutResponse: "closed without a response"
            case .served: "served"
            case .leftHanging: "accepted but left hanging, neither answered nor closed"
            }
        }
    }

    /// What happens to a brand-new connection and request, waiting at most `timeout`.
    static func tryNewConnection(port: UInt16, timeout: Duration) -> NewConnection {
        guard let connection = try? RawConnection(port: port) else { return .refused }
        try? connection.send("GET \(MediaFixtures.small) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let (bytes, ending) = connection.readToEnd(timeout: timeout)
        if !bytes.isEmpty { return .served }
        return ending.isClosed ? .closedWithoutResponse : .leftHanging
    }

    @Test("SIGTERM during a slow download: the download completes intact, new connections are refused, exit 0")
    func sigtermDrainsAnInFlightDownload() throws {
        // Loopback socket buffers hold several MB, so the file is big enough that most of it is
        // still on the server's side when the signal arrives: 32 MB at 10 MB/s.
        let root = try Scratch.newDirectory("drain")
        defer { try? FileManager.default.removeItem(at: root) }
        var generator = SeededGenerator(seed: 99)
        let content = Data(generator.bytes(32 << 20))
        try content.write(to: root.appendingPathComponent("movie.mp4"))
        let grace: Duration = .seconds(20)
        let server = try ServerProcess(root: root, environment: ["MARQUEE_HTTP_SHUTDOWN_GRACE_MS": "20000"])
        defer { server.stop() }

        let download = try Curl.start(server.url("/movie.mp4"), ["--limit-rate", "10M"], timeout: .seconds(40))
        #expect(waitUntil(timeout: .seconds(10)) { download.bytesReceivedSoFar > 0 }, "the download did not start")
        #expect(download.tool.isRunning)
        let signalled = ContinuousClock.now
        server.signal(SIGTERM)

        // Draining: not ready any more, and no new connection is served.
        let draining = waitUntil(timeout: .seconds(3)) {
            !server.isRunning || ((try? server.admin("/readyz"))?.status == 503)
        }
        #expect(draining && server.isRunning, "/readyz did not turn 503 while the download was in flight (server running: \(server.isRunning))")
        // A client that cannot be served must learn it at once (and try another origin), not
        // wait for the drain to end.
        let newcomer = Self.tryNewConnection(port: server.mediaPort, timeout: .seconds(1.5))
        #expect(newcomer == .refused || newcomer == .closedWithoutResponse, "after SIGTERM a new connection was \(newcomer)")
        #expect(download.tool.isRunning, "the download ended before the drain could be observed")

        let response = try download.finish()
        #expect(response.termination == .exited(0), "the in-flight download was cut: \(response.stderr)")
        #expect(response.status == 200)
        #expect(response.body.count == content.count, "received \(response.body.count) of \(content.count) bytes")
        #expect(sameBytes(response.body, content), "the drained download is not byte-identical: \(mismatch(response.body, content))")

        let termination = server.termination(within: grace + .seconds(5) - (ContinuousClock.now - signalled))
        #expect(termination == .exited(0), "after SIGTERM: \(termination.map(\.description) ?? "still running after the grace period")")
        #expect(server.stdout.wait(timeout: .seconds(2)) { $0.contains("marquee origin stopped") } != nil, "no 'marquee origin stopped' line; stdout: \(server.stdout.text.debugDescription)")
    }

    @Test("SIGTERM closes idle keep-alive connections and exits 0 without waiting for the grace period")
    func sigtermClosesIdleConnections() throws {
        let fixtures = try MediaFixtures.shared()
        // A long grace period: an exit well before it shows idle connections did not hold the drain.
        let server = try ServerProcess(root: fixtures.root, environment: ["MARQUEE_HTTP_SHUTDOWN_GRACE_MS": "30000"])
        defer { server.stop() }

        let keptAlive = try RawConnection(port: server.mediaPort)
        try keptAlive.send("GET \(MediaFixtures.small) HTTP/1.1\r\nHost: t\r\n\r\n")
        let first = try keptAlive.readResponse()
        #expect(first.status == 200)
        #expect(first.header("Connection") == nil, "the connection was not kept alive")
        let silent = try RawConnection(port: server.mediaPort)
        #expect(try waitUntil(timeout: .seconds(5)) { try server.metric("marquee_connections_open") == 2 })

        server.signal(SIGTERM)
        #expect(keptAlive.waitForClose(timeout: .seconds(5)).isClosed, "idle keep-alive connection still open 5 s after SIGTERM")
        #expect(silent.waitForClose(timeout: .seconds(5)).isClosed, "connection without a request still open 5 s after SIGTERM")
        let termination = server.termination(within: .seconds(10))
        #expect(termination == .exited(0), "after SIGTERM: \(termination.map(\.description) ?? "still running 10 s later")")
        #expect(server.stdout.wait(timeout: .seconds(2)) { $0.contains("marquee origin stopped") } != nil, "no 'marquee origin stopped' line; stdout: \(server.stdout.text.debugDescription)")
    }
}
