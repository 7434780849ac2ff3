import Foundation
import MarqueeTestSupport

/// What curl got for one URL.
struct CurlResponse: Sendable {
    var termination: Termination
    /// 0 when no response arrived.
    var status: Int
    var headers: [(name: String, value: String)]
    var body: Data
    var stderr: String

    /// The first value of the header `name` (case-insensitive).
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func headers(named name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// A curl transfer under way (so that many can run at once).
final class CurlTransfer: @unchecked Sendable {
    let tool: RunningTool
    let headURL: URL
    let bodyURL: URL
    let timeout: Duration

    init(_ url: String, _ options: [String], timeout: Duration) throws {
        headURL = Scratch.newFile("curl-head")
        bodyURL = Scratch.newFile("curl-body")
        self.timeout = timeout
        tool = try RunningTool(
            Curl.path,
            ["-sS", "--globoff", "--path-as-is", "--max-time", "\(Int(timeout.seconds))", "-D", headURL.path, "-o", bodyURL.path]
                + options + [url])
    }

    /// The body file while the transfer runs (it grows as bytes arrive).
    var bytesReceivedSoFar: Int {
        ((try? FileManager.default.attributesOfItem(atPath: bodyURL.path))?[.size] as? Int) ?? 0
    }

    func finish() throws -> CurlResponse {
        let result = try tool.finish(timeout: timeout + .seconds(10))
        defer {
            try? FileManager.default.removeItem(at: headURL)
            try? FileManager.default.removeItem(at: bodyURL)
        }
        let headText = (try? String(contentsOf: headURL, encoding: .isoLatin1)) ?? ""
        // -D writes every head curl saw; the last one is the response's.
        let head = headText.components(separatedBy: "\r\n\r\n").last { !$0.isEmpty } ?? ""
        var lines = head.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        var status = 0
        if let statusLine = lines.first, statusLine.hasPrefix("HTTP/") {
            lines.removeFirst()
            let parts = statusLine.split(separator: " ")
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        }
        let headers = lines.compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return CurlResponse(
            termination: result.termination, status: status, headers: headers,
            body: (try? Data(contentsOf: bodyURL)) ?? Data(), stderr: result.stderrText)
    }
}

/// Runs the real curl (`-sS`) against the server.
enum Curl {
    static let path = "/usr/bin/curl"

    /// Fetches `url` with extra curl `options` (`-I`, `-r 0-99`, `-H ...`) and captures head and body.
    static func fetch(_ url: String, _ options: [String] = [], timeout: Duration = .seconds(30)) throws -> CurlResponse {
        try CurlTransfer(url, options, timeout: timeout).finish()
    }

    /// Starts a transfer and returns at once.
    static func start(_ url: String, _ options: [String] = [], timeout: Duration = .seconds(30)) throws -> CurlTransfer {
        try CurlTransfer(url, options, timeout: timeout)
    }

    /// Runs curl with exactly `arguments` (plus `-sS`), for several URLs in one invocation.
    static func run(_ arguments: [String], timeout: Duration = .seconds(30)) throws -> ToolResult {
        try Tool.run(path, ["-sS", "--max-time", "\(Int(timeout.seconds))"] + arguments, timeout: timeout + .seconds(10))
    }
}
