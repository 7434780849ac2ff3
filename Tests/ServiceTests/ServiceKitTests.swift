import Foundation
import MarqueeServiceKit
import MarqueeTestSupport
import Testing

@Suite("ServiceKit: database URLs, the SQL layer, migrations")
struct ServiceKitTests {
    @Test("Database URLs: SQLite paths and PostgreSQL URLs parse; anything else names the problem")
    func databaseURLs() throws {
        #expect(try DatabaseURL(parsing: "sqlite:///var/lib/marquee/auth.db") == .sqlite(path: "/var/lib/marquee/auth.db"))
        #expect(try DatabaseURL(parsing: "sqlite:var/auth.db") == .sqlite(path: "var/auth.db"))
        #expect(try DatabaseURL(parsing: "sqlite::memory:") == .sqlite(path: ":memory:"))
        guard case .postgres(let settings) = try DatabaseURL(parsing: "postgresql://mar%40quee:p%3Ass@db.example:6543/catalog?sslmode=require") else {
            Issue.record("not postgres")
            return
        }
        #expect(settings.host == "db.example" && settings.port == 6543 && settings.user == "mar@quee" && settings.password == "p:ss")
        #expect(settings.database == "catalog" && settings.tls == .require)
        for bad in ["mysql://x@y/z", "postgres://host/db", "postgres://u@/db", "postgres://u@h/", "postgres://u@h/db?sslmode=maybe", "sqlite:"] {
            #expect(throws: DatabaseError.self, "\(bad)") { try DatabaseURL(parsing: bad) }
        }
    }

