import HTTPTypes
import Hummingbird

/// `HOST:PORT` (IPv6 in brackets) for a service listener.
public struct ServiceListener: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(parsing text: String) throws(ServiceError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ServiceError.badRequest("listen address must be HOST:PORT, got '\(text)'")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw ServiceError.badRequest("listen address must name a host, got '\(text)'") }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var bindAddress: BindAddress { .hostname(host, port: port) }
}
