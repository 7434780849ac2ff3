import Foundation

/// An HTTP/1.1 response as it came off a socket, for the raw-socket tests.
struct HTTPResponse: Sendable {
    var status: Int
    var reason: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    /// The first value of the header `name` (case-insensitive).
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// Removes one complete response from the front of `buffer` and returns it; nil while
    /// `buffer` does not hold a whole one yet. `bodyless` is for answers to HEAD.
    static func take(from buffer: inout [UInt8], bodyless: Bool = false) throws -> HTTPResponse? {
        guard let headEnd = headEnd(in: buffer) else { return nil }
        var response = try parseHead(Array(buffer[0..<headEnd]))
        var length = 0
        if !bodyless && response.status != 204 && response.status != 304 && !(100..<200).contains(response.status) {
            if let value = response.header("Content-Length") {
                guard let parsed = Int(value), parsed >= 0 else { throw Malformed(description: "bad Content-Length \(value)") }
                length = parsed
            }
        }
        guard buffer.count >= headEnd + length else { return nil }
        response.body = Array(buffer[headEnd..<(headEnd + length)])
        buffer.removeFirst(headEnd + length)
        return response
    }

    /// Every complete response in `bytes`, in order, and the bytes left over.
    static func parseAll(_ bytes: [UInt8]) throws -> (responses: [HTTPResponse], leftover: [UInt8]) {
        var buffer = bytes
        var responses: [HTTPResponse] = []
        while let response = try take(from: &buffer) { responses.append(response) }
        return (responses, buffer)
    }

    /// Offset just past the first CRLFCRLF.
    static func headEnd(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4)
        where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i + 4
        }
        return nil
    }

    static func parseHead(_ head: [UInt8]) throws -> HTTPResponse {
        let text = String(decoding: head, as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        guard !lines.isEmpty else { throw Malformed(description: "empty head") }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == "HTTP/1.1" || parts[0] == "HTTP/1.0", let status = Int(parts[1]),
            parts[1].count == 3
        else {
            throw Malformed(description: "bad status line: \(statusLine.debugDescription)")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw Malformed(description: "bad header line: \(line.debugDescription)") }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        return HTTPResponse(status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers, body: [])
    }
}
