import CLinux
import Glibc

/// An HTTP service the gateway forwards `/api/<name>/...` to: `http://HOST:PORT` with an IPv4 or
/// IPv6 literal or `localhost`, resolved once at start-up (no DNS on the request path, no TLS).
public struct ServiceUpstream: Sendable, CustomStringConvertible {
    public let name: String
    /// `HOST:PORT` as written (brackets kept for IPv6): the Host header for HTTP/1.0 clients.
    public let authority: String
    public let address: SocketAddress

    /// Parses `NAME` and `http://HOST[:PORT][/]` (port 80 by default).
    /// - Throws: `GatewayError.upstream` saying what is wrong: another scheme, a path, credentials, a host name.
    public init(name: String, url: String) throws(GatewayError) {
        guard Self.isValidName(name) else {
            throw .upstream(name, message: "service name \"\(name)\" must be 1-64 characters of a-z 0-9 - _")
        }
        guard url.hasPrefix("http://") else {
            throw .upstream(name, message: "service \(name): \"\(url)\" must start with http:// (TLS to services is not supported)")
        }
        var rest = Substring(url.dropFirst("http://".count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@"), !rest.contains("?"), !rest.contains("#") else {
            throw .upstream(name, message: "service \(name): \"\(url)\" must be http://HOST:PORT with no path, query or credentials")
        }
        var host = String(rest)
        var port = "80"
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw .upstream(name, message: "service \(name): unclosed [ in \"\(url)\"") }
            host = String(rest[...close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .upstream(name, message: "service \(name): malformed address \"\(url)\"") }
                port = String(after.dropFirst())
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            port = String(rest[rest.index(after: colon)...])
        }
        guard let number = UInt16(port), number > 0 else {
            throw .upstream(name, message: "service \(name): \"\(port)\" is not a port (1-65535)")
        }
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        var probe4 = in_addr()
        var probe6 = in6_addr()
        let isLiteral = inet_pton(AF_INET, bare, &probe4) == 1 || (host.hasPrefix("[") && inet_pton(AF_INET6, bare, &probe6) == 1)
        guard host == "localhost" || isLiteral else {
            throw .upstream(name, message: "service \(name): \"\(host)\" must be an IPv4 address, [IPv6] address or localhost (names are not resolved)")
        }
        do {
            address = try SocketAddress(parsing: "\(host):\(number)")
        } catch {
            throw .upstream(name, message: "service \(name): \(error)")
        }
        self.name = name
        authority = "\(host):\(number)"
    }

    /// `NAME=http://HOST:PORT` (the `--service` flag).
    public init(assignment: String) throws(GatewayError) {
        guard let equals = assignment.firstIndex(of: "=") else {
            throw .upstream(assignment, message: "--service \"\(assignment)\" must be NAME=http://HOST:PORT")
        }
        try self.init(name: String(assignment[..<equals]), url: String(assignment[assignment.index(after: equals)...]))
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }
    }

    public var description: String { "\(name) → http://\(authority)" }
}
