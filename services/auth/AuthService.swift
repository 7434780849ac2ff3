import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import MarqueeServiceKit

/// The auth service: accounts, sign-in, access and refresh tokens, the JWKS.
public struct AuthService: Sendable {
    let settings: AuthSettings
    let database: any Database
    let passwords: PasswordPolicy
    let hasher: PasswordHasher
    let keys: SigningKeys
    let issuer: AccessTokenIssuer
    let refreshTokens: RefreshTokens
    let throttle: LoginThrottle
    /// Verifies access tokens against this service's own keys (no HTTP round trip).
    let verifier: AccessTokenVerifier

    /// Opens nothing: `database` is migrated and ready. Without `encryption` the signing keys
    /// cannot be used (account administration only).
    init(settings: AuthSettings, database: any Database, encryption: SigningKeyEncryption?) {
        self.settings = settings
        self.database = database
        passwords = PasswordPolicy(commonPasswords: ServiceRouter.resource("common-passwords.txt", in: .module))
        hasher = PasswordHasher(cost: settings.bcryptCost)
        keys = SigningKeys(database: database, settings: settings.keys, encryption: encryption)
        issuer = AccessTokenIssuer(keys: keys, issuer: settings.issuer, lifetime: settings.accessTokenLifetime)
        refreshTokens = RefreshTokens(database: database, lifetime: Int64(settings.refreshTokenLifetime * 1000))
        throttle = LoginThrottle(database: database, settings: settings.throttle)
        verifier = AccessTokenVerifier(source: LocalJWKS(keys: keys), issuer: settings.issuer, refetchInterval: 1)
    }

    /// Opens and migrates the database, seals any signing key stored in the clear by an older
    /// version, makes sure a signing key exists, and returns the service.
    ///
    /// - Throws: `AuthSetupError` without `settings.keyEncryptionKeyFile`, when that file is not a
    ///   key, or when the stored signing keys were sealed with another key; database errors.
    public static func open(_ settings: AuthSettings) async throws -> AuthService {
        guard let file = settings.keyEncryptionKeyFile, !file.isEmpty else { throw AuthSetupError.noKeyEncryptionKey }
        let encryption = try SigningKeyEncryption(file: file)
        let database = try await openDatabase(settings.database)
        do {
            try await Migrator.migrate(database, service: "auth", AuthMigrations.all)
            let service = AuthService(settings: settings, database: database, encryption: encryption)
            try await service.keys.sealPlaintextKeys()
            try await service.keys.maintain()
            return service
        } catch {
            await database.close()
            throw error
        }
    }

    /// Opens and migrates the database for account administration only (`marquee users add`):
    /// no key encryption key is needed, and the signing keys are never read or made.
    public static func openForAccounts(_ settings: AuthSettings) async throws -> AuthService {
        let database = try await openDatabase(settings.database)
        do {
            try await Migrator.migrate(database, service: "auth", AuthMigrations.all)
            return AuthService(settings: settings, database: database, encryption: nil)
        } catch {
            await database.close()
            throw error
        }
    }

    /// The HTTP application on `settings.listen`: the API, the JWKS, health, metrics, OpenAPI,
    /// key maintenance. `onServerRunning` learns the bound address (port 0 picks a free one).
    public func application(
        logger: Logger = Logger(label: "marquee.auth"), onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let listener = try ServiceListener(parsing: settings.listen)
        let keys = keys
        return Application(
            router: router(),
            configuration: .init(address: listener.bindAddress, serverName: "marquee-auth"),
            services: [
                PeriodicWork("signing key maintenance", every: .seconds(60), logger: logger) { try await keys.maintain() },
                DatabaseCloser(database),
            ],
            onServerRunning: onServerRunning, logger: logger)
    }

    /// The JWKS straight from the key table, for services in the same process (`marquee dev`, tests).
    public var jwksSource: any JWKSSource { LocalJWKS(keys: keys) }

    /// The private signing keys by key id, opened with the key encryption key: for tests that sign
    /// tokens differing from real ones in one claim. Never served.
    package func privateSigningKeys() async throws -> [String: Curve25519.Signing.PrivateKey] {
        guard let encryption = keys.encryption else { throw AuthSetupError.noKeyEncryptionKey }
        return Dictionary(uniqueKeysWithValues: try await SigningKeys.load(database, encryption).map { ($0.kid, $0.privateKey) })
    }

    /// Closes the database (for one-shot commands such as `marquee users add`).
    public func close() async { await database.close() }

    public static let openAPI = ServiceRouter.resource("openapi.yaml", in: .module)

