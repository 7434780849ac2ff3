import Foundation
import MarqueeServiceKit

/// A user as the database holds it.
struct UserRecord: Sendable {
    let id: String
    let email: String
    let passwordHash: String
    let role: Role
    let disabled: Bool
    let createdAt: Int64

    init(_ row: SQLRow) throws {
        id = try row.string("id")
        email = try row.string("email")
        passwordHash = try row.string("password_hash")
        guard let role = Role(rawValue: try row.string("role")) else { throw DatabaseError.column("role", "unknown role") }
        self.role = role
        disabled = try row.bool("disabled")
        createdAt = try row.int("created_at")
    }

    static let columns = "id, email, password_hash, role, disabled, created_at"

    var publicView: UserView { UserView(id: id, email: email, role: role) }
    var adminView: AdminUserView {
        AdminUserView(id: id, email: email, role: role, disabled: disabled, created_at: rfc3339(milliseconds: createdAt))
    }
}

/// `{id, email, role}`: what register and me answer.
struct UserView: Codable, Sendable {
    let id: String
    let email: String
    let role: Role
}

/// A user as admins see it.
struct AdminUserView: Codable, Sendable {
    let id: String
    let email: String
    let role: Role
    let disabled: Bool
    let created_at: String
}

/// Email addresses are compared lowercased and trimmed.
enum EmailAddress {
    static func normalize(_ raw: String, field: String = "email") throws(ServiceError) -> String {
        let email = raw.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        guard email.utf8.count <= 254 else { throw .invalid(field, "must be at most 254 characters") }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64, parts[1].contains("."), !parts[1].hasPrefix("."),
            !parts[1].hasSuffix("."), email.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value != 127 })
        else {
            throw .invalid(field, "must be an email address like name@example.com")
        }
        return email
    }
}
