import Foundation
import Glibc

/// A private, real PostgreSQL server for the test process: `initdb` into a scratch folder, a free
/// loopback port, trust authentication, started on first use and stopped when the process exits.
/// Each test asks for its own database (`freshDatabaseURL()`), so tests never see each other's rows.
///
/// PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (the
/// Debian package creates it).
public final class PostgresServer: @unchecked Sendable {
    public let port: UInt16
    public let directory: URL
    let binaries = "/usr/lib/postgresql/15/bin"
    private var counter = 0
    private let lock = NSLock()

    /// The shared server, started the first time a test needs it.
    public static func shared() throws -> PostgresServer {
        try sharedLock.withLock {
            if let server = sharedServer { return server }
            let server = try PostgresServer()
            sharedServer = server
            atexit { PostgresServer.sharedServer?.stop() }
            return server
        }
    }
    nonisolated(unsafe) private static var sharedServer: PostgresServer?
    private static let sharedLock = NSLock()

    init() throws {
        guard FileManager.default.isExecutableFile(atPath: "\(binaries)/initdb") else {
            throw TestEnvironmentError("PostgreSQL 15 is not installed; run scripts/install-deps test")
        }
        directory = URL(fileURLWithPath: "/tmp/marquee-postgres-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try RedisServer.freePort()
        if getuid() == 0 { try run("/bin/chown", ["postgres:postgres", directory.path]) }
        try runAsPostgres("\(binaries)/initdb", ["-D", directory.path + "/data", "-A", "trust", "-U", "postgres", "--locale=C.UTF-8", "-E", "UTF8"])
        try runAsPostgres(
            "\(binaries)/pg_ctl",
            [
                "-D", directory.path + "/data", "-l", directory.path + "/server.log", "-w", "-t", "60", "-o",
                "-p \(port) -k \(directory.path) -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
                "start",
            ])
    }

    /// A new, empty database on the server, as a `postgres://` URL.
    public func freshDatabaseURL() throws -> String {
        let name = lock.withLock {
            counter += 1
            return "test_\(getpid())_\(counter)"
        }
        try runAsPostgres("\(binaries)/createdb", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", name])
        return "postgres://postgres@127.0.0.1:\(port)/\(name)"
    }

    public func stop() {
        try? runAsPostgres("\(binaries)/pg_ctl", ["-D", directory.path + "/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(at: directory)
    }

    private func runAsPostgres(_ tool: String, _ arguments: [String]) throws {
        if getuid() == 0 {
            try run("/usr/sbin/runuser", ["-u", "postgres", "--", tool] + arguments)
        } else {
            try run(tool, arguments)
        }
    }

    private func run(_ tool: String, _ arguments: [String]) throws {
        let result = try Subprocess.run(tool, arguments)
        guard result.succeeded else {
            throw TestEnvironmentError("\(tool) \(arguments.joined(separator: " ")) failed (status \(result.status)): \(result.output)")
        }
    }
}

/// The SQL engines every repository and API test runs on.
public enum DatabaseKind: String, CaseIterable, Sendable {
    case sqlite
    case postgres

    /// A fresh, empty database of this kind: a new SQLite file under a scratch folder, or a new
    /// database on the shared PostgreSQL server.
    public func freshURL() throws -> String {
        switch self {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-sqlite-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            return "sqlite://" + folder.appendingPathComponent("test.db").path
        case .postgres:
            return try PostgresServer.shared().freshDatabaseURL()
        }
    }
}
