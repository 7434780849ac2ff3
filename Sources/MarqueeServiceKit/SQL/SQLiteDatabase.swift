import Foundation
import Logging
import NIOConcurrencyHelpers
import SQLiteNIO

/// SQLite through one connection (sqlite-nio runs each call on its thread pool). Statements are
/// serialized by an async lock, which is also how a transaction keeps the connection to itself.
/// WAL journaling lets other processes read while one writes; `busy_timeout` makes a writer in
/// another process wait rather than fail.
public final class SQLiteDatabase: Database {
    public var dialect: SQLDialect { .sqlite }
    let connection: SQLiteConnection
    let lock = AsyncLock()

    public init(path: String) async throws {
        if path != ":memory:" {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        do {
            connection = try await SQLiteConnection.open(storage: path == ":memory:" ? .memory : .file(path: path))
        } catch {
            throw DatabaseError.engine("cannot open SQLite database \(path): \(error)")
        }
        // temp_store=MEMORY: statement journals (partial rollback inside a transaction, never needed for
        // recovery) stay in memory instead of temporary files (7% of the billing meter's time went to
        // writing them).
        for pragma in [
            "PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=5000", "PRAGMA foreign_keys=ON", "PRAGMA synchronous=NORMAL", "PRAGMA temp_store=MEMORY",
        ] {
            _ = try await Self.run(connection, pragma, [])
        }
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await lock.withLock { try await Self.run(connection, sql, binds) }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        try await lock.withLock {
            _ = try await Self.run(connection, "BEGIN IMMEDIATE", [])
            do {
                let result = try await body(Transaction(connection: connection))
                _ = try await Self.run(connection, "COMMIT", [])
                return result
            } catch {
                _ = try? await Self.run(connection, "ROLLBACK", [])
                throw error
            }
        }
    }

    public func close() async {
        try? await connection.close()
    }

    struct Transaction: SQLExecutor {
        let connection: SQLiteConnection
        var dialect: SQLDialect { .sqlite }
        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            try await SQLiteDatabase.run(connection, sql, binds)
        }
    }

    static func run(_ connection: SQLiteConnection, _ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let rows = NIOLockedValueBox<[SQLRow]>([])
        do {
            try await connection.query(numberedPlaceholders(sql), binds.map(sqliteData)) { row in
                var values: [String: SQLValue] = [:]
                for column in row.columns { values[column.name] = value(column.data) }
                rows.withLockedValue { $0.append(SQLRow(values)) }
            }
        } catch let error as SQLiteError {
            if error.reason == .constraint || error.reason == .constraintUniqueFailed || error.reason == .constraintPrimaryKeyFailed,
                error.message.contains("UNIQUE") || error.message.contains("PRIMARY KEY")
            {
                throw DatabaseError.uniqueViolation(constraint: error.message)
            }
            throw DatabaseError.engine("SQLite: \(error.message) (in: \(sql.prefix(120)))")
        }
        return rows.withLockedValue { $0 }
    }

    /// `$12` → `?12` outside string literals and quoted identifiers. On the UTF-8 bytes: quotes,
    /// `$` and digits are ASCII, which never occur inside a multi-byte character (this runs for
    /// every statement, and walking `Character`s cost the billing meter a tenth of its CPU).
    static func numberedPlaceholders(_ sql: String) -> String {
        var bytes = Array(sql.utf8)
        var quote: UInt8 = 0
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if quote != 0 {
                if c == quote { quote = 0 }
            } else if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
                quote = c
            } else if c == UInt8(ascii: "$"), i + 1 < bytes.count, bytes[i + 1] >= UInt8(ascii: "0"), bytes[i + 1] <= UInt8(ascii: "9") {
                bytes[i] = UInt8(ascii: "?")
            }
            i += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func sqliteData(_ value: SQLValue) -> SQLiteData {
        switch value {
        case .null: .null
        case .integer(let v): .integer(SQLiteInt64(v))
        case .real(let v): .float(v)
        case .text(let s): .text(s)
        case .blob(let b): .blob(ByteBuffer(bytes: b))
        case .textArray(let a): .text(jsonText(a))
        case .integerArray(let a): .text(jsonText(a))
        }
    }

    static func value(_ data: SQLiteData) -> SQLValue {
        switch data {
        case .null: .null
        case .integer(let v): .integer(Int64(v))
        case .float(let v): .real(v)
        case .text(let s): .text(s)
        case .blob(var buffer): .blob(buffer.readBytes(length: buffer.readableBytes) ?? [])
        }
    }
}

/// An array as JSON text (how SQLite holds what PostgreSQL binds as an array).
private func jsonText(_ value: some Encodable) -> String {
    // Encoding strings or integers cannot fail.
    (try? JSONEncoder().encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
}
