import MarqueeConsole
import MarqueeGateway

/// The edge role: a caching gateway near the players. It runs the same engine and the same
/// player policy as the origin (tokens, geo, rate limits, revocations) and serves from its
/// read-through cache, filled from its upstreams (`HTTPUpstreamSource`) on a miss: concurrent
/// misses for one object make one upstream fetch, and cached objects keep being served while
/// the upstreams are down.
public enum EdgeRole {
    /// Binds, serves until SIGTERM/SIGINT, drains, returns.
    public static func run(_ configuration: ServerConfiguration) throws {
        let server = try Server(configuration: configuration)
        let admin = (server.adminAddress.map { " admin http://\($0)" } ?? "") + (server.redirectAddress.map { " redirect http://\($0)" } ?? "")
        let cache = configuration.readThrough.map { " cache \($0.directory) (\($0.maxBytes) bytes)" } ?? ""
        let source = configuration.readThrough?.upstreamSource as? HTTPUpstreamSource
        let upstreams = source?.upstreams.map { "http://\($0.authority)" } ?? []
        source?.startHealthChecks()
        server.run {
            printLine(
                "marquee edge listening on \(configuration.tls == nil ? "http" : "https")://\(server.mediaAddress)\(admin)\(cache) upstreams \(upstreams.joined(separator: ",")) threads \(configuration.threads)")
        }
        printLine("marquee edge stopped")
    }
}
