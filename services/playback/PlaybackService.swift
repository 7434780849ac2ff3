import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MarqueeHTTP
import MarqueePolicy
import MarqueeServiceKit
import MarqueeTokens
import NIOCore

/// The playback service: `POST /api/playback/sessions {title_id}` checks that the viewer may watch
/// the title now and from where they are (the same rules the gateways enforce on every segment),
/// records a session and answers with signed URLs scoped to the title's current package version.
public struct PlaybackService: Sendable {
    let settings: PlaybackSettings
    let database: any Database
    let verifier: AccessTokenVerifier
    let catalog: CatalogTitles
    let keys: TokenKeyRing
    let key: URLTokenKey
    let geo: GeoDatabase?
    let billing: BillingSessions?

    init(settings: PlaybackSettings, database: any Database, jwks: any JWKSSource) throws {
        guard let key = settings.tokenKey else {
            throw ServiceError.badRequest("playback.token_key is required: the URL token key (ID:SECRET_FILE) the gateways verify")
        }
        self.settings = settings
        self.database = database
        self.key = key
        keys = try TokenKeyRing([(key.id, key.secret)])
        verifier = AccessTokenVerifier(source: jwks, issuer: settings.authIssuer)
        catalog = CatalogTitles(catalogURL: settings.catalogURL)
        geo = try settings.geoDatabase.map { path in try GeoDatabase(path: path) }
        if let url = settings.billingURL {
            guard let credential = settings.billingCredential else {
                throw ServiceError.badRequest("playback.billing_url needs playback.billing_credential_file: the secret billing accepts as billing.playback_credential_file")
            }
            guard settings.catalogCredential != nil else {
                throw ServiceError.badRequest("playback.billing_url needs playback.catalog_credential_file: a read_titles credential the catalog accepts, to learn titles' owners")
            }
            billing = BillingSessions(billingURL: url, credential: credential)
        } else {
            billing = nil
        }
    }

    /// Opens and migrates the database, and the geo database when one is set. `jwks` defaults to
    /// fetching from `settings.authURL`.
    public static func open(_ settings: PlaybackSettings, jwks: (any JWKSSource)? = nil) async throws -> PlaybackService {
        let database = try await openDatabase(settings.database)
        do {
            try await Migrator.migrate(database, service: "playback", PlaybackMigrations.all)
            return try PlaybackService(settings: settings, database: database, jwks: jwks ?? HTTPJWKSSource(authURL: settings.authURL))
        } catch {
            await database.close()
            throw error
        }
    }

    public func application(
        logger: Logger = Logger(label: "marquee.playback"), onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let listener = try ServiceListener(parsing: settings.listen)
        return Application(
            router: router(), configuration: .init(address: listener.bindAddress, serverName: "marquee-playback"),
            services: [DatabaseCloser(database)], onServerRunning: onServerRunning, logger: logger)
    }

    public func close() async { await database.close() }

    public static let openAPI = ServiceRouter.resource("openapi.yaml", in: .module)

    public func router() -> Router<ServiceRequestContext> {
        let router = ServiceRouter.make(name: "playback", openAPI: Self.openAPI, database: database, verifier: verifier)
        let api = router.group("/api/playback")
        api.post("/sessions") { request, context in try await start(request, context) }
        api.get("/sessions") { request, context in try await list(request, context) }
        api.get("/sessions/:id") { _, context in
            let identity = try context.require(.viewer)
            let id = try context.parameters.require("id")
            guard Identifier.isValid(id),
                let row = try await database.first("SELECT \(PlaybackSession.columns) FROM playback_sessions WHERE id = $1", id),
                case let session = try PlaybackSession(row), session.userID == identity.userID || identity.role == .admin
            else {
                throw ServiceError.notFound("no playback session \(id)")
            }
            return try jsonResponse(session.view)
        }
        api.delete("/sessions/:id") { _, context in try await end(context) }
        return router
    }

    // MARK: - Starting a session

    struct StartInput: Decodable {
        let title_id: String
    }

