import Foundation
import Glibc

/// A real S3 endpoint for tests: moto's server mode (PyPI `moto[server]`, in the test venv) on a
/// free loopback port, started per test and stopped (SIGKILL) on `stop()` or deinit.
public final class MotoServer: @unchecked Sendable {
    public let port: UInt16
    private let process: Process

    public init() throws {
        let binary = try PythonEnvironment.python().deletingLastPathComponent().appendingPathComponent("moto_server")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw TestEnvironmentError("moto_server is missing from the test venv; run scripts/install-deps test")
        }
        port = try RedisServer.freePort()
        process = Process()
        process.executableURL = binary
        process.arguments = ["-H", "127.0.0.1", "-p", "\(port)"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let port = port
        guard waitUntil(timeout: .seconds(30), interval: .milliseconds(50), { Self.answers(port: port) }) else {
            stop()
            throw TestEnvironmentError("moto_server did not start on port \(port)")
        }
    }

    deinit { stop() }

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    static func answers(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = RedisServer.loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
