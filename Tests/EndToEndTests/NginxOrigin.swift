import Foundation
import Glibc
import MarqueeTestSupport

/// Debian's nginx serving a folder as a foreign origin (no Marquee on that side), with an access
/// log the tests read to count what reached it. Started in the foreground on a free port, killed
/// on `stop()` or deinit; `kill()` and `start()` take it down and bring it back on the same port.
final class NginxOrigin: @unchecked Sendable {
    let root: URL
    let port: UInt16
    let folder: URL
    private var process: Process?

    /// `filesRate`: nginx's limit_rate for `/files/` (`0` is unlimited); `locations`: more
    /// `location` blocks (headers a test wants the origin to send).
    init(root: URL, filesRate: String = "0", locations: String = "") throws {
        self.root = root
        port = try RedisServer.freePort()
        folder = try Scratch.newDirectory("nginx")
        let config = """
            daemon off;
            master_process off;
            worker_processes 1;
            user root;
            pid \(folder.path)/nginx.pid;
            error_log \(folder.path)/error.log;
            events { worker_connections 1024; }
            http {
                types { application/vnd.apple.mpegurl m3u8; application/dash+xml mpd; video/mp4 mp4 m4s; video/mp2t ts; }
                default_type application/octet-stream;
                access_log \(folder.path)/access.log;
                client_body_temp_path \(folder.path)/body;
                proxy_temp_path \(folder.path)/proxy;
                fastcgi_temp_path \(folder.path)/fastcgi;
                uwsgi_temp_path \(folder.path)/uwsgi;
                scgi_temp_path \(folder.path)/scgi;
                keepalive_requests 100000;
                server {
                    listen 127.0.0.1:\(port);
                    root \(root.path);
                    # Slow large files, so a test can act while one is being fetched.
                    location /files/ { limit_rate \(filesRate); }
                    \(locations)
                }
            }
            """
        try config.write(to: folder.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        try start()
    }

    deinit { stop() }

    var url: String { "http://127.0.0.1:\(port)" }

    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        process.arguments = ["-c", folder.appendingPathComponent("nginx.conf").path, "-p", folder.path]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let up = waitUntil(timeout: .seconds(20), interval: .milliseconds(50)) { (try? Curl.fetch(self.url + "/", timeout: .seconds(2))) != nil }
        guard up else { throw ToolError(description: "nginx did not start: \((try? String(contentsOf: folder.appendingPathComponent("error.log"), encoding: .utf8)) ?? "")") }
    }

    /// SIGKILL: the origin is gone, as after a crash.
    func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Request lines in the access log so far (`GET /path HTTP/1.1`).
    var requests: [String] {
        let log = (try? String(contentsOf: folder.appendingPathComponent("access.log"), encoding: .utf8)) ?? ""
        return log.split(separator: "\n").compactMap { line in
            guard let open = line.firstIndex(of: "\""), let close = line[line.index(after: open)...].firstIndex(of: "\"") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
    }

    /// The status nginx answered each request with, in order, for `path`.
    func statuses(_ path: String) -> [Int] {
        let log = (try? String(contentsOf: folder.appendingPathComponent("access.log"), encoding: .utf8)) ?? ""
        return log.split(separator: "\n").compactMap { line in
            guard let open = line.firstIndex(of: "\""), let close = line[line.index(after: open)...].firstIndex(of: "\"") else { return nil }
            let request = line[line.index(after: open)..<close].split(separator: " ")
            guard request.count >= 2, request[1].split(separator: "?").first.map(String.init) == path else { return nil }
            return Int(line[line.index(after: close)...].split(separator: " ").first ?? "")
        }
    }

    /// How many requests for `path` (exactly, query excluded) reached nginx.
    func count(_ path: String) -> Int {
        requests.filter { $0.split(separator: " ").dropFirst().first.map { $0.split(separator: "?").first.map(String.init) == path } ?? false }.count
    }
}
