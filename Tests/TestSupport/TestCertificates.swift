import Foundation

/// A certificate authority of the test's own, made with the `openssl` CLI, and the server
/// certificates it issues: clients trust its `certificate` (curl's `--cacert`), servers present
/// an issued chain, as a real deployment does.
public struct TestCertificateAuthority: Sendable {
    public let folder: URL
    /// The CA's certificate (PEM): what clients trust.
    public let certificate: String
    let key: String

    /// A server's files: its chain (leaf, then the CA) and its private key.
    public struct Issued: Sendable {
        public let chain: String
        public let key: String
    }

    /// A new CA whose key is `kind` (`ec` P-256 or `rsa` 2048).
    public init(kind: String = "ec", name: String = "Marquee Test CA") throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-ca-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        certificate = folder.appendingPathComponent("ca.pem").path
        key = folder.appendingPathComponent("ca-key.pem").path
        try Self.openssl(["req", "-x509"] + Self.newKey(kind) + ["-nodes", "-keyout", key, "-out", certificate, "-days", "2", "-subj", "/CN=\(name)"])
    }

    /// A certificate for `names` (DNS names, or IP addresses) signed by this CA.
    public func issue(_ names: [String] = ["localhost", "127.0.0.1"], kind: String = "ec", validDays: Int = 2) throws -> Issued {
        let base = folder.appendingPathComponent("\(names[0])-\(kind)-\(UUID().uuidString.prefix(6))").path
        let request = base + ".csr"
        let leaf = base + ".leaf.pem"
        let chain = base + ".pem"
        let leafKey = base + "-key.pem"
        let extensions = base + ".ext"
        let alternatives = names.map { $0.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" } ? "IP:\($0)" : "DNS:\($0)" }
        try """
            subjectAltName=\(alternatives.joined(separator: ","))
            basicConstraints=CA:FALSE
            keyUsage=digitalSignature,keyEncipherment
            extendedKeyUsage=serverAuth

            """.write(toFile: extensions, atomically: true, encoding: .utf8)
        try Self.openssl(["req", "-new"] + Self.newKey(kind) + ["-nodes", "-keyout", leafKey, "-out", request, "-subj", "/CN=\(names[0])"])
        try Self.openssl([
            "x509", "-req", "-in", request, "-CA", certificate, "-CAkey", key, "-CAcreateserial", "-out", leaf, "-days", "\(validDays)",
            "-extfile", extensions,
        ])
        try (String(contentsOfFile: leaf, encoding: .utf8) + String(contentsOfFile: certificate, encoding: .utf8))
            .write(toFile: chain, atomically: true, encoding: .utf8)
        return Issued(chain: chain, key: leafKey)
    }

    static func newKey(_ kind: String) -> [String] {
        kind == "ec" ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["-newkey", "rsa:2048"]
    }

    static func openssl(_ arguments: [String]) throws {
        let result = try Subprocess.run("/usr/bin/openssl", arguments)
        guard result.succeeded else { throw TestEnvironmentError("openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(result.output)") }
    }
}

/// Hand-built TLS records for hostile clients.
public enum TLSRecords {
    /// A ClientHello that offers TLS 1.1 at most (one cipher suite, no extensions): a server
    /// that keeps to TLS 1.2 and 1.3 must refuse it.
    public static let tls11Hello: [UInt8] = {
        var body: [UInt8] = [0x03, 0x02] + [UInt8](repeating: 7, count: 32) + [0x00, 0x00, 0x02, 0x00, 0x2F, 0x01, 0x00]
        let handshake: [UInt8] = [0x01, 0x00, 0x00, UInt8(body.count)] + body
        body = [0x16, 0x03, 0x01, 0x00, UInt8(handshake.count)] + handshake
        return body
    }()
}
