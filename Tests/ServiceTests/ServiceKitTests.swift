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
