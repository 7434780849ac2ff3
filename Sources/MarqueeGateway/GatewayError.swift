/// Why the gateway cannot start, or cannot do what it was asked: one error type whose cases name
/// the setting or resource at fault, so the message tells an operator where to look and a caller
/// can tell the causes apart without reading text.
public enum GatewayError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A configuration key or command-line flag whose value cannot work.
    case setting(key: String, message: String)
    /// A `HOST:PORT` that does not parse.
    case address(String, message: String)
    /// A listener that cannot be opened (socket, bind, listen).
    case listener(String, message: String)
    /// A folder or file the gateway needs and cannot open or create.
    case folder(String, message: String)
    /// A service upstream: its URL does not parse, or it failed to answer (the catalog's rules feed).
    case upstream(String, message: String)
    /// A revocation that cannot be recorded or published.
    case revocation(session: String, message: String)

    /// A setting, named first and then what is wrong with it: `invalid("redis.timeout_ms", "must be
    /// positive")` says "redis.timeout_ms must be positive"; a problem starting with ":" follows
    /// the key directly ("geo.database: <why>").
    public static func invalid(_ key: String, _ problem: String) -> GatewayError {
        .setting(key: key, message: problem.hasPrefix(":") ? key + problem : key + " " + problem)
    }

    /// The full sentence, naming the key or resource.
    public var message: String {
        switch self {
        case .setting(_, let message), .address(_, let message), .listener(_, let message), .folder(_, let message),
            .upstream(_, let message), .revocation(_, let message):
            message
        }
    }

    public var description: String { message }
}
