import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import MarqueeAuth
import MarqueeServiceKit
import MarqueeTestSupport
import NIOCore
import Testing

@Suite("Signing keys at rest (SQLite and PostgreSQL)")
struct SigningKeyStorageTests {
    /// Signs `email` in through the service's router and returns the access token.
    static func accessToken(_ service: AuthService, _ email: String) async throws -> String {
        try await Application(router: service.router()).test(.router) { client in
            let body = try JSONSerialization.data(withJSONObject: ["email": email, "password": "a long enough passphrase"])
            return try await client.execute(uri: "/api/auth/login", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(bytes: body)) {
                response in
                let json = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                return try #require(json?["access_token"] as? String, "login answered \(response.status)")
            }
        }
    }

    /// Every form a 32-byte private key could take in a row or a file.
    static func encodings(of key: Curve25519.Signing.PrivateKey) -> [[UInt8]] {
        let raw = key.rawRepresentation
        return [Array(raw), Array(Base64URL.encode(raw).utf8), Array(raw.base64EncodedString().utf8), Array(raw.map { String(format: "%02x", $0) }.joined().utf8)]
    }

    /// Everything the database stores: the SQLite file and its WAL, or, on PostgreSQL, every
    /// value of the key table as text.
    static func storedBytes(_ kind: DatabaseKind, url: String) async throws -> [UInt8] {
        switch try DatabaseURL(parsing: url) {
        case .sqlite(let path):
            return ["", "-wal", "-journal"].flatMap { Array(FileManager.default.contents(atPath: path + $0) ?? Data()) }
        case .postgres:
            let database = try await openDatabase(url)
            let rows = try await database.query("SELECT kid, private_key, public_key FROM signing_keys", [])
            await database.close()
            return try rows.flatMap { row in try ["kid", "private_key", "public_key"].flatMap { Array(try row.string($0).utf8) } }
        }
    }

    @Test("The database holds no private key material, in any encoding, for the first key and a rotated one", arguments: DatabaseKind.allCases)
    func noPrivateKeyAtRest(kind: DatabaseKind) async throws {
        var settings = AuthSettings()
        settings.database = try kind.freshURL()
        settings.bcryptCost = 4
        settings.keyEncryptionKeyFile = try KeyEncryptionKeyFile.make()
        settings.setKeyRotation(every: 30 * 86400, publishLead: 0)
        let service = try await AuthService.open(settings)
        let admin = try await service.createAccount(email: "root@example.com", password: "a long enough passphrase", role: .admin)
        #expect(admin.role == .admin)
        let token = try await Self.accessToken(service, "root@example.com")
        try await Application(router: service.router()).test(.router) { client in
            try await client.execute(uri: "/api/auth/keys/rotate", method: .post, headers: [.authorization: "Bearer \(token)"]) { #expect($0.status == .accepted) }
        }
        let keys = try await service.privateSigningKeys()
        #expect(keys.count == 2)
        await service.close()
        let stored = try await Self.storedBytes(kind, url: settings.database)
        #expect(!stored.isEmpty)
        for (kid, key) in keys {
            for form in Self.encodings(of: key) {
                #expect(!contains(stored, form), "signing key \(kid)'s private key is stored (\(form.count)-byte form)")
            }
            // The public half stays readable (the JWKS is built from it).
            #expect(contains(stored, Array(Base64URL.encode(key.publicKey.rawRepresentation).utf8)))
        }
    }

    @Test("A restart with the same key file signs tokens the old JWKS verifies; plaintext keys from before are sealed on start", arguments: DatabaseKind.allCases)
    func restartWithSameKey(kind: DatabaseKind) async throws {
        var settings = AuthSettings()
        settings.database = try kind.freshURL()
        settings.bcryptCost = 4
        settings.keyEncryptionKeyFile = try KeyEncryptionKeyFile.make()
        let first = try await AuthService.open(settings)
        _ = try await first.createAccount(email: "ada@example.com", password: "a long enough passphrase", role: .viewer)
        let jwks = try await first.jwksSource.fetchJWKS()
        let before = try await Self.accessToken(first, "ada@example.com")
        await first.close()

        let second = try await AuthService.open(settings)
        let after = try await Self.accessToken(second, "ada@example.com")
        await second.close()
        let oldJWKS = AccessTokenVerifier(source: FixedJWKS(document: jwks), issuer: settings.issuer)
        #expect(try await oldJWKS.verify(after).email == "ada@example.com", "the restarted service signs with the key the old JWKS published")
        #expect(try await oldJWKS.verify(before).email == "ada@example.com")

        // A row as an older version wrote it (the private key in plain base64url) is sealed on the next start.
        let legacy = Curve25519.Signing.PrivateKey()
        let database = try await openDatabase(settings.database)
        try await database.execute(
            "INSERT INTO signing_keys (kid, private_key, public_key, created_at, activates_at) VALUES ($1, $2, $3, $4, $5)", "legacy-key",
            Base64URL.encode(legacy.rawRepresentation), Base64URL.encode(legacy.publicKey.rawRepresentation), 0, Int64.max / 2)
        let third = try await AuthService.open(settings)
        let opened = try await third.privateSigningKeys()
        await third.close()
        #expect(opened["legacy-key"]?.rawRepresentation == legacy.rawRepresentation)
        let row = try #require(try await database.first("SELECT private_key FROM signing_keys WHERE kid = $1", "legacy-key"))
        await database.close()
        #expect(try row.string("private_key").hasPrefix("v1:"))
        #expect(!(try row.string("private_key")).contains(Base64URL.encode(legacy.rawRepresentation)))
    }

    @Test("A wrong, malformed or missing key file stops the start with a message naming the setting", arguments: DatabaseKind.allCases)
    func wrongKeyFile(kind: DatabaseKind) async throws {
        var settings = AuthSettings()
        settings.database = try kind.freshURL()
        settings.bcryptCost = 4
        settings.keyEncryptionKeyFile = try KeyEncryptionKeyFile.make()
        await (try await AuthService.open(settings)).close()

        func startError(_ file: String?) async -> String {
            var other = settings
            other.keyEncryptionKeyFile = file
            do {
                await (try await AuthService.open(other)).close()
                return "started"
            } catch {
                return String(describing: error)
            }
        }
        let wrong = await startError(try KeyEncryptionKeyFile.make())
        #expect(wrong.contains("auth.key_encryption_key_file") && wrong.contains("was encrypted with key encryption key"), "\(wrong)")
        let short = await startError(try KeyEncryptionKeyFile.write("abcdef"))
        #expect(short.contains("64 hexadecimal characters"), "\(short)")
        let missing = await startError("/nonexistent/marquee.kek")
        #expect(missing.contains("cannot read /nonexistent/marquee.kek"), "\(missing)")
        let none = await startError(nil)
        #expect(none.contains("auth.key_encryption_key_file") && none.contains("required"), "\(none)")
        // The right key still opens the same database afterwards.
        #expect(await startError(settings.keyEncryptionKeyFile) == "started")
    }

    func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { start in
            haystack[start] == needle[0] && haystack[start..<start + needle.count].elementsEqual(needle)
        }
    }
}

struct FixedJWKS: JWKSSource {
    let document: String
    func fetchJWKS() async throws -> String { document }
}
