import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import MarqueeServiceKit

/// The catalog service: titles, their metadata, prices, geo rules, availability and packages.
public struct CatalogService: Sendable {
    let settings: CatalogSettings
    let database: any Database
    let verifier: AccessTokenVerifier
    let rules: AccessRulesFeed

    init(settings: CatalogSettings, database: any Database, jwks: any JWKSSource) {
        self.settings = settings
        self.database = database
        verifier = AccessTokenVerifier(source: jwks, issuer: settings.authIssuer)
        rules = AccessRulesFeed(
            database: database, maxWaiting: settings.maxWaitingPolls, recheck: .milliseconds(settings.rulesRecheckMilliseconds))
    }

    /// Opens and migrates the database. `jwks` defaults to fetching from `settings.authURL`.
    public static func open(_ settings: CatalogSettings, jwks: (any JWKSSource)? = nil) async throws -> CatalogService {
        let database = try await openDatabase(settings.database)
        do {
            try await Migrator.migrate(database, service: "catalog", CatalogMigrations.all)
            return CatalogService(settings: settings, database: database, jwks: jwks ?? HTTPJWKSSource(authURL: settings.authURL))
        } catch {
            await database.close()
            throw error
        }
    }

    /// The service as a Hummingbird application on `settings.listen`; `onServerRunning` learns the
    /// bound address (port 0 picks a free one).
    public func application(
        logger: Logger = Logger(label: "marquee.catalog"), onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let listener = try ServiceListener(parsing: settings.listen)
        return Application(
            router: router(), configuration: .init(address: listener.bindAddress, serverName: "marquee-catalog"),
            services: [DatabaseCloser(database)], onServerRunning: onServerRunning, logger: logger)
    }

    public func close() async { await database.close() }

    /// Access-rules long polls waiting now (at most `maxWaitingPolls`).
    public var waitingRulePolls: Int { rules.changes.waiting }

    public static let openAPI = ServiceRouter.resource("openapi.yaml", in: .module)

    public func router() -> Router<ServiceRequestContext> {
        let router = ServiceRouter.make(
            name: "catalog", openAPI: Self.openAPI, database: database, verifier: verifier, credentials: settings.credentials)
        let api = router.group("/api/catalog")
        api.get("/titles") { request, context in try await list(request, context) }
        api.post("/titles") { request, context in try await create(request, context) }
        api.get("/titles/:id") { _, context in
            let title = try await visibleTitle(context)
            return try jsonResponse(title.view(for: context), headers: [.eTag: title.entityTag])
        }
        api.patch("/titles/:id") { request, context in try await update(request, context) }
        api.delete("/titles/:id") { request, context in try await delete(request, context) }
        api.post("/titles/:id/publish") { _, context in
            try await transition(context, to: .published, from: [.ready, .withdrawn, .published]) { title in
                "title \(title.id) is \(title.status.rawValue): it has no package yet; ingest it first"
            }
        }
        api.post("/titles/:id/withdraw") { _, context in
            try await transition(context, to: .withdrawn, from: [.published, .withdrawn]) { title in
                "title \(title.id) is \(title.status.rawValue), not published"
            }
        }
        api.put("/titles/:id/package") { request, context in try await attachPackage(request, context) }
        // For gateways, outside /api/ so that no gateway forwards it to the public.
        router.get("/internal/access-rules") { request, context in try await rules.respond(to: request, context) }
        return router
    }

    // MARK: - Reading

