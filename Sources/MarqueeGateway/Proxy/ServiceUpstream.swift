import CLinux
import Glibc

/// An HTTP service the gateway forwards `/api/<name>/...` to (or an edge's upstream):
/// `http://HOST:PORT` with an IPv4 or IPv6 literal, `localhost` or a host name, resolved once at
/// start-up (no DNS on the request path). An edge's upstreams may be `https://` too.
public struct ServiceUpstream: Sendable, CustomStringConvertible {
    public let name: String
    /// `HOST:PORT` as written (brackets kept for IPv6): the Host header for HTTP/1.0 clients.
    public let authority: String
    public let address: SocketAddress
    /// For an `https://` upstream, the name its certificate must carry (and the SNI name asked
    /// for): the host as written, without brackets. Nil for plain HTTP.
    public let tlsServerName: String?

    /// Parses `NAME` and `http://HOST[:PORT][/]` (port 80 by default), or with `allowTLS`
    /// `https://HOST[:PORT][/]` (port 443 by default).
    /// - Throws: `GatewayError.upstream` saying what is wrong: another scheme, a path, credentials, a host name.
    public init(name: String, url: String, allowTLS: Bool = false) throws(GatewayError) {
        guard Self.isValidName(name) else {
            throw .upstream(name, message: "service name \"\(name)\" must be 1-64 characters of a-z 0-9 - _")
        }
        let secure = allowTLS && url.hasPrefix("https://")
        guard url.hasPrefix("http://") || secure else {
            throw .upstream(
                name,
                message: allowTLS
                    ? "\(name): \"\(url)\" must start with http:// or https://"
                    : "service \(name): \"\(url)\" must start with http:// (TLS to services is not supported)")
        }
        var rest = Substring(url.dropFirst(secure ? "https://".count : "http://".count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@"), !rest.contains("?"), !rest.contains("#") else {
            throw .upstream(name, message: "service \(name): \"\(url)\" must be http://HOST:PORT with no path, query or credentials")
        }
        var host = String(rest)
        var port = secure ? "443" : "80"
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
        if host == "localhost" || isLiteral {
            do {
                address = try SocketAddress(parsing: "\(host):\(number)")
            } catch {
                throw .upstream(name, message: "service \(name): \(error)")
            }
        } else {
            // A name (a Kubernetes Service, a DNS record): resolved here, once, at start-up, so the
            // request path never waits for DNS. A Service's cluster address does not change.
            guard Self.isHostName(host), let resolved = Self.resolve(host, port: number) else {
                throw .upstream(name, message: "service \(name): cannot resolve \"\(host)\" (a host name, IPv4 address, [IPv6] address or localhost)")
            }
            address = resolved
        }
        self.name = name
        authority = "\(host):\(number)"
        tlsServerName = secure ? bare : nil
    }

    /// `NAME=http://HOST:PORT` (the `--service` flag).
    public init(assignment: String) throws(GatewayError) {
        guard let equals = assignment.firstIndex(of: "=") else {
            throw .upstream(assignment, message: "--service \"\(assignment)\" must be NAME=http://HOST:PORT")
        }
        try self.init(name: String(assignment[..<equals]), url: String(assignment[assignment.index(after: equals)...]))
    }

    /// Letters, digits, `-` and `.`: a DNS name as URLs spell it.
    static func isHostName(_ host: String) -> Bool {
        !host.isEmpty && host.utf8.count <= 253
            && host.utf8.allSatisfy { ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E }
    }

    /// The first TCP address `getaddrinfo` gives for `host`, or nil.
    static func resolve(_ host: String, port: UInt16) -> SocketAddress? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(list) }
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let address = entry.pointee.ai_addr, entry.pointee.ai_family == AF_INET || entry.pointee.ai_family == AF_INET6 {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(entry.pointee.ai_addrlen))) }
                return SocketAddress(storage: storage)
            }
            cursor = entry.pointee.ai_next
        }
        return nil
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }
    }

    public var description: String { "\(name) → \(tlsServerName == nil ? "http" : "https")://\(authority)" }
}
