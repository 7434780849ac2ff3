import Foundation

/// A parsed database URL (see `openDatabase(_:)`).
public enum DatabaseURL: Sendable, Equatable {
    /// A file path, or `:memory:`.
    case sqlite(path: String)
    case postgres(PostgresSettings)

    public struct PostgresSettings: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var database: String
        public var tls: TLSMode
    }

    public enum TLSMode: String, Sendable {
        case disable
        case prefer
        case require
    }

    public init(parsing url: String) throws(DatabaseError) {
        if url.hasPrefix("sqlite:") {
            var path = String(url.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }  // sqlite:///abs → /abs
            guard !path.isEmpty else { throw .configuration("sqlite URL has no path: \(url)") }
            self = .sqlite(path: path)
            return
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"), let parts = URLComponents(string: url) else {
            throw .configuration("unsupported database URL \(url); use sqlite:///path/file.db or postgres://user:password@host:port/database")
        }
        guard let host = parts.host, !host.isEmpty else { throw .configuration("postgres URL has no host") }
        guard let user = parts.user, !user.isEmpty else { throw .configuration("postgres URL has no user name") }
        let database = String(parts.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw .configuration("postgres URL has no database name") }
        var tls = TLSMode.disable
        for item in parts.queryItems ?? [] where item.name == "sslmode" {
            guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                throw .configuration("sslmode must be disable, prefer or require")
            }
            tls = mode
        }
        self = .postgres(
            PostgresSettings(
                host: host, port: parts.port ?? 5432, user: user.removingPercentEncoding ?? user,
                password: parts.password.map { $0.removingPercentEncoding ?? $0 }, database: database, tls: tls))
    }
}
