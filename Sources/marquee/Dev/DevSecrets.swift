import Foundation
import Glibc
import HTTPTypes
import MarqueeAuth
import MarqueeGateway
import MarqueePlayback
import MarqueeServiceKit
import MarqueeTokens

/// The secrets `marquee dev` makes on first start and finds again afterwards, all under
/// `<data>/keys` (mode 0700, files 0600): the URL token key the gateway verifies and playback
/// signs with, the key encryption key auth seals its signing keys with, the passwords of the demo
/// viewer and the demo publisher, and the two service credentials the catalog accepts:
/// `ingest-catalog.credential` (ingest attaches packages) and `gateway-catalog.credential` (the
/// gateway reads the access-rules feed).
struct DevSecrets {
    typealias Account = (email: String, password: String)

    let tokenKeyDirectory: String
    let tokenKey: URLTokenKey
    /// `auth.key_encryption_key_file`: `<data>/keys/auth-signing-keys.kek`.
    let keyEncryptionKeyFile: String
    /// `admin.token_file`: `<data>/keys/admin.token`, the admin listener's bearer secret.
    let adminTokenFile: String
    let viewer: Account
    /// A second viewer who never gets money: starting playback of a priced title answers 402.
    let brokeViewer: Account
    let publisher: Account
    /// The files of ingest's and the gateway's service credentials for the catalog.
    let ingestCredentialFile: String
    let gatewayCredentialFile: String
    /// Playback's credentials: for billing (opening and ending sessions) and for the catalog
    /// (reading titles' owners).
    let playbackBillingCredentialFile: String
    let playbackCatalogCredentialFile: String
    /// Analytics' credential for billing (who watched each session, revenue).
    let analyticsBillingCredentialFile: String

    var ingestCredential: ServiceCredential {
        get throws { try ServiceCredential(holder: "ingest", grant: .attachPackages, secretFile: ingestCredentialFile) }
    }
    var gatewayCredential: ServiceCredential {
        get throws { try ServiceCredential(holder: "gateway", grant: .readAccessRules, secretFile: gatewayCredentialFile) }
    }
    var playbackBillingCredential: ServiceCredential {
        get throws { try ServiceCredential(holder: "playback", grant: .openBillingSessions, secretFile: playbackBillingCredentialFile) }
    }
    var playbackCatalogCredential: ServiceCredential {
        get throws { try ServiceCredential(holder: "playback", grant: .readTitles, secretFile: playbackCatalogCredentialFile) }
    }
    var analyticsBillingCredential: ServiceCredential {
        get throws { try ServiceCredential(holder: "analytics", grant: .readBilling, secretFile: analyticsBillingCredentialFile) }
    }

    static func load(data: String) throws -> DevSecrets {
        let keys = data + "/keys"
        let tokens = keys + "/url-tokens"
        try FileManager.default.createDirectory(atPath: tokens, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(keys, 0o700)
        // The newest key signs (a key file added later is a rotation); the gateway accepts them all.
        let newest = try FileManager.default.contentsOfDirectory(atPath: tokens).filter { $0.hasSuffix(".key") }
            .max { modified(tokens + "/" + $0) < modified(tokens + "/" + $1) }
        let keyName = newest ?? "dev1.key"
        if newest == nil { try writeSecret(randomHex(), to: tokens + "/" + keyName) }
        guard let secret = TokenKeyFiles.readSecret(tokens + "/" + keyName), secret.count >= 32 else {
            throw DemoTitle.Failed(description: "cannot read the URL token key \(tokens)/\(keyName) (at least 32 bytes)")
        }
        /// `<keys>/<name>`, holding 32 random bytes as hex, made on first start and kept after.
        /// A data folder from before a secret existed (the sealed signing keys, the admin secret,
        /// the service credentials) gets it here; auth seals its stored keys with its key on start.
        func secretFile(_ name: String) throws -> String {
            let file = keys + "/" + name
            if !FileManager.default.fileExists(atPath: file) { try writeSecret(randomHex(), to: file) }
            return file
        }
        func account(_ name: String, _ email: String) throws -> Account {
            let file = keys + "/\(name).password"
            if let text = try? String(contentsOfFile: file, encoding: .utf8), !text.isEmpty {
                return (email, text.trimmingCharacters(in: .newlines))
            }
            let password = Base64URL.encode(randomBytes(18))
            try writeSecret(password, to: file)
            return (email, password)
        }
        return DevSecrets(
            tokenKeyDirectory: tokens, tokenKey: URLTokenKey(id: String(keyName.dropLast(4)), secret: secret), keyEncryptionKeyFile: try secretFile("auth-signing-keys.kek"),
            adminTokenFile: try secretFile("admin.token"),
            viewer: try account("demo-viewer", "viewer@demo.marquee"), brokeViewer: try account("demo-broke-viewer", "broke@demo.marquee"),
            publisher: try account("demo-publisher", "publisher@demo.marquee"),
            ingestCredentialFile: try secretFile("ingest-catalog.credential"), gatewayCredentialFile: try secretFile("gateway-catalog.credential"),
            playbackBillingCredentialFile: try secretFile("playback-billing.credential"),
            playbackCatalogCredentialFile: try secretFile("playback-catalog.credential"),
            analyticsBillingCredentialFile: try secretFile("analytics-billing.credential"))
    }

    /// Creates the demo accounts unless they exist (an existing one keeps its password).
    func ensureAccounts(_ auth: AuthService) async throws {
        for (account, role) in [(viewer, Role.viewer), (brokeViewer, .viewer), (publisher, .publisher)] {
            do {
                _ = try await auth.createAccount(email: account.email, password: account.password, role: role)
            } catch let error as ServiceError where error.status == .conflict {
                continue
            }
        }
    }

    private static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// 32 random bytes as 64 hex characters: a secret for a key or credential file.
    private static func randomHex() -> String {
        randomBytes(32).map { String(format: "%02x", $0) }.joined()
    }

    private static func modified(_ path: String) -> Date {
        (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast
    }

    private static func writeSecret(_ text: String, to path: String) throws {
        let temporary = path + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: Data((text + "\n").utf8), attributes: [.posixPermissions: 0o600]),
            rename(temporary, path) == 0
        else {
            throw DemoTitle.Failed(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
