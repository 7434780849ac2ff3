import Foundation
import Glibc

/// A real redis-server on a free port in a scratch folder, stopped by `stop()` or deinit.
final class RedisServer: @unchecked Sendable {
    let port: UInt16
    let folder: URL
    private var tool: RunningTool?

    init() throws {
        folder = try Scratch.newDirectory("redis")
        port = try Self.freePort()
        try start()
    }

    var url: String { "redis://127.0.0.1:\(port)/0" }

    func start() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server") else {
            throw ToolError(description: "redis-server is not installed; run scripts/install-deps test")
        }
        tool = try RunningTool(
            "/usr/bin/redis-server",
            ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder.path, "--protected-mode", "no"])
        let up = try waitUntil(timeout: .seconds(10)) { try self.ping() }
        guard up else { throw ToolError(description: "redis-server did not answer PING on port \(port)") }
    }

    func stop() {
        guard let tool else { return }
        kill(tool.process.processIdentifier, SIGKILL)
        _ = tool.wait(timeout: .seconds(5))
        self.tool = nil
    }

    deinit { stop() }

    func ping() throws -> Bool {
        guard let connection = try? RawConnection(port: port) else { return false }
        try connection.send("PING\r\n")
        return (try? connection.readAvailable(timeout: .seconds(1)))?.starts(with: Array("+PONG".utf8)) ?? false
    }

    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw ToolError(description: "no free port") }
        return UInt16(bigEndian: address.sin_port)
    }
}
