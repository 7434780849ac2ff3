import Foundation
import MarqueeServiceKit

/// Where a title is in its life. Drafts are being described; `processing` while ingest runs;
/// `ready` once a package exists; `published` is what viewers see; `withdrawn` hides it again.
public enum TitleStatus: String, Codable, Sendable, CaseIterable {
    case draft, processing, ready, published, withdrawn
}

/// A country allow- or deny-list.
public struct GeoRules: Codable, Sendable, Equatable {
    public enum Mode: String, Codable, Sendable {
        case allow, deny
    }
    public let mode: Mode
    public let countries: [String]
}

/// One rendition of the current package, as ingest reports it.
public struct Rendition: Codable, Sendable, Equatable {
    public let name: String
    public let width: Int?
    public let height: Int?
    public let bandwidth: Int
    public let codecs: String
    public let frame_rate: Double?
}

/// A title as the database holds it.
struct TitleRecord: Sendable {
    var id: String
    var name: String
    var description: String
    var genres: [String]
    var cast: [String]
    var year: Int?
    var durationSeconds: Int?
    var pricePerMinute: Int64
    var currency: String
    var geo: GeoRules?
    var availableFrom: Int64?
    var availableUntil: Int64?
    var status: TitleStatus
    var packageVersion: String?
    var renditions: [Rendition]
    var createdBy: String
    var createdAt: Int64
    var updatedAt: Int64
    var revision: Int64

    static let columns = """
        id, name, description, genres, cast_members, year, duration_seconds, price_per_minute, currency, geo_mode, geo_countries,
        available_from, available_until, status, package_version, renditions, created_by, created_at, updated_at, revision
        """

    /// What search matches: every word of the name, description, cast and genres, folded.
    var searchText: String {
        TitleListing.fold(([name, description] + cast + genres).joined(separator: " "))
    }

    /// Whether viewers may see it at `now`: published and inside its availability window.
    func isVisibleToViewers(at now: Int64) -> Bool {
        status == .published && (availableFrom.map { $0 <= now } ?? true) && (availableUntil.map { now < $0 } ?? true)
    }

    /// The title as `context`'s caller sees it: publishers, admins and services see who owns it.
    func view(for context: ServiceRequestContext) -> TitleView {
        view(showingOwner: (context.identity?.role ?? .viewer) >= .publisher || context.serviceCaller != nil)
    }

    /// `created_by` is null unless `showingOwner`: viewers have no use for account ids.
    func view(showingOwner: Bool) -> TitleView {
        TitleView(
            id: id, name: name, description: description, genres: genres, cast: cast, year: year, duration_seconds: durationSeconds,
            price_per_minute: pricePerMinute, currency: currency, geo: geo, available_from: availableFrom.map(rfc3339(milliseconds:)),
            available_until: availableUntil.map(rfc3339(milliseconds:)), status: status,
            package: packageVersion.map { TitleView.Package(version: $0, renditions: renditions) },
            created_by: showingOwner ? createdBy : nil, created_at: rfc3339(milliseconds: createdAt),
            updated_at: rfc3339(milliseconds: updatedAt), revision: revision)
    }

    /// `ETag` for conditional updates.
    var entityTag: String { "\"r\(revision)\"" }
}

extension TitleRecord {
    init(_ row: SQLRow) throws {
        let decoder = JSONDecoder()
        func list<T: Decodable>(_ column: String, _ type: T.Type) throws -> T {
            try decoder.decode(T.self, from: Data(try row.string(column).utf8))
        }
        id = try row.string("id")
        name = try row.string("name")
        description = try row.string("description")
        genres = try list("genres", [String].self)
        cast = try list("cast_members", [String].self)
        year = row.optionalInt("year").map(Int.init)
        durationSeconds = row.optionalInt("duration_seconds").map(Int.init)
        pricePerMinute = try row.int("price_per_minute")
        currency = try row.string("currency")
        if let mode = row.optionalString("geo_mode").flatMap(GeoRules.Mode.init(rawValue:)) {
            geo = GeoRules(mode: mode, countries: try list("geo_countries", [String].self))
        }
        availableFrom = row.optionalInt("available_from")
        availableUntil = row.optionalInt("available_until")
        guard let status = TitleStatus(rawValue: try row.string("status")) else { throw DatabaseError.column("status", "unknown") }
        self.status = status
        packageVersion = row.optionalString("package_version")
        renditions = try list("renditions", [Rendition].self)
        createdBy = try row.string("created_by")
        createdAt = try row.int("created_at")
        updatedAt = try row.int("updated_at")
        revision = try row.int("revision")
    }

}

/// A title as the API writes it.
struct TitleView: Codable, Sendable {
    struct Package: Codable, Sendable {
        let version: String
        let renditions: [Rendition]
    }
    let id: String
    let name: String
    let description: String
    let genres: [String]
    let cast: [String]
    let year: Int?
    let duration_seconds: Int?
    let price_per_minute: Int64
    let currency: String
    let geo: GeoRules?
    let available_from: String?
    let available_until: String?
    let status: TitleStatus
    let package: Package?
    /// The account that created the title, the only publisher who may change it (null for viewers).
    let created_by: String?
    let created_at: String
    let updated_at: String
    let revision: Int64

    enum CodingKeys: String, CodingKey {
        case id, name, description, genres, cast, year, duration_seconds, price_per_minute, currency, geo, available_from,
            available_until, status, package, created_by, created_at, updated_at, revision
    }

    /// Writes nulls explicitly, so every field is always present.
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(description, forKey: .description)
        try c.encode(genres, forKey: .genres)
        try c.encode(cast, forKey: .cast)
        try c.encode(year, forKey: .year)
        try c.encode(duration_seconds, forKey: .duration_seconds)
        try c.encode(price_per_minute, forKey: .price_per_minute)
        try c.encode(currency, forKey: .currency)
        try c.encode(geo, forKey: .geo)
        try c.encode(available_from, forKey: .available_from)
        try c.encode(available_until, forKey: .available_until)
        try c.encode(status, forKey: .status)
        try c.encode(package, forKey: .package)
        try c.encode(created_by, forKey: .created_by)
        try c.encode(created_at, forKey: .created_at)
        try c.encode(updated_at, forKey: .updated_at)
        try c.encode(revision, forKey: .revision)
    }
}
