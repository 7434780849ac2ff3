import Glibc

/// What a load run asks for: an `http://HOST[:PORT]/path[?query]` URL, its address resolved once,
/// and the request bytes every connection sends.
public struct LoadTarget: Sendable {
    public let url: String
    public let host: String
    public let port: UInt16
    /// The request target: path and query.
    public let path: String
    /// The server's address, for connect(2).
    public let address: sockaddr_storage
    public let addressLength: socklen_t
    public let request: [UInt8]
    /// The Host field's value.
    public let hostField: String

    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses and resolves `url`. - Throws: `Problem` saying what is wrong with it.
    public init(_ url: String) throws(Problem) {
        guard url.hasPrefix("http://") else {
            throw Problem(description: "\(url.debugDescription): only http:// URLs can be load-tested (TLS is not supported yet)")
        }
        let rest = url.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        guard !authority.isEmpty, !authority.contains("@") else { throw Problem(description: "\(url.debugDescription): no host, or credentials in the URL") }
        var host = String(authority)
        var portText = "80"
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw Problem(description: "\(url.debugDescription): unclosed [ in the host") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { portText = String(after.dropFirst()) } else if !after.isEmpty { throw Problem(description: "\(url.debugDescription): malformed host") }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            portText = String(authority[authority.index(after: colon)...])
        }
        guard let port = UInt16(portText), port > 0 else { throw Problem(description: "\(url.debugDescription): port \(portText.debugDescription) is not 1-65535") }
        guard path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw Problem(description: "\(url.debugDescription): the path must be percent-encoded (no spaces or control bytes)")
        }
        self.url = url
        self.host = host
        self.port = port

        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &found)
        guard rc == 0, let first = found else {
            throw Problem(description: "\(url.debugDescription): cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(found) }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(first.pointee.ai_addrlen))) }
        address = storage
        addressLength = first.pointee.ai_addrlen
        hostField = authority.hasPrefix("[") || port != 80 ? String(authority) : host
        request = Array("GET \(path) HTTP/1.1\r\nHost: \(hostField)\r\nUser-Agent: marquee-loadtest\r\nAccept: */*\r\n\r\n".utf8)
    }
}
