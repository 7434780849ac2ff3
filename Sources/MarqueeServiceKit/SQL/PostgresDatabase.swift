import Logging
import NIOCore
import NIOSSL
import PostgresNIO

/// PostgreSQL through postgres-nio's connection pool. The pool runs in a task this object owns
/// from `init` to `close()`.
public final class PostgresDatabase: Database {
    public var dialect: SQLDialect { .postgres }
    let client: PostgresClient
    private let runner: Task<Void, Never>
    static let logger = Logger(label: "marquee.postgres")

    public init(_ settings: DatabaseURL.PostgresSettings, maximumConnections: Int = 10) async throws {
        let tls: PostgresClient.Configuration.TLS =
            switch settings.tls {
            case .disable: .disable
            case .prefer: .prefer(.makeClientConfiguration())
            case .require: .require(.makeClientConfiguration())
            }
        var configuration = PostgresClient.Configuration(
            host: settings.host, port: settings.port, username: settings.user, password: settings.password,
            database: settings.database, tls: tls)
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        let client = PostgresClient(configuration: configuration, backgroundLogger: Self.logger)
        self.client = client
        runner = Task { await client.run() }
        do {
            _ = try await query("SELECT 1", [])
        } catch {
            runner.cancel()
            throw DatabaseError.engine(
                "cannot connect to PostgreSQL at \(settings.host):\(settings.port)/\(settings.database) as \(settings.user): \(error)")
        }
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await Self.run(sql, binds) { try await client.query($0, logger: Self.logger) }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: Self.logger) { connection in
                try await body(Transaction(connection: connection))
            }
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error.beginError ?? error.commitError ?? DatabaseError.engine("PostgreSQL transaction failed")
        }
    }

    public func close() async {
        runner.cancel()
        _ = await runner.value
    }

    struct Transaction: SQLExecutor {
        let connection: PostgresConnection
        var dialect: SQLDialect { .postgres }
        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            try await PostgresDatabase.run(sql, binds) { try await connection.query($0, logger: PostgresDatabase.logger) }
        }
    }

    static func run(_ sql: String, _ binds: [SQLValue], _ send: (PostgresQuery) async throws -> PostgresRowSequence) async throws -> [SQLRow] {
        var bindings = PostgresBindings(capacity: binds.count)
        for value in binds {
            switch value {
            case .null: bindings.appendNull()
            case .integer(let v): bindings.append(v)
            case .real(let v): bindings.append(v)
            case .text(let s): bindings.append(s)
            case .blob(let b): bindings.append(ByteBuffer(bytes: b))
            case .textArray(let a): bindings.append(a)
            case .integerArray(let a): bindings.append(a)
            }
        }
        do {
            var rows: [SQLRow] = []
            for try await row in try await send(PostgresQuery(unsafeSQL: sql, binds: bindings)) {
                var values: [String: SQLValue] = [:]
                for cell in row { values[cell.columnName] = try value(cell) }
                rows.append(SQLRow(values))
            }
            return rows
        } catch let error as PSQLError {
            if let state = error.serverInfo?[.sqlState], state == "23505" {
                throw DatabaseError.uniqueViolation(constraint: error.serverInfo?[.constraintName] ?? "unique")
            }
            let message = error.serverInfo?[.message] ?? String(reflecting: error)
            throw DatabaseError.engine("PostgreSQL: \(message) (in: \(sql.prefix(120)))")
        }
    }

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2: return .integer(Int64(try cell.decode(Int16.self)))
        case .int4: return .integer(Int64(try cell.decode(Int32.self)))
        case .int8: return .integer(try cell.decode(Int64.self))
        case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .float4, .float8: return .real(try cell.decode(Double.self))
        case .bytea:
            var buffer = try cell.decode(ByteBuffer.self)
            return .blob(buffer.readBytes(length: buffer.readableBytes) ?? [])
        default: return .text(try cell.decode(String.self))
        }
    }
}
