import Foundation
import Glibc
import Synchronization

public struct TestEnvironmentError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A private, real `redis-server` for one test: a free loopback port, a scratch folder, no
/// persistence unless `appendOnly` (an append-only file fsynced at every write, so a restart
/// finds everything Redis had acknowledged). `stop()` and `start()` let a test simulate an outage
/// on the same port.
public final class RedisServer: @unchecked Sendable {
    public let port: UInt16
    public let directory: URL
    public let appendOnly: Bool
    private var process: Process?

    public init(appendOnly: Bool = false) throws {
        self.appendOnly = appendOnly
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try Self.freePort()
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    public var url: String { "redis://127.0.0.1:\(port)/0" }

    /// Starts the server (again) and waits until it answers PING.
    public func start() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server") else {
            throw TestEnvironmentError("redis-server is not installed; run scripts/install-deps test")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        p.arguments = [
            "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", appendOnly ? "yes" : "no", "--appendfsync", "always",
            "--dir", directory.path,
            "--loglevel", "warning",
        ]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        RunningServers.add(p.processIdentifier)
        guard waitUntil(timeout: .seconds(10), interval: .milliseconds(5), { self.answersPing() }) else {
            throw TestEnvironmentError("redis-server on port \(port) did not answer PING")
        }
    }

    /// Stops the server at once and waits for it to exit. SIGKILL: a child spawned from a test
    /// thread can inherit a signal mask that blocks SIGTERM, and an outage should be abrupt anyway.
    public func stop() {
        guard let p = process else { return }
        process = nil
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        RunningServers.remove(p.processIdentifier)
    }

    /// Starts it again on the same port (the data is gone, unless `appendOnly`).
    public func restart() throws {
        stop()
        try start()
    }

    /// Whether a fresh connection gets `+PONG` for `PING` within a second.
    func answersPing() -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = Self.loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected, send(fd, "PING\r\n", 6, Int32(MSG_NOSIGNAL)) == 6 else { return false }
        var reply = [UInt8](repeating: 0, count: 16)
        let n = recv(fd, &reply, reply.count, 0)
        return n >= 5 && reply.starts(with: Array("+PONG".utf8))
    }

    /// A loopback port nobody listens on right now.
    public static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestEnvironmentError("socket failed") }
        defer { close(fd) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TestEnvironmentError("no free port") }
        return UInt16(bigEndian: address.sin_port)
    }

    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return address
    }
}

/// The redis-servers tests started and have not stopped, killed when the test process exits: a
/// server whose `RedisServer` is never released (a client or a task still holding it) would
/// otherwise outlive the run.
private enum RunningServers {
    static let pids = Mutex<Set<pid_t>>([])
    static let exitHook: Void = { atexit { for pid in RunningServers.pids.withLock({ $0 }) { kill(pid, SIGKILL) } } }()

    static func add(_ pid: pid_t) {
        _ = exitHook
        pids.withLock { _ = $0.insert(pid) }
    }

    static func remove(_ pid: pid_t) { pids.withLock { _ = $0.remove(pid) } }
}
