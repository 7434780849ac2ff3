import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import JWTKit
import MarqueeAuth
import MarqueeServiceKit
import MarqueeTestSupport
import NIOCore
import NIOHTTP1
import Testing

@Suite("Auth service (SQLite and PostgreSQL)")
struct AuthTests {
    @Test("Register, sign in, me; duplicates and bad input get problem+json naming the field", arguments: DatabaseKind.allCases)
    func registerAndSignIn(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind)
        try await services.run { auth, _ in
            let created = try await auth.send(.post, "/api/auth/register", json: ["email": " Ada@Example.COM ", "password": "correct horse battery"])
            #expect(created.status == .created)
            #expect(created["email"] == "ada@example.com")
            #expect(created["role"] == "viewer")
            #expect(Set(created.json.keys) == ["id", "email", "role"])

            let duplicate = try await auth.send(.post, "/api/auth/register", json: ["email": "ada@example.com", "password": "another passphrase"])
            #expect(duplicate.status == .conflict)
            #expect(duplicate.headers[.contentType] == "application/problem+json")

            let common = try await auth.send(.post, "/api/auth/register", json: ["email": "bob@example.com", "password": "Password1"])
            #expect(common.status == .unprocessableContent)
            #expect(common.detail.contains("common"))
            let short = try await auth.send(.post, "/api/auth/register", json: ["email": "bob@example.com", "password": "s3cr#t"])
            #expect(short.status == .unprocessableContent)
            #expect((short.json["errors"] as? [[String: String]])?.first?["field"] == "password")
            let long = try await auth.send(.post, "/api/auth/register", json: ["email": "bob@example.com", "password": String(repeating: "é", count: 100)])
            #expect(long.status == .created, "a 100-character password (200 bytes, beyond bcrypt's 72) is allowed")
            let badEmail = try await auth.send(.post, "/api/auth/register", json: ["email": "not-an-email", "password": "a long enough passphrase"])
            #expect(badEmail.status == .unprocessableContent)
            #expect(badEmail.detail.hasPrefix("email"))
            let missing = try await auth.send(.post, "/api/auth/register", json: ["email": "c@example.com"])
            #expect(missing.status == .unprocessableContent)
            #expect(missing.detail == "password: is required")
            let wrongType = try await auth.send(.post, "/api/auth/register", json: ["email": "c@example.com", "password": 12_345_678])
            #expect(wrongType.detail == "password: must be a string")
            let notJSON = try await auth.send(.post, "/api/auth/register", raw: "{email")
            #expect(notJSON.status == .badRequest)

            let tokens = try await auth.signIn("ADA@example.com", password: "correct horse battery")
            let me = try await auth.send(.get, "/api/auth/me", token: tokens.access)
            #expect(me.status == .ok)
            #expect(me["email"] == "ada@example.com")
            #expect(try await auth.send(.get, "/api/auth/me").status == .unauthorized)
            let wrong = try await auth.send(.post, "/api/auth/login", json: ["email": "ada@example.com", "password": "wrong passphrase!"])
            #expect(wrong.status == .unauthorized)
            let nobody = try await auth.send(.post, "/api/auth/login", json: ["email": "nobody@example.com", "password": "wrong passphrase!"])
            #expect(nobody.status == .unauthorized)
            #expect(nobody.detail == wrong.detail, "unknown accounts and wrong passwords look the same")
        }
    }

    @Test("Refresh tokens rotate; reusing a spent one revokes the whole family; logout revokes", arguments: DatabaseKind.allCases)
    func refreshRotation(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind)
        try await services.run { auth, _ in
            let first = try await auth.signUp("eve@example.com")
            let second = try await auth.send(.post, "/api/auth/refresh", json: ["refresh_token": first.refresh])
            #expect(second.status == .ok)
            let rotated = try #require(second["refresh_token"])
            #expect(rotated != first.refresh)
            #expect(try await auth.send(.get, "/api/auth/me", token: second["access_token"]).status == .ok)

            // A thief replays the first token: refused, and the legitimate successor dies with it.
            let replay = try await auth.send(.post, "/api/auth/refresh", json: ["refresh_token": first.refresh])
            #expect(replay.status == .unauthorized)
            #expect(replay.detail.contains("already used"))
            let successor = try await auth.send(.post, "/api/auth/refresh", json: ["refresh_token": rotated])
            #expect(successor.status == .unauthorized)
            #expect(successor.detail.contains("revoked"))

            // Logout revokes the family of the token presented, and only that family.
            let laptop = try await auth.signIn("eve@example.com")
            let phone = try await auth.signIn("eve@example.com")
            #expect(try await auth.send(.post, "/api/auth/logout", json: ["refresh_token": laptop.refresh]).status == .noContent)
            #expect(try await auth.send(.post, "/api/auth/refresh", json: ["refresh_token": laptop.refresh]).status == .unauthorized)
            #expect(try await auth.send(.post, "/api/auth/refresh", json: ["refresh_token": phone.refresh]).status == .ok)
            #expect(try await auth.send(.post, "/api/auth/refresh", json: ["refresh_token": "rt_made_up"]).status == .unauthorized)
        }
    }

    @Test("Changing the password needs the current one and signs out every session", arguments: DatabaseKind.allCases)
    func changePassword(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind)
        try await services.run { auth, _ in
            let session = try await auth.signUp("kim@example.com")
            let refused = try await auth.send(
                .post, "/api/auth/password", token: session.access, json: ["current_password": "not it at all", "new_password": "a new passphrase"])
            #expect(refused.status == .forbidden)
            let weak = try await auth.send(
                .post, "/api/auth/password", token: session.access,
                json: ["current_password": "a long enough passphrase", "new_password": "kim@example.com"])
            #expect(weak.status == .unprocessableContent)
            let changed = try await auth.send(
                .post, "/api/auth/password", token: session.access,
                json: ["current_password": "a long enough passphrase", "new_password": "a new passphrase"])
            #expect(changed.status == .noContent)
            #expect(try await auth.send(.post, "/api/auth/refresh", json: ["refresh_token": session.refresh]).status == .unauthorized)
            #expect(try await auth.send(.post, "/api/auth/login", json: ["email": "kim@example.com", "password": "a long enough passphrase"]).status == .unauthorized)
            _ = try await auth.signIn("kim@example.com", password: "a new passphrase")
        }
    }

    @Test("Brute force meets throttling per account (even with the right password) and per address", arguments: DatabaseKind.allCases)
    func throttling(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind) {
            $0.setAccountThrottle(failures: 5, blockSeconds: 60)
            $0.setAddressThrottle(failures: 12, blockSeconds: 300)
        }
        try await services.run { auth, _ in
            _ = try await auth.signUp("target@example.com")
            for _ in 0..<5 {
                let guess = try await auth.send(.post, "/api/auth/login", json: ["email": "target@example.com", "password": "guess guess guess"])
                #expect(guess.status == .unauthorized)
            }
            let blocked = try await auth.send(.post, "/api/auth/login", json: ["email": "target@example.com", "password": "a long enough passphrase"])
            #expect(blocked.status == .tooManyRequests)
            #expect(Int(blocked.headers[.retryAfter] ?? "") ?? 0 > 0)
            // Another account from the same address still works until the address limit.
            _ = try await auth.signUp("other@example.com")
            var statuses: [HTTPResponse.Status] = []
            for i in 0..<8 {
                statuses.append(try await auth.send(.post, "/api/auth/login", json: ["email": "spray\(i)@example.com", "password": "guess guess guess"]).status)
            }
            #expect(statuses.last == .tooManyRequests, "spraying many accounts from one address is throttled: \(statuses)")
            #expect(try await auth.send(.post, "/api/auth/login", json: ["email": "other@example.com", "password": "a long enough passphrase"]).status == .tooManyRequests)
        }
    }

    @Test("50 concurrent wrong guesses: only the account's allowance reaches bcrypt (401), every other one gets 429", arguments: DatabaseKind.allCases)
    func concurrentGuesses(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind) {
            $0.setAccountThrottle(failures: 5, blockSeconds: 60)
            $0.setAddressThrottle(failures: 1000, blockSeconds: 300)
        }
        try await services.run { auth, _ in
            _ = try await auth.signUp("target@example.com")
            let port = try #require(auth.client.port)
            // Many connections, so the guesses really are in flight together (the test client has one).
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 50)
            let client = HTTPClient(configuration: configuration)
            let statuses = try await withThrowingTaskGroup(of: UInt.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/auth/login")
                        request.method = .POST
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.body = .bytes(ByteBuffer(string: #"{"email":"target@example.com","password":"guess guess guess"}"#))
                        let response = try await client.execute(request, timeout: .seconds(60))
                        _ = try await response.body.collect(upTo: 1 << 16)
                        return response.status.code
                    }
                }
                return try await group.reduce(into: [UInt]()) { $0.append($1) }
            }
            try await client.shutdown()
            #expect(statuses.count == 50)
            #expect(statuses.filter { $0 == 401 }.count == 5, "only the 5 reserved attempts reach password verification: \(statuses)")
            #expect(statuses.filter { $0 == 429 }.count == 45, "\(statuses)")
        }
    }

    @Test("Per-address throttling counts an IPv6 client's whole /64, not each address in it", arguments: DatabaseKind.allCases)
    func ipv6Aggregation(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind) {
            $0.setAccountThrottle(failures: 100, blockSeconds: 60)
            $0.setAddressThrottle(failures: 5, blockSeconds: 300)
        }
        try await services.run { auth, _ in
            func guess(_ i: Int, from address: String) async throws -> HTTPResponse.Status {
                try await auth.send(
                    .post, "/api/auth/login", json: ["email": "spray\(i)@example.com", "password": "guess guess guess"],
                    headers: [HTTPField.Name("X-Forwarded-For")!: address]
                ).status
            }
            var statuses: [HTTPResponse.Status] = []
            for i in 0..<20 { statuses.append(try await guess(i, from: "2001:db8:1:2:\(String(i + 1, radix: 16)):\(i):ab:cd")) }
            #expect(statuses.prefix(5).allSatisfy { $0 == .unauthorized }, "\(statuses)")
            #expect(statuses.dropFirst(5).allSatisfy { $0 == .tooManyRequests }, "a new address in the same /64 is the same client: \(statuses)")
            #expect(try await guess(99, from: "2001:db8:1:3::1") == .unauthorized, "the next /64 is someone else")
            #expect(try await guess(98, from: "::ffff:198.51.100.7") == .unauthorized, "an IPv4-mapped address is its IPv4 address")
        }
    }

    @Test("Registration is throttled per client address: 429 with Retry-After past the allowance", arguments: DatabaseKind.allCases)
    func registrationThrottle(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind) { $0.setRegistrationThrottle(perAddress: 3, windowSeconds: 3600) }
        try await services.run { auth, _ in
            func register(_ i: Int, from address: String) async throws -> Client.Reply {
                try await auth.send(
                    .post, "/api/auth/register", json: ["email": "new\(i)@example.com", "password": "a long enough passphrase"],
                    headers: [HTTPField.Name("X-Forwarded-For")!: address])
            }
            for i in 0..<3 { #expect(try await register(i, from: "2001:db8:7:7::\(i + 1)").status == .created) }
            let refused = try await register(3, from: "2001:db8:7:7::99")
            #expect(refused.status == .tooManyRequests, "\(refused.text)")
            #expect((Int(refused.headers[.retryAfter] ?? "") ?? 0) > 3000)
            #expect(refused.headers[.contentType] == "application/problem+json" && refused.detail.contains("registrations"))
            #expect(try await auth.send(.post, "/api/auth/login", json: ["email": "new3@example.com", "password": "a long enough passphrase"]).status == .unauthorized,
                "the refused registration made no account")
            #expect(try await register(4, from: "198.51.100.20").status == .created, "another address is not affected")
        }
    }

    @Test("Forged tokens are refused: alg none, HS256 keyed with the public key, other audience, expired, tampered, unknown key, wrong typ")
    func forgedTokens() async throws {
        let services = try await Services.open(.sqlite)
        try await services.run { auth, _ in
            let session = try await auth.signUp("mallory@example.com")
            let parts = session.access.split(separator: ".").map(String.init)
            let header = try #require(JSONSerialization.jsonObject(with: Base64URL.decode(parts[0])!) as? [String: Any])
            let claims = try #require(JSONSerialization.jsonObject(with: Base64URL.decode(parts[1])!) as? [String: Any])
            let kid = try #require(header["kid"] as? String)
            let jwks = try await auth.send(.get, "/.well-known/jwks.json")
            let publicX = try #require(((jwks.json["keys"] as? [[String: Any]])?.first?["x"]) as? String)

            func encode(_ object: [String: Any]) throws -> String {
                Base64URL.encode(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
            }
            func status(_ token: String) async throws -> HTTPResponse.Status {
                try await auth.send(.get, "/api/auth/me", token: token).status
            }

            // alg: none, no signature
            let none = try encode(["alg": "none", "typ": "at+jwt", "kid": kid]) + "." + parts[1] + "."
            #expect(try await status(none) == .unauthorized)
            // HS256 with the public key bytes as the HMAC secret
            let hsHead = try encode(["alg": "HS256", "typ": "at+jwt", "kid": kid])
            let signingInput = hsHead + "." + parts[1]
            let mac = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: SymmetricKey(data: Base64URL.decode(publicX)!))
            #expect(try await status(signingInput + "." + Base64URL.encode(Data(mac))) == .unauthorized)
            // Tampered payload (role admin), original signature
            var elevated = claims
            elevated["role"] = "admin"
            #expect(try await status(parts[0] + "." + (try encode(elevated)) + "." + parts[2]) == .unauthorized)
            // Unknown key id
            var unknownHead = header
            unknownHead["kid"] = "01aaaaaaaaaaaaaaaaaaaaaaaa"
            #expect(try await status((try encode(unknownHead)) + "." + parts[1] + "." + parts[2]) == .unauthorized)

            // Correctly signed with the real key, but wrong audience / expired / wrong typ.
            let keys = try await services.signingKeys()
            func signed(_ change: (inout [String: Any]) -> Void, typ: String = "at+jwt") async throws -> String {
                var body = claims
                change(&body)
                let head = try encode(["alg": "EdDSA", "typ": typ, "kid": kid])
                let input = head + "." + (try encode(body))
                let signature = try keys[kid]!.signature(for: Data(input.utf8))
                return input + "." + Base64URL.encode(signature)
            }
            #expect(try await status(try await signed { _ in }) == .ok, "a re-signed copy of the real claims is valid: the forgeries above fail for their change")
            let otherAudience = try await signed { $0["aud"] = "another-service" }
            let reply = try await auth.send(.get, "/api/auth/me", token: otherAudience)
            #expect(reply.status == .unauthorized)
            #expect(reply.detail.contains("audience"))
            let expired = try await auth.send(.get, "/api/auth/me", token: try await signed { $0["exp"] = Date().timeIntervalSince1970 - 5 })
            #expect(expired.status == .unauthorized)
            #expect(expired.detail.contains("expired"))
            #expect(try await status(try await signed({ _ in }, typ: "JWT")) == .unauthorized)
            #expect(try await status("not.a.jwt") == .unauthorized)
            #expect(try await auth.send(.get, "/api/auth/me", headers: [.authorization: "Basic Zm9vOmJhcg=="]).status == .unauthorized)
        }
    }

    @Test("Admins manage users; disabling revokes sessions; others get 403", arguments: DatabaseKind.allCases)
    func administration(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind)
        try await services.run { auth, _ in
            let admin = try await services.user(.admin, "root@example.com", client: auth)
            let viewer = try await auth.signUp("v@example.com")
            #expect(try await auth.send(.get, "/api/auth/users", token: viewer.access).status == .forbidden)
            for i in 0..<5 { _ = try await auth.send(.post, "/api/auth/users", token: admin, json: ["email": "u\(i)@example.com", "password": "a long enough passphrase", "role": "publisher"]) }
            var seen: [String] = []
            var cursor: String? = nil
            repeat {
                let page = try await auth.send(.get, "/api/auth/users?limit=3" + (cursor.map { "&cursor=\($0)" } ?? ""), token: admin)
                #expect(page.status == .ok)
                seen += page.items.compactMap { $0["email"] as? String }
                cursor = page.json["next_cursor"] as? String
            } while cursor != nil
            #expect(seen.count == 7 && Set(seen).count == 7)

            let me = try await auth.send(.get, "/api/auth/me", token: viewer.access)
            let id = try #require(me["id"])
            let promoted = try await auth.send(.patch, "/api/auth/users/\(id)", token: admin, json: ["role": "publisher"])
            #expect(promoted["role"] == "publisher")
            let disabled = try await auth.send(.patch, "/api/auth/users/\(id)", token: admin, json: ["disabled": true])
            #expect(disabled.json["disabled"] as? Bool == true)
            #expect(try await auth.send(.post, "/api/auth/refresh", json: ["refresh_token": viewer.refresh]).status == .unauthorized)
            #expect(try await auth.send(.post, "/api/auth/login", json: ["email": "v@example.com", "password": "a long enough passphrase"]).status == .forbidden)
            #expect(try await auth.send(.get, "/api/auth/users/\(id)", token: admin).status == .ok)
            #expect(try await auth.send(.delete, "/api/auth/users/\(id)", token: admin).status == .noContent)
            #expect(try await auth.send(.get, "/api/auth/users/\(id)", token: admin).status == .notFound)
            #expect(try await auth.send(.get, "/api/auth/users/nonsense", token: admin).status == .notFound)
        }
    }

    @Test("Signing keys rotate: published before use, old tokens keep verifying until they expire", arguments: DatabaseKind.allCases)
    func keyRotation(kind: DatabaseKind) async throws {
        let services = try await Services.open(kind) { $0.setKeyRotation(every: 30 * 86400, publishLead: 8) }
        try await services.run { auth, _ in
            let admin = try await services.user(.admin, "root@example.com", client: auth)
            let before = try await auth.send(.get, "/.well-known/jwks.json")
            #expect((before.json["keys"] as? [Any])?.count == 1)
            let rotatedBefore = ContinuousClock.now
            let rotation = try await auth.send(.post, "/api/auth/keys/rotate", token: admin)
            #expect(rotation.status == .accepted)
            let newKid = try #require(rotation["kid"])
            let during = try await auth.send(.get, "/.well-known/jwks.json")
            #expect((during.json["keys"] as? [[String: Any]])?.contains { $0["kid"] as? String == newKid } == true, "published before it signs")
            let early = try await auth.signIn("root@example.com").access
            // Only meaningful if this sign-in (bcrypt, on a loaded machine) ended inside the lead time.
            if ContinuousClock.now - rotatedBefore < .seconds(8) {
                #expect(try kid(of: early) != newKid, "not used before its lead time")
            }
            // After the lead time the new key signs: waited on, with a deadline.
            var fresh = ""
            let signsWithNewKey = try await waitUntil(timeout: .seconds(40), interval: .milliseconds(100)) {
                fresh = try await auth.signIn("root@example.com").access
                return try kid(of: fresh) == newKid
            }
            #expect(signsWithNewKey, "the new key signs once its lead time has passed")
            #expect(try await auth.send(.get, "/api/auth/me", token: admin).status == .ok, "tokens from the old key still verify")
            #expect(try await auth.send(.get, "/api/auth/me", token: fresh).status == .ok)
        }
    }

    @Test("Production settings hash with bcrypt cost 12")
    func bcryptCost() async throws {
        var settings = AuthSettings()
        #expect(settings.bcryptCost == 12)
        settings.database = try DatabaseKind.sqlite.freshURL()
        settings.keyEncryptionKeyFile = try KeyEncryptionKeyFile.make()
        let service = try await AuthService.open(settings)
        _ = try await service.createAccount(email: "cost@example.com", password: "a long enough passphrase", role: .viewer)
        await service.close()
        let database = try await openDatabase(settings.database)
        let hash = try #require(try await database.first("SELECT password_hash FROM users WHERE email = $1", "cost@example.com")).string("password_hash")
        await database.close()
        #expect(hash.hasPrefix("$2b$12$"))
    }

    func kid(of token: String) throws -> String {
        let header = try JSONSerialization.jsonObject(with: Base64URL.decode(token.split(separator: ".")[0])!) as? [String: Any]
        return header?["kid"] as? String ?? ""
    }
}