    /// The answer to a started session: where to play, valid until `expires_at`.
    struct Started: Encodable {
        let id: String
        let title_id: String
        let title_name: String
        let package_version: String
        let country: String?
        let created_at: String
        let expires_at: String
        /// The signed HLS playlist and DASH manifest, the poster and the thumbnail track (WebVTT
        /// pointing into sprites): all under one path-mode token, so relative URLs inherit it.
        let hls_url: String
        let dash_url: String
        let poster_url: String
        let thumbnails_url: String
    }

    func start(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.viewer)
        let input = try await decodeJSON(StartInput.self, from: request)
        let titleID = input.title_id
        // Catalog ids are `Identifier`s (26 path-safe characters), as ingest checks too.
        guard Identifier.isValid(titleID) else { throw ServiceError.invalid("title_id", "must be a catalog title id (26 characters)") }
        guard let authorization = request.headers[.authorization],
            let title = try await catalog.title(titleID, authorization: authorization)
        else {
            throw ServiceError.notFound("no title \(titleID)")
        }
        let client = clientAddress(request, context, trustedProxies: settings.trustedProxies)
        let address = client.flatMap(IPAddress.init)
        let place = address.flatMap { geo?.lookup($0) } ?? GeoLookup()
        let country = place.country
        let nowMilliseconds = unixMilliseconds()
        let nowSeconds = nowMilliseconds / 1000
        // The gateways' own decision function, so a session is refused exactly where its
        // segments would be.
        let decision = TitleRuleTable(version: 0, rules: [title.rule]).decide(
            titleID: titleID, nowSeconds: nowSeconds, country: country, unknownCountry: settings.unknownCountry)
        switch decision {
        case .allowed: break
        case .rulesNotLoaded, .noSuchTitle: throw ServiceError.notFound("no title \(titleID)")
        case .notPublished: throw ServiceError.conflict("title \(titleID) is not published")
        case .notYetAvailable: throw ServiceError.forbidden("title \(titleID) is not available yet")
        case .noLongerAvailable: throw ServiceError.forbidden("title \(titleID) is no longer available")
        case .geoDenied:
            let location = country.isKnown ? "in \(country)" : "where you are (your country is not known)"
            throw ServiceError(.unavailableForLegalReasons, "title \(titleID) is not available \(location)")
        }
        guard let version = title.packageVersion else { throw ServiceError.conflict("title \(titleID) has no package yet") }

        var lifetime = title.durationSeconds.map { Int64($0) + settings.extraValiditySeconds } ?? settings.unknownDurationValiditySeconds
        if let until = title.rule.availableUntil { lifetime = max(1, min(lifetime, until - nowSeconds)) }
        let expires = nowSeconds + lifetime
        let session = PlaybackSession(
            id: Identifier.make(), userID: identity.userID, titleID: titleID, packageVersion: version,
            country: country.isKnown ? country.description : nil, clientAddress: client, createdAt: nowMilliseconds,
            expiresAt: expires * 1000)
        let folder = "/titles/\(titleID)/\(version)/"
        var bound: CIDR?
        if settings.bindClientAddress, let address {
            bound = CIDR(address: address, prefixLength: 128)
        }
        if let billing {
            // The owner (credited with the revenue) as a service sees the title; free titles are
            // opened too, so the viewer's cap on sessions and ending them work the same.
            var owner = title.owner ?? ""
            if title.pricePerMinute > 0, owner.isEmpty, let credential = settings.catalogCredential {
                owner = try await catalog.title(titleID, authorization: credential.authorization)?.owner ?? ""
            }
            guard title.pricePerMinute == 0 || !owner.isEmpty else {
                throw ServiceError(.badGateway, "the catalog did not say who owns title \(titleID); it must accept playback.catalog_credential_file")
            }
            try await billing.open(
                .init(
                    session_id: session.id, user_id: identity.userID, title_id: titleID, owner: owner.isEmpty ? "none" : owner,
                    package_version: version, price_per_minute: title.pricePerMinute, currency: title.currency.isEmpty ? "XXX" : title.currency))
        }
        let token: String
        do {
            let claims = TokenClaims(keyID: key.id, expires: expires, scope: folder, session: session.id, client: bound)
            token = try URLToken.mint(claims, keys: keys)
            _ = try await database.query(
                "INSERT INTO playback_sessions (\(PlaybackSession.columns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", session.parameters)
        } catch {
            // Billing opened the session and holds a minute for it: end it now, so the viewer gets
            // the hold back at once rather than when the session would go idle.
            if let billing { try? await billing.end(session.id) }
            throw error
        }