    /// Every route; public so tests and the OpenAPI check can see them.
    public func router() -> Router<ServiceRequestContext> {
        let router = ServiceRouter.make(name: "auth", openAPI: Self.openAPI, database: database, verifier: verifier)
        router.get("/.well-known/jwks.json") { _, _ in
            try jsonResponse(try await keys.jwks(), headers: [.cacheControl: "public, max-age=60"])
        }
        let api = router.group("/api/auth")
        api.post("/register") { request, context in try await register(request, context) }
        api.post("/login") { request, context in try await login(request, context) }
        api.post("/refresh") { request, _ in try await refresh(request) }
        api.post("/logout") { request, _ in try await logout(request) }
        api.get("/me") { _, context in
            let identity = try context.requireIdentity()
            guard let user = try await user(id: identity.userID), !user.disabled else {
                throw ServiceError.unauthorized("the account no longer exists or is disabled")
            }
            return try jsonResponse(user.publicView)
        }
        api.post("/password") { request, context in try await changePassword(request, context) }
        api.get("/users") { request, context in try await listUsers(request, context) }
        api.post("/users") { request, context in try await createUser(request, context) }
        api.get("/users/:id") { _, context in
            try context.require(.admin)
            return try jsonResponse(try await requireUser(context).adminView)
        }
        api.patch("/users/:id") { request, context in try await updateUser(request, context) }
        api.delete("/users/:id") { _, context in
            try context.require(.admin)
            let user = try await requireUser(context)
            try await database.execute("DELETE FROM users WHERE id = $1", user.id)
            return Response(status: .noContent)
        }
        api.post("/keys/rotate") { _, context in
            try context.require(.admin)
            let kid = try await keys.rotate()
            return try jsonResponse(["kid": kid], status: .accepted)
        }
        return router
    }

    // MARK: - Accounts

    struct Credentials: Decodable {
        let email: String
        let password: String
    }

    func register(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let input = try await decodeJSON(Credentials.self, from: request)
        // Every registration from an address counts, accepted or not: each may cost a bcrypt hash.
        let address = clientAddress(request, context, trustedProxies: settings.trustedProxies)
        if case .refused(let wait) = try await throttle.reserve(throttle.registrationCounters(address: address), now: unixMilliseconds()) {
            throw ServiceError.tooManyRequests("too many registrations from this address; try again in \(wait) s", retryAfterSeconds: wait)
        }
        let user = try await insertAccount(email: input.email, password: input.password, role: .viewer)
        return try jsonResponse(user.publicView, status: .created)
    }

    /// Creates an account after checking the address and the password. A taken address is 409.
    public func createAccount(email rawEmail: String, password: String, role: Role) async throws -> (id: String, email: String, role: Role) {
        let user = try await insertAccount(email: rawEmail, password: password, role: role)
        return (user.id, user.email, user.role)
    }

    func insertAccount(email rawEmail: String, password: String, role: Role) async throws -> UserRecord {
        let email = try EmailAddress.normalize(rawEmail)
        try passwords.check(password, email: email)
        let hash = try await hasher.hash(password)
        let now = unixMilliseconds()
        do {
            let rows = try await database.query(
                """
                INSERT INTO users (id, email, password_hash, role, disabled, created_at, updated_at, password_changed_at)
                VALUES ($1, $2, $3, $4, 0, $5, $5, $5) RETURNING \(UserRecord.columns)
                """, Identifier.make(), email, hash, role.rawValue, now)
            return try UserRecord(rows[0])
        } catch DatabaseError.uniqueViolation {
            throw ServiceError(.conflict, "an account with this email already exists", fields: [.init(field: "email", reason: "is taken")])
        }
    }

    struct TokenPair: Encodable {
        let access_token: String
        let refresh_token: String
        let token_type = "Bearer"
        let expires_in: Int
    }

    func login(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let input = try await decodeJSON(Credentials.self, from: request)
        guard input.password.count <= PasswordPolicy.maximumLength * 4 else { throw ServiceError.invalid("password", "is too long") }
        let email = (try? EmailAddress.normalize(input.email)) ?? input.email.lowercased()
        let address = clientAddress(request, context, trustedProxies: settings.trustedProxies)
        let now = unixMilliseconds()
        // The attempt is counted as a failure before bcrypt runs; the right password gives it back.
        if case .refused(let wait) = try await throttle.reserve(throttle.loginCounters(account: email, address: address), now: now) {
            throw ServiceError.tooManyRequests("too many failed sign-ins; try again in \(wait) s", retryAfterSeconds: wait)
        }
        guard let user = try await user(email: email) else {
            try await hasher.verifyDecoy(input.password)
            throw ServiceError.unauthorized("the email or password is wrong", error: "invalid_grant")
        }
        guard try await hasher.verify(input.password, hash: user.passwordHash) else {
            throw ServiceError.unauthorized("the email or password is wrong", error: "invalid_grant")
        }
        try await throttle.loginSucceeded(account: email, address: address)
        guard !user.disabled else { throw ServiceError.forbidden("the account is disabled") }
        let refresh = try await refreshTokens.issue(userID: user.id, now: now)
        return try await tokenResponse(user, refresh: refresh)
    }

    func tokenResponse(_ user: UserRecord, refresh: String) async throws -> Response {
        let access = try await issuer.issue(userID: user.id, email: user.email, role: user.role)
        return try jsonResponse(
            TokenPair(access_token: access, refresh_token: refresh, expires_in: Int(settings.accessTokenLifetime)),
            headers: [HTTPField.Name("Pragma")!: "no-cache"])
    }

    struct RefreshInput: Decodable {
        let refresh_token: String
    }

