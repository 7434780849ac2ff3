import MarqueeServiceKit

/// A playback session: one viewer starting one title's package version. Billing per minute hooks
/// in here (a session id travels in every segment's URL token, and in every delivery record).
struct PlaybackSession: Sendable {
    static let columns = "id, user_id, title_id, package_version, country, client_address, created_at, expires_at"

    let id: String
    let userID: String
    let titleID: String
    let packageVersion: String
    let country: String?
    let clientAddress: String?
    let createdAt: Int64
    let expiresAt: Int64

    init(
        id: String, userID: String, titleID: String, packageVersion: String, country: String?, clientAddress: String?, createdAt: Int64,
        expiresAt: Int64
    ) {
        self.id = id
        self.userID = userID
        self.titleID = titleID
        self.packageVersion = packageVersion
        self.country = country
        self.clientAddress = clientAddress
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }

    init(_ row: SQLRow) throws {
        id = try row.string("id")
        userID = try row.string("user_id")
        titleID = try row.string("title_id")
        packageVersion = try row.string("package_version")
        country = row.optionalString("country")
        clientAddress = row.optionalString("client_address")
        createdAt = try row.int("created_at")
        expiresAt = try row.int("expires_at")
    }

    var parameters: [SQLValue] {
        [
            .text(id), .text(userID), .text(titleID), .text(packageVersion), country.map(SQLValue.text) ?? .null,
            clientAddress.map(SQLValue.text) ?? .null, .integer(createdAt), .integer(expiresAt),
        ]
    }

    struct View: Codable, Sendable {
        let id: String
        let user_id: String
        let title_id: String
        let package_version: String
        let country: String?
        let created_at: String
        let expires_at: String

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(user_id, forKey: .user_id)
            try c.encode(title_id, forKey: .title_id)
            try c.encode(package_version, forKey: .package_version)
            try c.encode(country, forKey: .country)
            try c.encode(created_at, forKey: .created_at)
            try c.encode(expires_at, forKey: .expires_at)
        }
    }

    var view: View {
        View(
            id: id, user_id: userID, title_id: titleID, package_version: packageVersion, country: country,
            created_at: rfc3339(milliseconds: createdAt), expires_at: rfc3339(milliseconds: expiresAt))
    }
}
