import Foundation

/// One schema change: statements per dialect, applied in order, each migration in its own
/// transaction with its row in `marquee_migrations`.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let statements: @Sendable (SQLDialect) -> [String]

    public init(_ version: Int, _ name: String, statements: @escaping @Sendable (SQLDialect) -> [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }

    /// The same statements on both engines.
    public init(_ version: Int, _ name: String, _ statements: [String]) {
        self.init(version, name) { _ in statements }
    }
}

/// Brings a database up to date. Several services may share one database (each has its own
/// `service` rows) and several instances may start at once: PostgreSQL serializes them with an
/// advisory lock, SQLite with its write lock. A database that has migrations this binary does not
/// know, or that ran a migration under another name, is refused rather than guessed at.
public enum Migrator {
    public static func migrate(_ database: any Database, service: String, _ migrations: [Migration]) async throws {
        try await database.execute(
            "CREATE TABLE IF NOT EXISTS marquee_migrations (service TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (service, version))"
        )
        for migration in migrations.sorted(by: { $0.version < $1.version }) {
            try await database.transaction { tx in
                if tx.dialect == .postgres {
                    try await tx.execute("SELECT pg_advisory_xact_lock(7400211)")
                }
                let applied = try await tx.query("SELECT version, name FROM marquee_migrations WHERE service = $1", service)
                let known = Dictionary(uniqueKeysWithValues: try applied.map { (try $0.int("version"), try $0.string("name")) })
                if let newest = known.keys.max(), newest > Int64(migrations.map(\.version).max() ?? 0) {
                    throw DatabaseError.migration("the \(service) database is at version \(newest), newer than this binary knows")
                }
                if let name = known[Int64(migration.version)] {
                    guard name == migration.name else {
                        throw DatabaseError.migration("\(service) migration \(migration.version) ran as '\(name)', this binary calls it '\(migration.name)'")
                    }
                    return
                }
                for statement in migration.statements(tx.dialect) {
                    try await tx.execute(statement)
                }
                try await tx.execute(
                    "INSERT INTO marquee_migrations (service, version, name, applied_at) VALUES ($1, $2, $3, $4)",
                    service, migration.version, migration.name, Int64(Date().timeIntervalSince1970 * 1000))
            }
        }
    }
}
