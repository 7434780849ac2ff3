/// Header fields that describe one connection rather than the message (RFC 9110 §7.6.1): a proxy
/// consumes them and never forwards them, along with any field a `Connection` header names.
public enum HopByHop {
    /// Whether `name` is always hop-by-hop: Connection, Keep-Alive, Proxy-Connection, TE, Upgrade,
    /// Trailer, Transfer-Encoding (the proxy frames each hop itself) and Proxy-Authorization.
    public static func isAlwaysHopByHop(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 2: return name.equalsLowercase("te")
        case 7: return name.equalsLowercase("upgrade") || name.equalsLowercase("trailer")
        case 10: return name.equalsLowercase("connection") || name.equalsLowercase("keep-alive")
        case 16: return name.equalsLowercase("proxy-connection")
        case 17: return name.equalsLowercase("transfer-encoding")
        case 19: return name.equalsLowercase("proxy-authorization")
        default: return false
        }
    }

    /// Whether the field `name` of `fields` must not be forwarded.
    public static func isHopByHop(_ name: UnsafeRawBufferPointer, in fields: HeaderFields) -> Bool {
        isAlwaysHopByHop(name) || fields.connectionNames(name)
    }
}
