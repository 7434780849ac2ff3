/// The SQL dialects the services run on.
public enum SQLDialect: String, Sendable {
    case sqlite
    case postgres
}

/// Something that runs one statement: the database itself (any pooled connection) or the
/// connection of an open transaction.
///
/// Statements use PostgreSQL's numbered placeholders, `$1`, `$2`, ...; the SQLite backend maps
/// them to `?1`, `?2`. Write statements both engines accept (`RETURNING`, `ON CONFLICT`, `BIGINT`,
/// `TEXT`); where they differ, branch on `dialect`.
public protocol SQLExecutor: Sendable {
    var dialect: SQLDialect { get }
    /// Runs one statement and returns every row it produced.
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
}

extension SQLExecutor {
    public func query(_ sql: String, _ binds: any SQLBindable...) async throws -> [SQLRow] {
        try await query(sql, binds.map(\.sqlValue))
    }

    /// Runs a statement for its effect.
    public func execute(_ sql: String, _ binds: any SQLBindable...) async throws {
        _ = try await query(sql, binds.map(\.sqlValue))
    }

    /// The first row, or nil.
    public func first(_ sql: String, _ binds: any SQLBindable...) async throws -> SQLRow? {
        try await query(sql, binds.map(\.sqlValue)).first
    }
}

/// A database: SQLite in a file (the embedded default) or PostgreSQL.
public protocol Database: SQLExecutor {
    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    /// Use only the executor it is given inside; on SQLite the database itself waits until the
    /// transaction ends. SQLite transactions take the write lock at `BEGIN IMMEDIATE`, so two
    /// writers never deadlock on upgrade; PostgreSQL runs READ COMMITTED (lock rows with
    /// `FOR UPDATE` where a read decides a write).
    func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T
    /// Closes every connection.
    func close() async
}

/// Opens the database a URL names: `sqlite:///absolute/path.db`, `sqlite:relative/path.db`,
/// `sqlite::memory:`, or `postgres://user:password@host:port/database` (`postgresql://` too;
/// `?sslmode=disable|prefer|require`).
public func openDatabase(_ url: String) async throws -> any Database {
    switch try DatabaseURL(parsing: url) {
    case .sqlite(let path): try await SQLiteDatabase(path: path)
    case .postgres(let settings): try await PostgresDatabase(settings)
    }
}
