import Foundation
import Glibc
import MarqueeTestSupport

/// A small HTTP/1.1 service written with Python's standard library, standing in for the Hummingbird
/// services behind the gateway. It echoes what it received as JSON, and can answer chunked,
/// close-delimited, large or slow, report how many TCP connections it accepted, and serve the
/// catalog's `/api/catalog/access-rules` long poll from a JSON file the test rewrites.
final class ServiceUpstream: @unchecked Sendable {
    let process: Process
    let port: UInt16
    let rulesFile: URL
    let stdout: OutputLog
    let stderr: OutputLog

    static let script = #"""
import hashlib, json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

RULES = sys.argv[1]
lock = threading.Lock()
stats = {"connections": 0, "requests": 0, "paths": []}

def rules():
    try:
        with open(RULES, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        data = b'{"version":0,"titles":[]}'
    return data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"'

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with lock:
            stats["connections"] += 1

    def log_message(self, *args):
        pass

    def send_json(self, status, obj, extra=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "keep-alive")
        self.send_header("Keep-Alive", "timeout=60")
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with lock:
            stats["requests"] += 1
            stats["paths"].append(self.path)
        path = url.path
        if path.endswith("/stats"):
            with lock:
                return self.send_json(200, dict(stats))
        if path.endswith("/access-rules"):
            return self.access_rules(query)
        if path.endswith("/chunked"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in [b"alpha ", b"beta ", b"gamma"]:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if path.endswith("/close"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the connection closes")
            self.close_connection = True
            return
        if path.endswith("/large"):
            size = int(query.get("size", ["10000000"])[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            block = bytes(range(256)) * 256
            sent = 0
            while sent < size:
                n = min(len(block), size - sent)
                self.wfile.write(block[:n])
                sent += n
            return
        if path.endswith("/cut"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 100)
            self.wfile.flush()
            self.close_connection = True
            return
        if path.endswith("/sneaky-close"):
            # Promises keep-alive, then closes: the gateway's pooled connection goes stale.
            self.send_json(200, {"closing": True})
            self.close_connection = True
            return
        if path.endswith("/slow"):
            time.sleep(int(query.get("ms", ["2000"])[0]) / 1000)
        headers = [[k, v] for k, v in self.headers.items()]
        self.send_json(int(query.get("status", ["200"])[0]), {
            "method": self.command, "path": url.path, "query": url.query, "headers": headers,
            "body": body.decode("utf-8", "replace"), "body_sha256": hashlib.sha256(body).hexdigest(),
            "body_length": len(body),
        }, extra=[("X-Upstream", "python"), ("Connection", "X-Private"), ("X-Private", "secret"), ("Trailer", "X-Nothing")])

    def access_rules(self, query):
        wait = float(query.get("wait", ["25"])[0])
        data, etag = rules()
        if self.headers.get("If-None-Match") == etag:
            deadline = time.time() + wait
            while time.time() < deadline:
                time.sleep(0.05)
                data, etag = rules()
                if self.headers.get("If-None-Match") != etag:
                    break
            else:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = handle_any

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""#

    init() throws {
        let folder = try Scratch.newDirectory("upstream")
        let scriptURL = folder.appendingPathComponent("upstream.py")
        try Self.script.write(to: scriptURL, atomically: true, encoding: .utf8)
        rulesFile = folder.appendingPathComponent("rules.json")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [scriptURL.path, rulesFile.path]
        let out = Pipe()
        let err = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
        try? out.fileHandleForWriting.close()
        try? err.fileHandleForWriting.close()
        stdout = OutputLog(reading: out.fileHandleForReading)
        stderr = OutputLog(reading: err.fileHandleForReading)
        guard let line = stdout.wait(timeout: .seconds(10), for: { $0.contains("\n") }), let port = UInt16(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            kill(process.processIdentifier, SIGKILL)
            throw ToolError(description: "the Python upstream did not start: \(stderr.text)")
        }
        self.port = port
    }

    deinit { stop() }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Connections accepted and requests answered so far, and the request targets seen.
    func stats() throws -> (connections: Int, requests: Int, paths: [String]) {
        let response = try Curl.fetch("\(url)/api/x/stats")
        let object = try JSONSerialization.jsonObject(with: response.body) as? [String: Any] ?? [:]
        // The stats request itself is one more connection and request.
        return ((object["connections"] as? Int ?? 1) - 1, (object["requests"] as? Int ?? 1) - 1, object["paths"] as? [String] ?? [])
    }

    /// Replaces the rules the catalog serves (by rename, so a poll never reads half a file).
    func publishRules(_ json: String) throws {
        let temporary = rulesFile.deletingLastPathComponent().appendingPathComponent("rules.tmp")
        try json.write(to: temporary, atomically: false, encoding: .utf8)
        guard rename(temporary.path, rulesFile.path) == 0 else { throw ToolError(description: "rename failed") }
    }
}

/// What the echo endpoint reported.
struct Echo {
    var method: String
    var path: String
    var query: String
    var headers: [(String, String)]
    var body: String
    var bodySHA256: String

    init(_ data: Data) throws {
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ToolError(description: "not an echo: \(String(decoding: data, as: UTF8.self))")
        }
        method = object["method"] as? String ?? ""
        path = object["path"] as? String ?? ""
        query = object["query"] as? String ?? ""
        headers = (object["headers"] as? [[String]] ?? []).map { ($0[0], $0[1]) }
        body = object["body"] as? String ?? ""
        bodySHA256 = object["body_sha256"] as? String ?? ""
    }

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    func headers(named name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
}
