import Foundation
import MarqueeTestSupport
import Glibc

/// A TCP connection to 127.0.0.1 driven byte by byte, for what curl will not send: pipelining,
/// smuggling shapes, slow clients, garbage. Reads are poll-based with deadlines.
final class RawConnection {
    enum Ending: Equatable, Sendable, CustomStringConvertible {
        /// The server sent FIN.
        case closed
        /// The server reset the connection.
        case reset
        /// Still open when the deadline passed.
        case timedOut

        var description: String {
            switch self {
            case .closed: "closed"
            case .reset: "reset"
            case .timedOut: "still open at the deadline"
            }
        }

        var isClosed: Bool { self != .timedOut }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private(set) var fd: Int32
    /// Received bytes not yet handed out by `readResponse`.
    private var pending: [UInt8] = []

    /// Connects to 127.0.0.1:`port`; `receiveBufferBytes` shrinks SO_RCVBUF before connecting.
    init(port: UInt16, receiveBufferBytes: Int32? = nil) throws {
        // CLOEXEC: a curl or ffmpeg started meanwhile by another test must not keep this socket open.
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        if var size = receiveBufferBytes {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let error = errno
            Glibc.close(fd)
            fd = -1
            throw ConnectFailure(errno: error)
        }
    }

    struct ConnectFailure: Error, CustomStringConvertible {
        var errno: Int32
        var description: String { "connect: \(String(cString: strerror(errno)))" }
    }

    deinit { close() }

    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Sends all of `bytes` (never raises SIGPIPE); throws when the server has closed.
    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "send: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// One receive, waiting at most until `deadline`. nil bytes means the connection ended.
    private func receiveOnce(until deadline: ContinuousClock.Instant) -> (bytes: [UInt8], ending: Ending?) {
        while true {
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { return ([], .timedOut) }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(max(1, min(remaining.seconds * 1000, 60_000))))
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 { return (Array(chunk[0..<n]), nil) }
            if n == 0 { return ([], .closed) }
            if errno == EINTR || errno == EAGAIN { continue }
            return ([], .reset)
        }
    }

    /// Whatever arrives first within `timeout` (empty when nothing or the peer closed).
    func readAvailable(timeout: Duration) throws -> [UInt8] {
        receiveOnce(until: ContinuousClock.now + timeout).bytes
    }

    /// Everything the server sends until it closes the connection or `timeout` passes.
    func readToEnd(timeout: Duration) -> (bytes: [UInt8], ending: Ending) {
        let deadline = ContinuousClock.now + timeout
        var bytes = pending
        pending = []
        while true {
            let (chunk, ending) = receiveOnce(until: deadline)
            bytes += chunk
            if let ending { return (bytes, ending) }
        }
    }

    /// The next whole response; throws if the connection ends first or `timeout` passes.
    func readResponse(timeout: Duration = .seconds(10), bodyless: Bool = false) throws -> HTTPResponse {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let response = try HTTPResponse.take(from: &pending, bodyless: bodyless) { return response }
            let (chunk, ending) = receiveOnce(until: deadline)
            if let ending {
                throw Failure(description: "connection \(ending) before a whole response; got \(pending.count) bytes: \(String(decoding: pending.prefix(200), as: UTF8.self).debugDescription)")
            }
            pending += chunk
        }
    }

    /// The first response head (body not awaited), or nil if the connection ended or `timeout`
    /// passed without one; with how the connection stood at that point.
    func readFirstHead(timeout: Duration) throws -> (head: HTTPResponse?, ending: Ending?) {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let end = HTTPResponse.headEnd(in: pending) {
                return (try HTTPResponse.parseHead(Array(pending[0..<end])), nil)
            }
            let (chunk, ending) = receiveOnce(until: deadline)
            if let ending {
                if !pending.isEmpty { throw Failure(description: "connection \(ending) after a partial head: \(String(decoding: pending.prefix(200), as: UTF8.self).debugDescription)") }
                return (nil, ending)
            }
            pending += chunk
        }
    }

    /// Waits for the server to end the connection, discarding what it sends.
    func waitForClose(timeout: Duration) -> Ending {
        readToEnd(timeout: timeout).ending
    }

    /// Whether the server has ended the connection, looking without waiting.
    var isClosedByPeer: Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 0) > 0 else { return false }
        if entry.revents & Int16(POLLHUP | POLLERR) != 0 { return true }
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno != EAGAIN)
    }

    /// How a slowloris client fared.
    struct Dribble {
        var closedByServer: Bool
        var bytesSent: Int
        var elapsed: Duration
    }

    /// Sends `bytes` one at a time, `interval` apart (cycling when they run out), until the server
    /// ends the connection or `limit` passes.
    func dribble(_ bytes: [UInt8], every interval: Duration, for limit: Duration) -> Dribble {
        let start = ContinuousClock.now
        var sent = 0
        while ContinuousClock.now - start < limit {
            if isClosedByPeer { return Dribble(closedByServer: true, bytesSent: sent, elapsed: ContinuousClock.now - start) }
            do {
                try send([bytes[sent % bytes.count]])
            } catch {
                return Dribble(closedByServer: true, bytesSent: sent, elapsed: ContinuousClock.now - start)
            }
            sent += 1
            // Pause for the interval, but notice at once if the server closes meanwhile.
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&entry, 1, Int32(interval.seconds * 1000))
        }
        return Dribble(closedByServer: isClosedByPeer, bytesSent: sent, elapsed: ContinuousClock.now - start)
    }
}
