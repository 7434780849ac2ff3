import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MarqueePolicy
import MarqueeServiceKit
import NIOCore
import ServiceLifecycle

/// The billing service: wallets, idempotent deposits, a double-entry ledger, billed sessions
/// (opened by playback, charged per minute by the meter from the gateways' delivery records),
/// statements and revenue reports.
public struct BillingService: Sendable {
    let settings: BillingSettings
    let database: any Database
    let verifier: AccessTokenVerifier
    let book: BillingBook
    let revoker: any SessionRevoker
    let logger: Logger

    init(settings: BillingSettings, database: any Database, jwks: any JWKSSource, revoker: any SessionRevoker, logger: Logger) {
        self.settings = settings
        self.database = database
        self.revoker = revoker
        self.logger = logger
        verifier = AccessTokenVerifier(source: jwks, issuer: settings.authIssuer)
        book = BillingBook(platformFeePercent: settings.platformFeePercent)
    }

    /// Opens and migrates the database. `jwks` defaults to fetching from `settings.authURL`;
    /// `revoker` tells the gateways about ended and revoked sessions.
    public static func open(
        _ settings: BillingSettings, jwks: (any JWKSSource)? = nil, revoker: (any SessionRevoker)? = nil,
        logger: Logger = Logger(label: "marquee.billing")
    ) async throws -> BillingService {
        guard (0...100).contains(settings.platformFeePercent) else {
            throw ServiceError.badRequest("billing.platform_fee_percent must be 0 to 100, got \(settings.platformFeePercent)")
        }
        guard settings.idempotencyTTLSeconds >= 86_400 else {
            throw ServiceError.badRequest("billing.idempotency_ttl_s must be at least 86400 (24 h), got \(settings.idempotencyTTLSeconds)")
        }
        let database = try await openDatabase(settings.database)
        do {
            try await Migrator.migrate(database, service: "billing", BillingMigrations.all)
            return BillingService(
                settings: settings, database: database, jwks: jwks ?? HTTPJWKSSource(authURL: settings.authURL),
                revoker: revoker ?? LoggingRevoker(logger: logger), logger: logger)
        } catch {
            await database.close()
            throw error
        }
    }

    /// The HTTP application plus the periodic work: idle sessions ending, pending revocations
    /// retried, old idempotency records dropped; and the meter when `meter` is given.
    public func application(
        logger: Logger = Logger(label: "marquee.billing"), onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let listener = try ServiceListener(parsing: settings.listen)
        return Application(
            router: router(), configuration: .init(address: listener.bindAddress, serverName: "marquee-billing"),
            services: [DatabaseCloser(database)], onServerRunning: onServerRunning, logger: logger)
    }

    /// Background work besides requests (run beside the application).
    public func housekeeping(logger: Logger = Logger(label: "marquee.billing")) -> [any Service] {
        [
            PeriodicWork("billing housekeeping", every: .seconds(5), logger: logger) { try await self.housekeep() },
        ]
    }

    public func close() async { await database.close() }

    public static let openAPI = ServiceRouter.resource("openapi.yaml", in: .module)

    public func router() -> Router<ServiceRequestContext> {
        let router = ServiceRouter.make(
            name: "billing", openAPI: Self.openAPI, database: database, verifier: verifier, credentials: settings.credentials)
        let api = router.group("/api/billing")
        api.post("/deposits") { request, context in try await deposit(request, context) }
        api.get("/wallet") { request, context in try await wallet(request, context) }
        api.get("/statement") { request, context in try await statement(request, context) }
        api.get("/revenue") { request, context in try await revenue(request, context) }
        api.get("/sessions/:id") { _, context in
            let identity = try context.require(.viewer)
            let id = try context.parameters.require("id")
            guard let session = try await BillingSession.load(id, database), session.userID == identity.userID || identity.role == .admin else {
                throw ServiceError.notFound("no billed session \(id)")
            }
            return try jsonResponse(session.view)
        }
        // For playback, outside /api/ so that no gateway forwards it to the public.
        router.post("/internal/billing/sessions") { request, context in try await openSession(request, context) }
        router.delete("/internal/billing/sessions/:id") { _, context in try await endSession(context) }
        // For analytics: who watched (by session), and revenue per day for every owner.
        router.get("/internal/billing/sessions") { request, context in try await sessionsForAnalytics(request, context) }
        router.get("/internal/billing/revenue") { request, context in try await revenueForAnalytics(request, context) }
        return router
    }

