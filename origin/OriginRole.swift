import MarqueeConsole
import MarqueeGateway

/// The origin role: serves a folder of packaged titles (the object store on disk) to edges and,
/// in single-region deployments, directly to players.
public enum OriginRole {
    /// Binds, serves until SIGTERM/SIGINT, drains, returns.
    public static func run(_ configuration: ServerConfiguration) throws {
        let server = try Server(configuration: configuration)
        let admin = (server.adminAddress.map { " admin http://\($0)" } ?? "") + (server.redirectAddress.map { " redirect http://\($0)" } ?? "")
        server.run {
            printLine(
                "marquee origin listening on \(configuration.tls == nil ? "http" : "https")://\(server.mediaAddress)\(admin) \(configuration.readThrough.map { "cache \($0.directory) (\($0.maxBytes) bytes)" } ?? "root \(configuration.root)") threads \(configuration.threads)")
        }
        printLine("marquee origin stopped")
    }
}