    func list(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        let staff = (context.identity?.role ?? .viewer) >= .publisher
        var listing = TitleListing(statuses: [.published])
        listing.limit = try pageLimit(query["limit"].map(String.init))
        if let q = query["q"].map(String.init), !q.isEmpty {
            guard q.count <= 200 else { throw ServiceError.invalid("q", "must be at most 200 characters") }
            listing.search = q
        }
        if let genre = query["genre"].map(String.init), !genre.isEmpty { listing.genre = genre.lowercased() }
        if let sort = query["sort"].map(String.init) {
            guard let value = TitleListing.Sort(rawValue: sort) else {
                throw ServiceError.invalid("sort", "must be one of \(TitleListing.Sort.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            listing.sort = value
        }
        if let status = query["status"].map(String.init), !status.isEmpty {
            var statuses: [TitleStatus] = []
            for name in status.split(separator: ",") {
                guard let value = TitleStatus(rawValue: String(name)) else {
                    throw ServiceError.invalid("status", "must be one or more of \(TitleStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                statuses.append(value)
            }
            guard staff || statuses == [.published] else {
                throw ServiceError.forbidden("only publishers and admins see titles that are not published")
            }
            listing.statuses = statuses
        } else if staff {
            listing.statuses = []
        }
        if !staff { listing.onlyAvailableAt = unixMilliseconds() }
        if let cursor = query["cursor"].map(String.init) {
            let after = try PageCursor.decode(TitleListing.Cursor.self, from: cursor)
            guard after.s == listing.sort.rawValue else { throw ServiceError.invalid("cursor", "belongs to another sort order") }
            listing.after = after
        }
        let (sql, binds) = listing.sql(dialect: database.dialect)
        let titles = try await database.query(sql, binds).map(TitleRecord.init)
        let page = Array(titles.prefix(listing.limit))
        let next = titles.count > listing.limit ? page.last.map { PageCursor.encode(listing.cursor(after: $0)) } : nil
        return try jsonResponse(Page(items: page.map { $0.view(showingOwner: staff) }, next_cursor: next))
    }

    /// The title, if the caller may see it: staff see every title, viewers published ones inside
    /// their window. Anything else is 404, so drafts do not leak their existence.
    func visibleTitle(_ context: ServiceRequestContext) async throws -> TitleRecord {
        let title = try await requireTitle(context, in: database)
        if (context.identity?.role ?? .viewer) >= .publisher || title.isVisibleToViewers(at: unixMilliseconds()) { return title }
        throw ServiceError.notFound("no title \(title.id)")
    }

    func requireTitle(_ context: ServiceRequestContext, in executor: any SQLExecutor, lock: Bool = false) async throws -> TitleRecord {
        let id = try context.parameters.require("id")
        let forUpdate = lock && executor.dialect == .postgres ? " FOR UPDATE" : ""
        guard Identifier.isValid(id),
            let row = try await executor.first("SELECT \(TitleRecord.columns) FROM titles WHERE id = $1\(forUpdate)", id)
        else {
            throw ServiceError.notFound("no title \(id)")
        }
        return try TitleRecord(row)
    }

    // MARK: - Writing

    func create(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.publisher)
        let input = try await decodeJSON(TitleInput.self, from: request)
        let now = unixMilliseconds()
        var title = TitleRecord.blank(id: Identifier.make(), createdBy: identity.userID, now: now)
        try input.apply(to: &title, creating: true)
        let saved = title
        try await database.transaction { tx in
            try await Self.insert(saved, tx)
            try await AccessRulesFeed.bump(tx)
        }
        rules.changed()
        var headers = HTTPFields()
        headers[.location] = "/api/catalog/titles/\(title.id)"
        headers[.eTag] = title.entityTag
        return try jsonResponse(title.view(for: context), status: .created, headers: headers)
    }

    /// PATCH with JSON merge semantics, sent as `application/json` or as an RFC 7396
    /// `application/merge-patch+json` document (which also merges into `geo` member by member);
    /// `If-Match: "r<revision>"` makes it conditional (412 when someone else changed the title first).
    func update(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.publisher)
        let body = try await jsonBody(of: request, accepting: ["application/json", Self.mergePatchType])
        let patch: [String: JSONValue]?
        var input: TitleInput?
        if body.mediaType == Self.mergePatchType {
            let document = try decodeJSON(JSONValue.self, from: body.data)
            guard case .object(let members) = document else {
                throw ServiceError.invalid("body", "a merge patch of a title must be a JSON object")
            }
            patch = members
        } else {
            patch = nil
            input = try decodeJSON(TitleInput.self, from: body.data)
        }
        let ifMatch = request.headers[.ifMatch]
        let updated = try await database.transaction { [input] tx in
            var title = try await requireTitle(context, in: tx, lock: true)
            try Self.requireOwner(of: title, identity)
            if let ifMatch, ifMatch != "*", ifMatch != title.entityTag {
                throw ServiceError(.preconditionFailed, "title \(title.id) has changed (now \(title.entityTag)); fetch it again")
            }
            let changes = try input ?? Self.input(merging: patch ?? [:], into: title)
            try changes.apply(to: &title, creating: false)
            try await Self.saveChange(&title, tx)
            return title
        }
        rules.changed()
        return try jsonResponse(updated.view(for: context), headers: [.eTag: updated.entityTag])
    }

    static let mergePatchType = "application/merge-patch+json"

    /// A merge patch as the input it amounts to for `title`. Top-level members already mean what
    /// RFC 7396 says (absent: kept, null: cleared); `geo`, the one object member, is merged into
    /// the title's current rules, so `{"geo": {"countries": ["FR"]}}` keeps the mode.
    static func input(merging patch: [String: JSONValue], into title: TitleRecord) throws(ServiceError) -> TitleInput {
        var members = patch
        if let change = patch["geo"], case .object = change {
            var current = JSONValue.null
            if let geo = title.geo {
                current = .object(["mode": .string(geo.mode.rawValue), "countries": .array(geo.countries.map(JSONValue.string))])
            }
            members["geo"] = current.merged(with: change)
        }
        let data: Data
        do {
            data = try JSONEncoder().encode(members)
        } catch {
            throw ServiceError.badRequest("the merge patch cannot be applied: \(error)")
        }
        return try decodeJSON(TitleInput.self, from: data)
    }

    func delete(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.publisher)
        try await database.transaction { tx in
            let title = try await requireTitle(context, in: tx, lock: true)
            try Self.requireOwner(of: title, identity)
            guard title.status != .published else {
                throw ServiceError.conflict("title \(title.id) is published; withdraw it before deleting it")
            }
            try await tx.execute("DELETE FROM title_genres WHERE title_id = $1", title.id)
            try await tx.execute("DELETE FROM titles WHERE id = $1", title.id)
            try await AccessRulesFeed.bump(tx)
        }
        rules.changed()
        return Response(status: .noContent)
    }

    func transition(
        _ context: ServiceRequestContext, to status: TitleStatus, from allowed: Set<TitleStatus>,
        refusal: @escaping @Sendable (TitleRecord) -> String
    ) async throws -> Response {
        let identity = try context.require(.publisher)
        let updated = try await database.transaction { tx in
            var title = try await requireTitle(context, in: tx, lock: true)
            try Self.requireOwner(of: title, identity)
            guard allowed.contains(title.status) else { throw ServiceError.conflict(refusal(title)) }
            if title.status != status {
                title.status = status
                try await Self.saveChange(&title, tx)
            }
            return title
        }
        rules.changed()
        return try jsonResponse(updated.view(for: context), headers: [.eTag: updated.entityTag])
    }

    /// Publishers change only the titles they created; admins change any. Every publisher may
    /// read every title, so another publisher's title is refused with 403, not hidden behind 404.
    static func requireOwner(of title: TitleRecord, _ identity: Identity) throws(ServiceError) {
        guard identity.role >= .admin || title.createdBy == identity.userID else {
            throw .forbidden("title \(title.id) belongs to another publisher; only they or an admin may change it")
        }
    }

    struct PackageInput: Decodable {
        let package_version: String
        let renditions: [Rendition]
        let duration_seconds: Int?
    }

    /// Ingest reports a finished package: the title moves to `ready` (a published title stays
    /// published and switches to the new version). Ingest presents its service credential
    /// (`attach_packages`; it checked the title's owner when the upload was created); a user must
    /// be the title's publisher or an admin.
    func attachPackage(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.attachPackages, or: .publisher)
        let input = try await decodeJSON(PackageInput.self, from: request)
        guard (1...64).contains(input.package_version.count),
            input.package_version.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }),
            !input.package_version.hasPrefix(".")
        else {
            throw ServiceError.invalid("package_version", "must be 1 to 64 letters, digits, '.', '-' or '_' (it is a folder name)")
        }
        guard !input.renditions.isEmpty, input.renditions.count <= 32 else { throw ServiceError.invalid("renditions", "1 to 32 renditions") }
        for (i, r) in input.renditions.enumerated() where r.bandwidth <= 0 || r.codecs.isEmpty || r.name.isEmpty {
            throw ServiceError.invalid("renditions[\(i)]", "needs a name, codecs and a positive bandwidth")
        }
        let updated = try await database.transaction { tx in
            var title = try await requireTitle(context, in: tx, lock: true)
            if let identity { try Self.requireOwner(of: title, identity) }
            title.packageVersion = input.package_version
            title.renditions = input.renditions
            if let duration = input.duration_seconds, duration > 0 { title.durationSeconds = duration }
            if title.status == .draft || title.status == .processing { title.status = .ready }
            try await Self.saveChange(&title, tx)
            return title
        }
        rules.changed()
        return try jsonResponse(updated.view(for: context), headers: [.eTag: updated.entityTag])
    }

    // MARK: - Rows

    static func insert(_ title: TitleRecord, _ tx: any SQLExecutor) async throws {
        _ = try await tx.query(
            """
            INSERT INTO titles (\(TitleRecord.columns), search_text)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
            """, title.bindings + [.text(title.searchText)])
        try await saveGenres(title, tx)
    }

    /// Records a change: a new revision and time, the row, and the feed's version, in `tx`.
    static func saveChange(_ title: inout TitleRecord, _ tx: any SQLExecutor) async throws {
        title.updatedAt = unixMilliseconds()
        title.revision += 1
        try await save(title, tx)
        try await AccessRulesFeed.bump(tx)
    }

    static func save(_ title: TitleRecord, _ tx: any SQLExecutor) async throws {
        _ = try await tx.query(
            """
            UPDATE titles SET name = $2, description = $3, genres = $4, cast_members = $5, year = $6, duration_seconds = $7,
                price_per_minute = $8, currency = $9, geo_mode = $10, geo_countries = $11, available_from = $12,
                available_until = $13, status = $14, package_version = $15, renditions = $16, created_by = $17,
                created_at = $18, updated_at = $19, revision = $20, search_text = $21
            WHERE id = $1
            """, title.bindings + [.text(title.searchText)])
        try await tx.execute("DELETE FROM title_genres WHERE title_id = $1", title.id)
        try await saveGenres(title, tx)
    }

    static func saveGenres(_ title: TitleRecord, _ tx: any SQLExecutor) async throws {
        for genre in title.genres {
            try await tx.execute("INSERT INTO title_genres (title_id, genre) VALUES ($1, $2)", title.id, genre)
        }
    }
}