    func refresh(_ request: Request) async throws -> Response {
        let input = try await decodeJSON(RefreshInput.self, from: request)
        switch try await refreshTokens.rotate(input.refresh_token, now: unixMilliseconds()) {
        case .refused(let reason):
            throw ServiceError.unauthorized(reason, error: "invalid_grant")
        case .rotated(let userID, let token):
            guard let user = try await user(id: userID) else { throw ServiceError.unauthorized("the account no longer exists") }
            return try await tokenResponse(user, refresh: token)
        }
    }

    func logout(_ request: Request) async throws -> Response {
        let input = try await decodeJSON(RefreshInput.self, from: request)
        try await refreshTokens.revokeFamily(of: input.refresh_token, now: unixMilliseconds())
        return Response(status: .noContent)
    }

    struct PasswordChange: Decodable {
        let current_password: String
        let new_password: String
    }

    /// Changes the password and signs out every session (all refresh tokens revoked).
    func changePassword(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let input = try await decodeJSON(PasswordChange.self, from: request)
        guard let user = try await user(id: identity.userID), !user.disabled else {
            throw ServiceError.unauthorized("the account no longer exists or is disabled")
        }
        guard try await hasher.verify(input.current_password, hash: user.passwordHash) else {
            throw ServiceError(.forbidden, "the current password is wrong", fields: [.init(field: "current_password", reason: "is wrong")])
        }
        try passwords.check(input.new_password, field: "new_password", email: user.email)
        let hash = try await hasher.hash(input.new_password)
        let now = unixMilliseconds()
        let refreshTokens = refreshTokens
        try await database.transaction { tx in
            try await tx.execute(
                "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE id = $3", hash, now, user.id)
            try await refreshTokens.revokeAll(userID: user.id, now: now, in: tx)
        }
        return Response(status: .noContent)
    }

    // MARK: - Administration

    func listUsers(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        try context.require(.admin)
        let limit = try pageLimit(request.uri.queryParameters["limit"].map(String.init))
        var sql = "SELECT \(UserRecord.columns) FROM users"
        var binds: [SQLValue] = []
        if let cursor = request.uri.queryParameters["cursor"].map(String.init) {
            guard let data = Base64URL.decode(cursor), let after = String(data: data, encoding: .utf8), Identifier.isValid(after) else {
                throw ServiceError.invalid("cursor", "is not a cursor this service issued")
            }
            sql += " WHERE id > $1"
            binds.append(.text(after))
        }
        sql += " ORDER BY id LIMIT \(limit + 1)"
        let users = try await database.query(sql, binds).map(UserRecord.init)
        let page = Array(users.prefix(limit))
        let next = users.count > limit ? page.last.map { Base64URL.encode(Array($0.id.utf8)) } : nil
        return try jsonResponse(Page(items: page.map(\.adminView), next_cursor: next))
    }

    struct NewUser: Decodable {
        let email: String
        let password: String
        let role: Role?
    }

    func createUser(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        try context.require(.admin)
        let input = try await decodeJSON(NewUser.self, from: request)
        let user = try await insertAccount(email: input.email, password: input.password, role: input.role ?? .viewer)
        return try jsonResponse(user.adminView, status: .created)
    }

    struct UserChange: Decodable {
        let role: Role?
        let disabled: Bool?
    }

    /// Changes a user's role or disables them; disabling also revokes their refresh tokens.
    func updateUser(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let admin = try context.require(.admin)
        let user = try await requireUser(context)
        let change = try await decodeJSON(UserChange.self, from: request)
        if user.id == admin.userID && (change.disabled == true || (change.role.map { $0 < .admin } ?? false)) {
            throw ServiceError.conflict("admins cannot disable or demote themselves")
        }
        let now = unixMilliseconds()
        let refreshTokens = refreshTokens
        let updated = try await database.transaction { tx in
            let rows = try await tx.query(
                "UPDATE users SET role = $1, disabled = $2, updated_at = $3 WHERE id = $4 RETURNING \(UserRecord.columns)",
                (change.role ?? user.role).rawValue, change.disabled ?? user.disabled, now, user.id)
            if change.disabled == true { try await refreshTokens.revokeAll(userID: user.id, now: now, in: tx) }
            return try UserRecord(rows[0])
        }
        return try jsonResponse(updated.adminView)
    }

    func requireUser(_ context: ServiceRequestContext) async throws -> UserRecord {
        let id = try context.parameters.require("id")
        guard Identifier.isValid(id), let user = try await user(id: id) else { throw ServiceError.notFound("no user \(id)") }
        return user
    }

    func user(id: String) async throws -> UserRecord? {
        try await database.first("SELECT \(UserRecord.columns) FROM users WHERE id = $1", id).map(UserRecord.init)
    }

    func user(email: String) async throws -> UserRecord? {
        try await database.first("SELECT \(UserRecord.columns) FROM users WHERE email = $1", email).map(UserRecord.init)
    }
}

/// The auth service verifies its own tokens from its key table.
struct LocalJWKS: JWKSSource {
    let keys: SigningKeys
    func fetchJWKS() async throws -> String {
        String(decoding: try JSONEncoder().encode(try await keys.jwks()), as: UTF8.self)
    }
}