    @Test("The same statements run on both engines: placeholders, RETURNING, upsert, uniqueness as a typed error", arguments: DatabaseKind.allCases)
    func sqlLayer(kind: DatabaseKind) async throws {
        let database = try await openDatabase(try kind.freshURL())
        try await database.execute("CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT NOT NULL, note TEXT, data \(kind == .postgres ? "BYTEA" : "BLOB"))")
        let inserted = try await database.query(
            "INSERT INTO t (id, n, note, data) VALUES ($1, $2, $3, $4) RETURNING id, n", "a", 1, "it's '$1' literally", [UInt8]([0, 1, 255]))
        #expect(try inserted.first?.int("n") == 1)
        let row = try #require(try await database.first("SELECT note, data FROM t WHERE id = $1", "a"))
        #expect(try row.string("note") == "it's '$1' literally", "a $1 inside a string literal is text, not a placeholder")
        #expect(try row.bytes("data") == [0, 1, 255])
        await #expect(throws: DatabaseError.self) { try await database.execute("INSERT INTO t (id, n) VALUES ($1, $2)", "a", 2) }
        do {
            try await database.execute("INSERT INTO t (id, n) VALUES ($1, $2)", "a", 2)
        } catch DatabaseError.uniqueViolation {
        } catch {
            Issue.record("expected uniqueViolation, got \(error)")
        }
        try await database.execute(
            "INSERT INTO t (id, n) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET n = t.n + excluded.n", "a", 41)
        #expect(try await database.first("SELECT n FROM t WHERE id = $1", "a")?.int("n") == 42)
        // A failed transaction leaves nothing behind.
        await #expect(throws: (any Error).self) {
            try await database.transaction { tx in
                try await tx.execute("INSERT INTO t (id, n) VALUES ($1, $2)", "b", 1)
                throw DatabaseError.engine("abort")
            }
        }
        #expect(try await database.first("SELECT id FROM t WHERE id = $1", "b") == nil)
        // Arrays: PostgreSQL's own; SQLite's as JSON text.
        let length = kind == .postgres ? "cardinality($1::text[])" : "json_array_length($1)"
        #expect(try await database.first("SELECT \(length) AS n", SQLValue.textArray(["a", "b\"c", "\\", "\n"]))?.int("n") == 4)
        await database.close()
    }

    @Test("PostgreSQL takes many rows as one array per column: NULLs, quotes and any text come back as they went in")
    func columnArrays() async throws {
        let database = try await openDatabase(try DatabaseKind.postgres.freshURL())
        try await database.execute("CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT, note TEXT)")
        var generator = SeededGenerator(seed: 31)
        let texts = ["", "plain", "it's \"quoted\" \\ {a,b} NULL", "é ☃ 🎬", "line\nbreak\ttab", "$1"]
        var rows: [[SQLValue]] = []
        for i in 0..<2_000 {
            let n: SQLValue = Int.random(in: 0...4, using: &generator) == 0 ? .null : .integer(Int64.random(in: Int64.min...Int64.max, using: &generator))
            let note: SQLValue = i % 7 == 0 ? .null : .text(texts[i % texts.count] + "\(i)")
            rows.append([.text("row-\(i)"), n, note])
        }
        var arrays = ColumnArrays([("id", .text), ("n", .integer), ("note", .text)])
        for row in rows { arrays.append(row) }
        #expect(arrays.count == rows.count)
        let (select, binds) = arrays.select()
        let returned = try await database.query("INSERT INTO t (id, n, note) \(select) RETURNING id", binds)
        #expect(returned.count == rows.count)
        let stored = try await database.query("SELECT id, n, note FROM t", [])
        let byID = Dictionary(uniqueKeysWithValues: try stored.map { (try $0.string("id"), [$0["id"], $0["n"], $0["note"]]) })
        #expect(rows.allSatisfy { row in
            guard case .text(let id) = row[0] else { return false }
            return byID[id] == row
        })
        // No rows: a statement that inserts nothing.
        let empty = ColumnArrays([("id", .text), ("n", .integer), ("note", .text)]).select()
        #expect(try await database.query("INSERT INTO t (id, n, note) \(empty.sql) RETURNING id", empty.binds).isEmpty)
        await database.close()
    }

    @Test("Placeholders are numbered outside literals and quoted identifiers only, in any text", arguments: DatabaseKind.allCases)
    func placeholdersOutsideLiterals(kind: DatabaseKind) async throws {
        let database = try await openDatabase(try kind.freshURL())
        let row = try #require(
            try await database.first(
                "SELECT '$1 it''s $2' AS literal, $2 AS second, $1 || '$$' AS joined, 'é$1ü' AS accented, $1 AS \"$1 quoted\"", "one", "two"))
        #expect(try row.string("literal") == "$1 it's $2")
        #expect(try row.string("second") == "two")
        #expect(try row.string("joined") == "one$$")
        #expect(try row.string("accented") == "é$1ü")
        #expect(try row.string("$1 quoted") == "one")
        await database.close()
    }

    @Test("Migrations apply once, survive a restart, and refuse a database that ran them differently", arguments: DatabaseKind.allCases)
    func migrations(kind: DatabaseKind) async throws {
        let url = try kind.freshURL()
        let first = [Migration(1, "create", ["CREATE TABLE m (id BIGINT PRIMARY KEY)"])]
        let database = try await openDatabase(url)
        try await Migrator.migrate(database, service: "test", first)
        try await Migrator.migrate(database, service: "test", first)
        try await Migrator.migrate(database, service: "other", [Migration(1, "unrelated", ["CREATE TABLE o (id BIGINT)"])])
        let second = first + [Migration(2, "add column", ["ALTER TABLE m ADD COLUMN note TEXT"])]
        try await Migrator.migrate(database, service: "test", second)
        try await database.execute("INSERT INTO m (id, note) VALUES ($1, $2)", 1, "kept")
        await database.close()

        let reopened = try await openDatabase(url)
        try await Migrator.migrate(reopened, service: "test", second)
        #expect(try await reopened.first("SELECT note FROM m WHERE id = 1")?.string("note") == "kept")
        await #expect(throws: DatabaseError.self) {
            try await Migrator.migrate(reopened, service: "test", [Migration(1, "renamed", ["SELECT 1"]), second[1]])
        }
        await #expect(throws: DatabaseError.self, "a binary older than the database refuses to run") {
            try await Migrator.migrate(reopened, service: "test", first)
        }
        await reopened.close()
    }

    @Test("Identifiers sort by creation time and are path-safe")
    func identifiers() {
        let earlier = Identifier.make(at: Date(timeIntervalSince1970: 1_700_000_000))
        let later = Identifier.make(at: Date(timeIntervalSince1970: 1_700_000_001))
        #expect(earlier < later)
        #expect(Identifier.isValid(earlier) && earlier.count == 26)
        #expect(!Identifier.isValid("../../etc/passwd0000000000") && !Identifier.isValid("ABC"))
    }

    @Test("Service credentials: a secret of 32+ visible ASCII bytes from a file; only the exact secret matches")
    func serviceCredentials() throws {
        let secret = String(repeating: "k", count: 31) + "Z"
        let credential = try ServiceCredential(holder: "ingest", grant: .attachPackages, secret: secret)
        #expect(credential.matches(secret[...]))
        #expect(credential.authorization == "Bearer " + secret)
        for other in ["", String(secret.dropLast()), secret + "Z", String(secret.dropLast()) + "z", String(repeating: "k", count: 32)] {
            #expect(!credential.matches(other[...]), "\(other)")
        }
        for bad in ["short", String(repeating: "a", count: 31), String(repeating: "a", count: 32) + " b", String(repeating: "é", count: 20)] {
            #expect(throws: ServiceError.self, "\(bad)") { try ServiceCredential(holder: "x", grant: .attachPackages, secret: bad) }
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-credential-\(UUID().uuidString)")
        try (secret + "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try ServiceCredential(holder: "x", grant: .readAccessRules, secretFile: file.path).matches(secret[...]))
        #expect(throws: ServiceError.self) { try ServiceCredential(holder: "x", grant: .readAccessRules, secretFile: file.path + ".missing") }
    }
}