extension TitleRecord {
    static func blank(id: String, createdBy: String, now: Int64) -> TitleRecord {
        TitleRecord(
            id: id, name: "", description: "", genres: [], cast: [], year: nil, durationSeconds: nil, pricePerMinute: 0,
            currency: "", geo: nil, availableFrom: nil, availableUntil: nil, status: .draft, packageVersion: nil, renditions: [],
            createdBy: createdBy, createdAt: now, updatedAt: now, revision: 1)
    }

    /// Values in `columns` order.
    var bindings: [SQLValue] {
        func json<T: Encodable>(_ value: T) -> SQLValue {
            .text(String(decoding: (try? JSONEncoder().encode(value)) ?? Data("[]".utf8), as: UTF8.self))
        }
        return [
            .text(id), .text(name), .text(description), json(genres), json(cast), year.map { .integer(Int64($0)) } ?? .null,
            durationSeconds.map { .integer(Int64($0)) } ?? .null, .integer(pricePerMinute), .text(currency),
            geo.map { .text($0.mode.rawValue) } ?? .null, json(geo?.countries ?? []), availableFrom.map { .integer($0) } ?? .null,
            availableUntil.map { .integer($0) } ?? .null, .text(status.rawValue), packageVersion.map { .text($0) } ?? .null,
            json(renditions), .text(createdBy), .integer(createdAt), .integer(updatedAt), .integer(revision),
        ]
    }
}
