import Foundation
import Glibc
@testable import MarqueePolicy

/// A private `redis-server` for one test: a free port, a temporary directory, no persistence.
/// `stop()` and `restart()` let tests simulate an outage on the same port.
final class RedisServerProcess: @unchecked Sendable {
    let port: Int
    let directory: URL
    private var process: Process?

    var endpoint: RedisEndpoint { RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port)) }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try RedisServerProcess.freePort()
        try launch()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    func launch() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        p.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                       "--dir", directory.path, "--loglevel", "warning"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        let ready = waitUntil(seconds: 10) {
            guard let c = try? RedisConnection(endpoint: self.endpoint, connectTimeoutMicros: 100_000, ioTimeoutMicros: 500_000)
            else { return false }
            return (try? c.command(["PING"]))?.text == "PONG"
        }
        guard ready else { throw RedisTestError("redis-server on port \(port) did not answer PING") }
    }

    /// Stops the server and waits for it to exit.
    func stop() {
        guard let p = process else { return }
        process = nil
        // SIGKILL: a child spawned from a test worker thread can inherit a mask that blocks
        // SIGTERM, and an outage test wants the server gone at once anyway.
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    /// Starts it again on the same port (the data is gone: no persistence).
    func restart() throws {
        stop()
        try launch()
    }

    /// Runs one command on a fresh connection.
    func command(_ args: [String]) throws -> RedisReply {
        try RedisConnection(endpoint: endpoint, connectTimeoutMicros: 500_000, ioTimeoutMicros: 1_000_000).command(args)
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RedisTestError("socket failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw RedisTestError("bind failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct RedisTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` every 5 ms until it holds or `seconds` pass. - Returns: whether it held.
@discardableResult
func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(5000)
    }
    return condition()
}

/// Collects answers delivered on another thread.
final class AnswerCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [RedisRateAnswer] = []

    func append(_ answer: RedisRateAnswer) { lock.withLock { items.append(answer) } }
    var answers: [RedisRateAnswer] { lock.withLock { items } }
    var count: Int { lock.withLock { items.count } }
}
