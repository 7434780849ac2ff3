import CLinux
import Glibc

/// A parsed `HOST:PORT` listen address (IPv4, `[IPv6]`, or `localhost`).
public struct SocketAddress: Sendable, CustomStringConvertible {
    public internal(set) var storage = sockaddr_storage()
    public private(set) var family: Int32 = AF_INET

    /// - Throws: `GatewayError.address` when `text` is not `HOST:PORT` with an address host.
    public init(parsing text: String) throws(GatewayError) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw .address(text, message: "not a HOST:PORT address: \(text)")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" || host.isEmpty { host = host.isEmpty ? "0.0.0.0" : "127.0.0.1" }
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            family = AF_INET
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: v4) { dst.copyMemory(from: $0) } }
        } else if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            family = AF_INET6
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: v6) { dst.copyMemory(from: $0) } }
        } else {
            throw .address(text, message: "not a HOST:PORT address: \(text)")
        }
    }

    init(storage: sockaddr_storage) {
        self.storage = storage
        family = Int32(storage.ss_family)
    }

    var length: socklen_t {
        socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
    }

    /// Connects a blocking socket of this address's family (CLI tools talking to a gateway).
    public func connect(_ fd: Int32) -> Bool {
        var copy = storage
        return withUnsafePointer(to: &copy) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) == 0 }
        }
    }

    public var port: UInt16 {
        get {
            withUnsafeBytes(of: storage) { raw in
                family == AF_INET
                    ? UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
                    : UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
            }
        }
        set {
            withUnsafeMutableBytes(of: &storage) { raw in
                if family == AF_INET {
                    var a = raw.load(as: sockaddr_in.self)
                    a.sin_port = newValue.bigEndian
                    raw.storeBytes(of: a, as: sockaddr_in.self)
                } else {
                    var a = raw.load(as: sockaddr_in6.self)
                    a.sin6_port = newValue.bigEndian
                    raw.storeBytes(of: a, as: sockaddr_in6.self)
                }
            }
        }
    }

    public var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        withUnsafeBytes(of: storage) { raw in
            if family == AF_INET {
                var a = raw.load(as: sockaddr_in.self).sin_addr
                inet_ntop(AF_INET, &a, &text, socklen_t(text.count))
            } else {
                var a = raw.load(as: sockaddr_in6.self).sin6_addr
                inet_ntop(AF_INET6, &a, &text, socklen_t(text.count))
            }
        }
        let host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// Opening listening sockets.
enum ListeningSocket {
    /// A bound, listening TCP socket. With `reusePort`, several loops bind the same address and the
    /// kernel spreads connections across them.
    static func open(_ address: SocketAddress, reusePort: Bool, backlog: Int32 = 4096) throws(GatewayError) -> Int32 {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .listener("\(address)", message: "socket for \(address): \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if reusePort { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) }
        // Accepted sockets inherit TCP_NODELAY: responses are written whole, so Nagle only adds delay.
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = address.storage
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, address.length) }
        }
        guard bound == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(fd)
            throw .listener("\(address)", message: "bind \(address): \(message)")
        }
        guard listen(fd, backlog) == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(fd)
            throw .listener("\(address)", message: "listen \(address): \(message)")
        }
        return fd
    }

    /// The address a socket is bound to (the real port after binding port 0).
    static func boundAddress(_ fd: Int32) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return SocketAddress(storage: storage)
    }
}
