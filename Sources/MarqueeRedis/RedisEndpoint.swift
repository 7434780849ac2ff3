import MarqueeHTTP

/// Where a Redis server listens and how to log in, parsed from the usual URL forms:
/// `redis://[[user]:password@]host[:port][/db]` and `unix:///absolute/path[?db=N]`.
///
/// Parsing is strict on purpose: a typo in an endpoint should stop the gateway at startup with a
/// message naming the bad part, not surface later as connection refusals on every request.
public struct RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// TCP host and port, or a Unix socket path.
    public enum Address: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    /// Why an endpoint did not parse; `description` is meant for the operator.
    public enum ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        case empty
        case unsupportedScheme(String)
        case controlCharacter
        case invalidCredentials(String)
        case invalidHost(String)
        case invalidPort(String)
        case invalidDatabase(String)
        case invalidPath(String)

        public var description: String {
            switch self {
            case .empty: return "Redis endpoint is empty"
            case .unsupportedScheme(let s):
                return "Redis endpoint scheme '\(s)' is not supported (use redis://host[:port][/db] or unix:///path)"
            case .controlCharacter: return "Redis endpoint contains whitespace or control characters"
            case .invalidCredentials(let why): return "Redis endpoint credentials are invalid: \(why)"
            case .invalidHost(let h): return "Redis endpoint host '\(h)' is not a host name or IP address"
            case .invalidPort(let p): return "Redis endpoint port '\(p)' is not a number in 1...65535"
            case .invalidDatabase(let d): return "Redis endpoint database '\(d)' is not a number in 0...2147483647"
            case .invalidPath(let p): return "Redis endpoint socket path '\(p)' must be absolute and non-empty"
            }
        }
    }

    public let address: Address
    /// ACL user name for `AUTH user password`; nil means `AUTH password` (the default user).
    public let username: String?
    /// Password sent with AUTH at connect; nil sends no AUTH.
    public let password: String?
    /// Database selected with SELECT at connect (0 sends nothing).
    public let database: Int

    /// The standard Redis port.
    public static let defaultPort = 6379

    public init(address: Address, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.address = address
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses an endpoint URL.
    /// - Throws: ``ParseError`` naming the part that is wrong.
    public init(parsing text: String) throws(ParseError) {
        guard !text.isEmpty else { throw .empty }
        guard !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else { throw .controlCharacter }
        guard let schemeEnd = text.firstRange(of: "://") else { throw .unsupportedScheme(text) }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        let rest = String(text[schemeEnd.upperBound...])
        switch scheme {
        case "unix":
            self = try RedisEndpoint.parseUnix(rest)
        case "redis":
            self = try RedisEndpoint.parseTCP(rest)
        default:
            throw .unsupportedScheme(scheme)
        }
    }

    private static func parseUnix(_ rest: String) throws(ParseError) -> RedisEndpoint {
        var path = rest
        var database = 0
        if let q = rest.firstIndex(of: "?") {
            path = String(rest[..<q])
            let query = rest[rest.index(after: q)...]
            guard query.hasPrefix("db=") else { throw .invalidDatabase(String(query)) }
            database = try parseDatabase(String(query.dropFirst(3)))
        }
        guard path.hasPrefix("/"), path.count > 1, !path.hasSuffix("/") else { throw .invalidPath(path) }
        return RedisEndpoint(address: .unix(path: path), database: database)
    }

    private static func parseTCP(_ rest: String) throws(ParseError) -> RedisEndpoint {
        var authority = Substring(rest)
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            let db = rest[rest.index(after: slash)...]
            if !db.isEmpty { database = try parseDatabase(String(db)) }
        }
        var username: String?
        var password: String?
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
            guard let colon = credentials.firstIndex(of: ":") else {
                throw .invalidCredentials("expected ':password@' or 'user:password@'")
            }
            let user = try percentDecoded(credentials[..<colon])
            let pass = try percentDecoded(credentials[credentials.index(after: colon)...])
            guard !pass.isEmpty else { throw .invalidCredentials("empty password") }
            username = user.isEmpty ? nil : user
            password = pass
        }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .invalidHost(String(authority)) }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidHost(String(authority)) }
                portText = after.dropFirst()
            }
            guard let ip = IPAddress(String(host)), !ip.isIPv4 || host.contains(":") else {
                throw .invalidHost(String(host))
            }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
            guard isHostName(host) else { throw .invalidHost(String(host)) }
        }
        var port = defaultPort
        if let portText {
            guard portText.count <= 5, portText.allSatisfy(\.isASCIIDigit), let p = Int(portText), (1...65535).contains(p)
            else { throw .invalidPort(String(portText)) }
            port = p
        }
        return RedisEndpoint(address: .tcp(host: String(host), port: port), username: username, password: password, database: database)
    }

    private static func parseDatabase(_ text: String) throws(ParseError) -> Int {
        guard !text.isEmpty, text.count <= 10, text.allSatisfy(\.isASCIIDigit), let n = Int(text), n <= Int(Int32.max)
        else { throw .invalidDatabase(text) }
        return n
    }

    /// Letters, digits, `-`, `_` and `.` in dot-separated labels of 1...63, at most 253 in all.
    private static func isHostName(_ host: Substring) -> Bool {
        guard !host.isEmpty, host.utf8.count <= 253 else { return false }
        for label in host.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count <= 63, !label.hasPrefix("-") else { return false }
            for b in label.utf8 {
                switch b {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                    continue
                default: return false
                }
            }
        }
        return true
    }

    private static func percentDecoded(_ text: Substring) throws(ParseError) -> String {
        var out: [UInt8] = []
        var bytes = text.utf8.makeIterator()
        while let b = bytes.next() {
            guard b == UInt8(ascii: "%") else { out.append(b); continue }
            guard let h = bytes.next(), let l = bytes.next(), let hi = hexValue(h), let lo = hexValue(l) else {
                throw .invalidCredentials("bad percent-encoding")
            }
            out.append(hi << 4 | lo)
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw .invalidCredentials("not UTF-8") }
        return s
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The endpoint as a URL with any password replaced by `***`, safe for logs.
    public var description: String {
        let db = database == 0 ? "" : "/\(database)"
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        switch address {
        case .tcp(let host, let port):
            let h = host.contains(":") ? "[\(host)]" : host
            return "redis://\(auth)\(h):\(port)\(db)"
        case .unix(let path):
            return "unix://\(path)" + (database == 0 ? "" : "?db=\(database)")
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
