import Foundation

/// The one thing a service credential lets its holder do. A credential grants exactly one of
/// these and nothing a user's token could do.
public enum ServiceGrant: String, Sendable, CaseIterable {
    /// Attach a finished package to a title (`PUT /api/catalog/titles/{id}/package`): ingest's workers.
    case attachPackages = "attach_packages"
    /// Read the catalog's access-rules feed: the gateways.
    case readAccessRules = "read_access_rules"
    /// Open and end billed sessions (`/internal/billing/sessions`): playback.
    case openBillingSessions = "open_billing_sessions"
    /// Read titles as a service sees them, owner included: playback, to bill a title's owner.
    case readTitles = "read_titles"
    /// Read billed sessions (who watched what, when) and revenue per title and day
    /// (`/internal/billing/sessions`, `/internal/billing/revenue`): analytics.
    case readBilling = "read_billing"
}

/// A secret one service presents to another, as `Authorization: Bearer <secret>`, to do one narrow
/// thing (`grant`) instead of signing in as a user with all of that user's power.
///
/// Both sides read the same secret from a file (an operator makes it, e.g. 32 random bytes as hex;
/// `marquee dev` writes its own under `<data>/keys/`). The receiving service compares what it is
/// sent with every credential it accepts in constant time, and a request that matches one carries
/// that credential's grant and no identity: routes that are not for the grant refuse it with 403.
public struct ServiceCredential: Sendable {
    /// Who holds it (`ingest`, `gateway`), for refusals and logs.
    public let holder: String
    public let grant: ServiceGrant
    let secret: [UInt8]

    /// Shortest and longest secret accepted, in bytes.
    public static let secretLengths = 32...1024

    /// - Throws: `ServiceError` when the secret is shorter than 32 bytes, longer than 1024, or holds
    ///   bytes that cannot travel in a header (only visible ASCII, no spaces).
    public init(holder: String, grant: ServiceGrant, secret: String) throws(ServiceError) {
        let bytes = Array(secret.utf8)
        guard Self.secretLengths.contains(bytes.count) else {
            throw .badRequest("a service credential secret must be 32 to 1024 bytes, not \(bytes.count)")
        }
        guard bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw .badRequest("a service credential secret must be visible ASCII without spaces (it travels in a header)")
        }
        self.holder = holder
        self.grant = grant
        self.secret = bytes
    }

    /// Reads the secret from `path` (one line; the trailing newline is ignored).
    /// - Throws: `ServiceError` naming the file when it cannot be read or the secret is unusable.
    public init(holder: String, grant: ServiceGrant, secretFile path: String) throws(ServiceError) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .badRequest("cannot read the service credential file \(path)")
        }
        do throws(ServiceError) {
            try self.init(holder: holder, grant: grant, secret: text.trimmingCharacters(in: .newlines))
        } catch {
            throw .badRequest("\(path): \(error.detail)")
        }
    }

    /// The `Authorization` field value that presents this credential.
    public var authorization: String { "Bearer " + String(decoding: secret, as: UTF8.self) }

    /// Whether `presented` is this credential's secret. The time taken depends only on the
    /// secret's length, never on how much of `presented` matches.
    public func matches(_ presented: Substring) -> Bool {
        let bytes = Array(presented.utf8)
        var difference: UInt8 = bytes.count == secret.count ? 0 : 1
        for index in secret.indices {
            difference |= (index < bytes.count ? bytes[index] : 0) ^ secret[index]
        }
        return difference == 0
    }
}

/// The service behind a request that carried a `ServiceCredential` rather than a user's token.
public struct ServiceCaller: Sendable, Equatable {
    public let holder: String
    public let grant: ServiceGrant
}
