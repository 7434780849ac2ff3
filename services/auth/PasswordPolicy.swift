import Foundation
import MarqueeServiceKit

/// ASVS 5.0 password rules: at least 8 characters, up to 128 (more than the 64 ASVS asks to
/// allow), any characters, no composition rules, and none of the most common passwords.
struct PasswordPolicy: Sendable {
    static let minimumLength = 8
    static let maximumLength = 128
    let common: Set<String>

    init(commonPasswords: String) {
        common = Set(
            commonPasswords.split(whereSeparator: \.isNewline).lazy.filter { !$0.hasPrefix("#") }.map { $0.lowercased() })
    }

    /// Throws a 422 naming `field` when `password` is not acceptable.
    func check(_ password: String, field: String = "password", email: String? = nil) throws(ServiceError) {
        let length = password.count
        guard length >= Self.minimumLength else {
            throw .invalid(field, "must be at least \(Self.minimumLength) characters")
        }
        guard length <= Self.maximumLength else {
            throw .invalid(field, "must be at most \(Self.maximumLength) characters")
        }
        let lowered = password.lowercased()
        guard !common.contains(lowered) else {
            throw .invalid(field, "is one of the most common passwords; choose another")
        }
        if let email, let local = email.split(separator: "@").first, lowered == email.lowercased() || lowered == local.lowercased() {
            throw .invalid(field, "must not be your email address")
        }
    }
}