        // The viewer's region's edge, or the gateway this request came through.
        let base = settings.regions.base(country: place.country, continent: place.continent) ?? publicBase(request, context)
        func url(_ file: String) -> String { URLToken.signedURL(base: base, path: folder + file, token: token, placement: .path) }
        let started = Started(
            id: session.id, title_id: titleID, title_name: title.name, package_version: version, country: session.country,
            created_at: rfc3339(milliseconds: session.createdAt), expires_at: rfc3339(milliseconds: session.expiresAt),
            hls_url: url("master.m3u8"), dash_url: url("manifest.mpd"), poster_url: url("poster.jpg"), thumbnails_url: url("thumbnails.vtt"))
        return try jsonResponse(started, status: .created, headers: [.cacheControl: "no-store"])
    }

    /// `scheme://host[:port]` players reach the gateway at.
    func publicBase(_ request: Request, _ context: ServiceRequestContext) -> String {
        if let configured = settings.publicURL { return configured.hasSuffix("/") ? String(configured.dropLast()) : configured }
        let trusted = context.peer.map { settings.trustedProxies.contains($0) } ?? false
        var scheme = "http"
        if trusted, let proto = request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.split(separator: ",").first {
            let value = proto.trimmingCharacters(in: .whitespaces).lowercased()
            if value == "https" || value == "http" { scheme = value }
        }
        let host = request.head.authority ?? settings.listen
        let safeHost = host.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x2F && $0 != 0x40 && $0 != 0x5C } ? host : settings.listen
        return "\(scheme)://\(safeHost)"
    }

    // MARK: - Ending

    /// `DELETE /api/playback/sessions/{id}`: the viewer (or an admin) ends the session; billing
    /// releases what it held and revokes its URLs on the gateways.
    func end(_ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.viewer)
        let id = try context.parameters.require("id")
        guard Identifier.isValid(id),
            let row = try await database.first("SELECT \(PlaybackSession.columns) FROM playback_sessions WHERE id = $1", id),
            case let session = try PlaybackSession(row), session.userID == identity.userID || identity.role == .admin
        else {
            throw ServiceError.notFound("no playback session \(id)")
        }
        guard let billing else {
            throw ServiceError.conflict("ending a session needs the billing service (playback.billing_url), which revokes its URLs on the gateways")
        }
        try await billing.end(session.id)
        return Response(status: .noContent)
    }

    // MARK: - Listing

    struct SessionCursor: Codable {
        let id: String
    }

    /// The caller's sessions, newest first (an admin sees everyone's, or one user's with `user_id`).
    func list(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.viewer)
        let query = request.uri.queryParameters
        let limit = try pageLimit(query["limit"].map(String.init))
        var conditions: [String] = []
        var parameters: [SQLValue] = []
        if identity.role == .admin {
            if let user = query["user_id"].map(String.init) {
                parameters.append(.text(user))
                conditions.append("user_id = $\(parameters.count)")
            }
        } else {
            parameters.append(.text(identity.userID))
            conditions.append("user_id = $\(parameters.count)")
        }
        if let cursor = query["cursor"].map(String.init) {
            let decoded = try PageCursor.decode(SessionCursor.self, from: cursor)
            guard Identifier.isValid(decoded.id) else { throw ServiceError.invalid("cursor", "is not a cursor this service issued") }
            parameters.append(.text(decoded.id))
            conditions.append("id < $\(parameters.count)")
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let rows = try await database.query(
            "SELECT \(PlaybackSession.columns) FROM playback_sessions \(filter) ORDER BY id DESC LIMIT \(limit + 1)", parameters)
        let sessions = try rows.prefix(limit).map(PlaybackSession.init)
        let next = rows.count > limit ? sessions.last.map { PageCursor.encode(SessionCursor(id: $0.id)) } : nil
        return try jsonResponse(Page(items: sessions.map(\.view), next_cursor: next))
    }
}