    // MARK: - Deposits

    struct DepositInput: Decodable {
        let amount: Int64
        let currency: String
        let user_id: String?
    }

    struct Deposited: Codable {
        let deposit_id: String
        let user_id: String
        let currency: String
        let amount: Int64
        let balance: Int64
        let created_at: String
    }

    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let idempotencyReplayed = HTTPField.Name("Idempotency-Replayed")!

    /// `POST /api/billing/deposits` with `Idempotency-Key`: the first answer for a key is stored in
    /// the same transaction as the deposit and replayed for the same body; another body is 422.
    /// Concurrent duplicates serialize on the key's row: exactly one deposit.
    func deposit(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.viewer)
        guard let key = request.headers[Self.idempotencyKey] else {
            throw ServiceError.badRequest("send an Idempotency-Key header (1 to 255 visible ASCII characters) so a retried deposit is not made twice")
        }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw ServiceError.invalid("Idempotency-Key", "must be 1 to 255 visible ASCII characters")
        }
        let input = try await decodeJSON(DepositInput.self, from: request)
        guard input.amount >= 1, input.amount <= settings.maxDeposit else {
            throw ServiceError.invalid("amount", "must be an integer number of minor units from 1 to \(settings.maxDeposit)")
        }
        try Self.validateCurrency(input.currency)
        let target: String
        if identity.role == .admin {
            target = input.user_id ?? identity.userID
        } else {
            guard input.user_id == nil || input.user_id == identity.userID else {
                throw ServiceError.forbidden("only an admin deposits to another user's wallet")
            }
            guard settings.selfServiceDeposits else {
                throw ServiceError.forbidden("deposits are made by an admin here (billing.self_service_deposits is off)")
            }
            target = identity.userID
        }
        guard (1...128).contains(target.utf8.count) else { throw ServiceError.invalid("user_id", "must be a user id") }
        let fingerprint = "amount=\(input.amount)&currency=\(input.currency)&user_id=\(target)"
        let now = unixMilliseconds()
        let caller = identity.userID
        let ttl = settings.idempotencyTTLSeconds * 1000
        let (status, body, replayed) = try await database.transaction { tx -> (Int, String, Bool) in
            // A stale record (past the TTL) is forgotten first; the key then starts afresh.
            try await tx.execute("DELETE FROM billing_idempotency WHERE caller = $1 AND idem_key = $2 AND created_at < $3", caller, key, now - ttl)
            let claimed = try await tx.query(
                "INSERT INTO billing_idempotency (caller, idem_key, request, status, response, created_at) VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (caller, idem_key) DO NOTHING RETURNING idem_key",
                [.text(caller), .text(key), .text(fingerprint), .integer(now)])
            if claimed.isEmpty {
                guard let row = try await tx.first("SELECT request, status, response FROM billing_idempotency WHERE caller = $1 AND idem_key = $2", caller, key)
                else {
                    throw ServiceError.conflict("the Idempotency-Key \(key) is being used by another request; retry")
                }
                guard try row.string("request") == fingerprint else {
                    throw ServiceError(
                        .unprocessableContent, "the Idempotency-Key \(key) was already used for a different deposit; use a new key for a new deposit")
                }
                return (Int(try row.int("status")), try row.string("response"), true)
            }
            let wallet = Account.wallet(target, input.currency)
            let funding = Account.funding(input.currency)
            try await Ledger.ensure(tx, funding, kind: .funding, owner: nil, currency: input.currency)
            try await Ledger.ensure(tx, wallet, kind: .wallet, owner: target, currency: input.currency)
            let transferID = "deposit:\(caller):\(key)"
            _ = try await Ledger.transfer(
                tx, id: transferID, from: funding, to: wallet, amount: input.amount, currency: input.currency, kind: .deposit, .init(now: now))
            let balance = try await Ledger.balance(tx, wallet)
            let answer = Deposited(
                deposit_id: transferID, user_id: target, currency: input.currency, amount: input.amount, balance: balance,
                created_at: rfc3339(milliseconds: now))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let text = String(decoding: try encoder.encode(answer), as: UTF8.self)
            try await tx.execute("UPDATE billing_idempotency SET status = 201, response = $3 WHERE caller = $1 AND idem_key = $2", caller, key, text)
            return (201, text, false)
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        if replayed { headers[Self.idempotencyReplayed] = "true" }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func validateCurrency(_ currency: String, field: String = "currency") throws(ServiceError) {
        guard currency.utf8.count == 3, currency.utf8.allSatisfy({ (0x41...0x5A).contains($0) }) else {
            throw .invalid(field, "must be an ISO 4217 code of three capital letters, e.g. EUR")
        }
    }

    // MARK: - Reads

    /// The user a read is about: the caller, or for an admin the `user_id` query parameter.
    func subject(_ request: Request, _ identity: Identity) throws(ServiceError) -> String {
        guard let other = request.uri.queryParameters["user_id"].map(String.init), other != identity.userID else { return identity.userID }
        guard identity.role == .admin else { throw .forbidden("only an admin reads another user's wallet or statement") }
        return other
    }

    func requiredCurrency(_ request: Request) throws(ServiceError) -> String {
        guard let currency = request.uri.queryParameters["currency"].map(String.init) else {
            throw .invalid("currency", "is required, e.g. ?currency=EUR")
        }
        try Self.validateCurrency(currency)
        return currency
    }

    struct WalletView: Encodable {
        let user_id: String
        let currency: String
        let balance: Int64
        /// Set aside for active sessions' next minutes (not in `balance`).
        let held: Int64
    }

    func wallet(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.viewer)
        let user = try subject(request, identity)
        let currency = try requiredCurrency(request)
        let balance = try await Ledger.balance(database, Account.wallet(user, currency))
        let held = try await database.first(
            "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) AS held FROM billing_accounts WHERE kind = 'hold' AND owner = $1 AND currency = $2", user, currency)?
            .int("held") ?? 0
        return try jsonResponse(WalletView(user_id: user, currency: currency, balance: balance, held: held))
    }

    struct StatementCursor: Codable {
        let t: Int64
        let i: String
    }

    struct StatementLine: Encodable {
        let id: String
        let kind: String
        /// Positive into the wallet, negative out of it.
        let amount: Int64
        let currency: String
        let session_id: String?
        let title_id: String?
        let created_at: String

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(kind, forKey: .kind)
            try c.encode(amount, forKey: .amount)
            try c.encode(currency, forKey: .currency)
            try c.encode(session_id, forKey: .session_id)
            try c.encode(title_id, forKey: .title_id)
            try c.encode(created_at, forKey: .created_at)
        }

        enum CodingKeys: String, CodingKey { case id, kind, amount, currency, session_id, title_id, created_at }
    }

    /// The movements in and out of the wallet, newest first, a page at a time.
    func statement(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.viewer)
        let user = try subject(request, identity)
        let currency = try requiredCurrency(request)
        let query = request.uri.queryParameters
        let limit = try pageLimit(query["limit"].map(String.init))
        let wallet = Account.wallet(user, currency)
        var parameters: [SQLValue] = [.text(wallet)]
        var after = ""
        if let cursor = query["cursor"].map(String.init) {
            let decoded = try PageCursor.decode(StatementCursor.self, from: cursor)
            parameters += [.integer(decoded.t), .text(decoded.i)]
            after = " AND (created_at < $2 OR (created_at = $2 AND id < $3))"
        }
        let rows = try await database.query(
            """
            SELECT id, debit_account, credit_account, amount, currency, kind, session_id, title_id, created_at FROM billing_transfers
            WHERE (debit_account = $1 OR credit_account = $1)\(after) ORDER BY created_at DESC, id DESC LIMIT \(limit + 1)
            """, parameters)
        var lines: [StatementLine] = []
        var last: StatementCursor?
        for row in rows.prefix(limit) {
            let amount = try row.int("amount")
            let createdAt = try row.int("created_at")
            let id = try row.string("id")
            lines.append(
                StatementLine(
                    id: id, kind: try row.string("kind"), amount: try row.string("credit_account") == wallet ? amount : -amount,
                    currency: try row.string("currency"), session_id: row.optionalString("session_id"), title_id: row.optionalString("title_id"),
                    created_at: rfc3339(milliseconds: createdAt)))
            last = StatementCursor(t: createdAt, i: id)
        }
        let next = rows.count > limit ? last.map { PageCursor.encode($0) } : nil
        return try jsonResponse(Page(items: lines, next_cursor: next))
    }

    struct RevenueLine: Encodable {
        let day: String
        let title_id: String
        let currency: String
        let minutes: Int64
        let gross: Int64
        let publisher: Int64
        let platform_fee: Int64
    }

    /// Charged minutes per title per day per currency: a publisher's own titles, or every
    /// title for an admin (`owner=` narrows it to one publisher). `from`/`to` are days
    /// (`YYYY-MM-DD`, inclusive), `title_id` one title.
    func revenue(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.publisher)
        let query = request.uri.queryParameters
        var conditions = ["kind IN ('charge_publisher', 'charge_fee')"]
        var parameters: [SQLValue] = []
        func add(_ condition: String, _ value: String) {
            parameters.append(.text(value))
            conditions.append(condition.replacingOccurrences(of: "?", with: "$\(parameters.count)"))
        }
        if identity.role == .admin {
            if let owner = query["owner"].map(String.init) { add("owner = ?", owner) }
        } else {
            add("owner = ?", identity.userID)
        }
        for (name, op) in [("from", ">="), ("to", "<=")] {
            guard let value = query[Substring(name)].map(String.init) else { continue }
            guard value.utf8.count == 10, Self.isDay(value) else { throw ServiceError.invalid(name, "must be a day, YYYY-MM-DD") }
            add("day \(op) ?", value)
        }
        if let title = query["title_id"].map(String.init) { add("title_id = ?", title) }
        if let currency = query["currency"].map(String.init) {
            try Self.validateCurrency(currency)
            add("currency = ?", currency)
        }
        let rows = try await database.query(
            """
            SELECT day, title_id, currency, COUNT(DISTINCT session_id || ':' || CAST(minute AS TEXT)) AS minutes, CAST(SUM(amount) AS BIGINT) AS gross,
                CAST(SUM(CASE WHEN kind = 'charge_publisher' THEN amount ELSE 0 END) AS BIGINT) AS publisher,
                CAST(SUM(CASE WHEN kind = 'charge_fee' THEN amount ELSE 0 END) AS BIGINT) AS platform_fee
            FROM billing_transfers WHERE \(conditions.joined(separator: " AND "))
            GROUP BY day, title_id, currency ORDER BY day DESC, title_id, currency LIMIT 1000
            """, parameters)
        let lines = try rows.map { row in
            RevenueLine(
                day: try row.string("day"), title_id: try row.string("title_id"), currency: try row.string("currency"),
                minutes: try row.int("minutes"), gross: try row.int("gross"), publisher: try row.int("publisher"),
                platform_fee: try row.int("platform_fee"))
        }
        return try jsonResponse(["items": lines])
    }

    static func isDay(_ text: String) -> Bool {
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let m = Int(parts[1]), let d = Int(parts[2]), Int(parts[0]) != nil
        else { return false }
        return (1...12).contains(m) && (1...31).contains(d)
    }

    // MARK: - Sessions (playback's side)

    struct OpenInput: Decodable {
        let session_id: String
        let user_id: String
        let title_id: String
        let owner: String
        let package_version: String
        let price_per_minute: Int64
        let currency: String
    }

    /// `POST /internal/billing/sessions` (playback's credential, or an admin): records the session
    /// at its price, holds one minute, or answers 402 naming the shortfall. The viewer's cap on
    /// active sessions refuses (409) or ends their oldest, as configured. Opening the same session
    /// again answers it as it is.
    func openSession(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        try context.require(.openBillingSessions, or: .admin)
        let input = try await decodeJSON(OpenInput.self, from: request)
        guard RevocationList.isValidSessionID(input.session_id) else {
            throw ServiceError.invalid("session_id", "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -")
        }
        for (field, value) in [("user_id", input.user_id), ("title_id", input.title_id), ("owner", input.owner), ("package_version", input.package_version)]
        where !(1...128).contains(value.utf8.count) {
            throw ServiceError.invalid(field, "must be 1 to 128 characters")
        }
        guard input.price_per_minute >= 0 else { throw ServiceError.invalid("price_per_minute", "must not be negative") }
        try Self.validateCurrency(input.currency)
        let now = unixMilliseconds()
        let settings = self.settings
        let book = self.book
        let (session, ended) = try await database.transaction { tx -> (BillingSession, [String]) in
            if let existing = try await BillingSession.load(input.session_id, tx) { return (existing, []) }
            // The viewer's active sessions, locked in id order (the meter locks in the same order),
            // then their wallet: concurrent starts by one viewer serialize here.
            let forUpdate = tx.dialect == .postgres ? " FOR UPDATE" : ""
            _ = try await tx.query(
                "SELECT id FROM billing_sessions WHERE user_id = $1 AND state = 'active' ORDER BY id\(forUpdate)", [.text(input.user_id)])
            let wallet = Account.wallet(input.user_id, input.currency)
            try await Ledger.ensure(tx, wallet, kind: .wallet, owner: input.user_id, currency: input.currency)
            _ = try await Ledger.balance(tx, wallet, lock: true)
            var ended: [String] = []
            if settings.maxSessionsPerViewer > 0 {
                let active = try await tx.query(
                    "SELECT id FROM billing_sessions WHERE user_id = $1 AND state = 'active' ORDER BY created_at, id", [.text(input.user_id)])
                if active.count >= settings.maxSessionsPerViewer {
                    guard settings.sessionCapPolicy == .endOldest else {
                        throw ServiceError.conflict(
                            "you already have \(active.count) active sessions, the most at once (billing.max_sessions_per_viewer); end one first")
                    }
                    for row in active.prefix(active.count - settings.maxSessionsPerViewer + 1) {
                        guard var oldest = try await BillingSession.load(try row.string("id"), tx, lock: true) else { continue }
                        try await book.end(&oldest, state: .ended, reason: "replaced", now: now, tx)
                        ended.append(oldest.id)
                    }
                }
            }
            let opened = try await book.open(
                .init(
                    sessionID: input.session_id, userID: input.user_id, titleID: input.title_id, owner: input.owner,
                    packageVersion: input.package_version, pricePerMinute: input.price_per_minute, currency: input.currency), now: now, tx)
            return (opened, ended)
        }
        for id in ended { await revokePending(id) }
        return try jsonResponse(session.view, status: .created)
    }

    /// `DELETE /internal/billing/sessions/{id}`: the session ends, its hold goes back to the
    /// wallet, its URLs are revoked on the gateways. Ending a session that is over is a no-op.
    func endSession(_ context: ServiceRequestContext) async throws -> Response {
        try context.require(.openBillingSessions, or: .admin)
        let id = try context.parameters.require("id")
        let now = unixMilliseconds()
        let book = self.book
        let session = try await database.transaction { tx -> BillingSession in
            guard var session = try await BillingSession.load(id, tx, lock: true) else { throw ServiceError.notFound("no billed session \(id)") }
            try await book.end(&session, state: .ended, reason: "ended", now: now, tx)
            return session
        }
        await revokePending(session.id)
        return try jsonResponse(session.view)
    }

    // MARK: - Analytics' side

    struct SessionFact: Encodable {
        let session_id: String
        let user_id: String
        let title_id: String
        let owner: String
        let package_version: String
        /// Unix milliseconds.
        let created_at: Int64
        let ended_at: Int64?
        let state: String
    }

    /// `GET /internal/billing/sessions?ids=a,b,...` (analytics' credential, or an admin): the
    /// sessions billing knows among up to 500 ids; unknown ids are left out.
    func sessionsForAnalytics(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        try context.require(.readBilling, or: .admin)
        let text = request.uri.queryParameters["ids"].map(String.init) ?? ""
        let ids = text.split(separator: ",").map(String.init)
        guard (1...500).contains(ids.count), ids.allSatisfy(RevocationList.isValidSessionID) else {
            throw ServiceError.invalid("ids", "must be 1 to 500 session ids, comma-separated")
        }
        let sessions = try await BillingSession.loadMany(ids, database)
        let facts = ids.compactMap { sessions[$0] }.map {
            SessionFact(
                session_id: $0.id, user_id: $0.userID, title_id: $0.titleID, owner: $0.owner, package_version: $0.packageVersion,
                created_at: $0.createdAt, ended_at: $0.endedAt, state: $0.state.rawValue)
        }
        return try jsonResponse(["items": facts])
    }

    struct OwnerRevenueLine: Encodable {
        let day: String
        let title_id: String
        let owner: String
        let currency: String
        let minutes: Int64
        let gross: Int64
        let publisher: Int64
        let platform_fee: Int64
    }

    /// `GET /internal/billing/revenue?from=YYYY-MM-DD` (analytics' credential, or an admin):
    /// charged minutes and amounts per day, title, owner and currency since `from`, every owner.
    func revenueForAnalytics(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        try context.require(.readBilling, or: .admin)
        guard let from = request.uri.queryParameters["from"].map(String.init), from.utf8.count == 10, Self.isDay(from) else {
            throw ServiceError.invalid("from", "must be a day, YYYY-MM-DD")
        }
        let rows = try await database.query(
            """
            SELECT day, title_id, owner, currency, COUNT(DISTINCT session_id || ':' || CAST(minute AS TEXT)) AS minutes, CAST(SUM(amount) AS BIGINT) AS gross,
                CAST(SUM(CASE WHEN kind = 'charge_publisher' THEN amount ELSE 0 END) AS BIGINT) AS publisher,
                CAST(SUM(CASE WHEN kind = 'charge_fee' THEN amount ELSE 0 END) AS BIGINT) AS platform_fee
            FROM billing_transfers WHERE kind IN ('charge_publisher', 'charge_fee') AND day >= $1
            GROUP BY day, title_id, owner, currency ORDER BY day, title_id, currency LIMIT 100000
            """, [.text(from)])
        let lines = try rows.map { row in
            OwnerRevenueLine(
                day: try row.string("day"), title_id: try row.string("title_id"), owner: row.optionalString("owner") ?? "",
                currency: try row.string("currency"), minutes: try row.int("minutes"), gross: try row.int("gross"),
                publisher: try row.int("publisher"), platform_fee: try row.int("platform_fee"))
        }
        return try jsonResponse(["items": lines])
    }

    // MARK: - Housekeeping

    /// Tells the gateways about a session that ended or was revoked, then clears its mark; a
    /// failure leaves the mark for the next round.
    func revokePending(_ id: String) async {
        do {
            guard let row = try await database.first("SELECT revoke_pending FROM billing_sessions WHERE id = $1", id),
                let reasonText = row.optionalString("revoke_pending"), let reason = RevocationReason(reasonText)
            else { return }
            try await revoker.revoke(id, reason: reason, ttlSeconds: settings.revocationTTLSeconds)
            try await database.execute("UPDATE billing_sessions SET revoke_pending = NULL, version = version + 1 WHERE id = $1 AND revoke_pending = $2", id, reasonText)
        } catch {
            logger.warning("revoking session \(id) on the gateways failed; retrying later", metadata: ["error": "\(error)"])
        }
    }

    /// Ends idle sessions, retries pending revocations, forgets expired idempotency records.
    func housekeep(now: Int64 = unixMilliseconds()) async throws {
        let idle = try await database.query(
            "SELECT id FROM billing_sessions WHERE state = 'active' AND last_activity < $1 ORDER BY id LIMIT 500",
            [.integer(now - settings.sessionIdleSeconds * 1000)])
        let book = self.book
        let idleLimit = now - settings.sessionIdleSeconds * 1000
        for row in idle {
            let id = try row.string("id")
            try await database.transaction { tx in
                guard var session = try await BillingSession.load(id, tx, lock: true), session.state == .active, session.lastActivity < idleLimit
                else { return }
                try await book.end(&session, state: .ended, reason: "idle", now: now, tx)
            }
        }
        let pending = try await database.query("SELECT id FROM billing_sessions WHERE revoke_pending IS NOT NULL ORDER BY id LIMIT 500", [])
        for row in pending { await revokePending(try row.string("id")) }
        try await database.execute("DELETE FROM billing_idempotency WHERE created_at < $1", now - settings.idempotencyTTLSeconds * 1000)
    }
}