@Suite("Access token verification")
struct VerifierTests {
    final class CountingSource: JWKSSource, @unchecked Sendable {
        let inner: any JWKSSource
        let lock = NSLock()
        var fetches = 0
        init(_ inner: any JWKSSource) { self.inner = inner }
        func fetchJWKS() async throws -> String {
            lock.withLock { fetches += 1 }
            return try await inner.fetchJWKS()
        }
    }

    @Test("Unknown key ids refetch the JWKS at most once per interval")
    func refetchBound() async throws {
        let services = try await Services.open(.sqlite)
        try await services.run { auth, _ in
            let session = try await auth.signUp("k@example.com")
            let source = CountingSource(services.auth.jwksSource)
            let verifier = AccessTokenVerifier(source: source, refetchInterval: 3600)
            _ = try await verifier.verify(session.access)
            #expect(source.fetches == 1)
            let parts = session.access.split(separator: ".")
            for i in 0..<50 {
                let head = Base64URL.encode(Data(#"{"alg":"EdDSA","typ":"at+jwt","kid":"forged-\#(i)"}"#.utf8))
                await #expect(throws: ServiceError.self) { try await verifier.verify("\(head).\(parts[1]).\(parts[2])") }
            }
            #expect(source.fetches == 1, "a flood of unknown key ids must not become a flood of fetches")
            _ = try await verifier.verify(session.access)
        }
    }
}
