import Foundation
import Glibc

/// `marquee dev --tls`: a certificate authority of this data folder's own and a certificate it
/// signs for the names a local browser or player uses (localhost, 127.0.0.1, ::1 and this
/// machine's name), made with the `openssl` tool in `<data>/tls` and kept between runs. Trusting
/// `ca.pem` once makes every later run trusted too.
struct DevCertificates {
    let folder: String
    var authority: String { folder + "/ca.pem" }
    var authorityKey: String { folder + "/ca-key.pem" }
    var chain: String { folder + "/gateway.pem" }
    var key: String { folder + "/gateway-key.pem" }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The files, made when missing or when the certificate expires within a day.
    static func ensure(data: String) throws -> DevCertificates {
        let certificates = DevCertificates(folder: data + "/tls")
        try FileManager.default.createDirectory(atPath: certificates.folder, withIntermediateDirectories: true)
        let fresh = FileManager.default.fileExists(atPath: certificates.key)
            && (try? Self.openssl(["x509", "-in", certificates.chain, "-noout", "-checkend", "86400"])) != nil
        if !fresh { try certificates.make() }
        return certificates
    }

    private func make() throws {
        if !FileManager.default.fileExists(atPath: authorityKey)
            || (try? Self.openssl(["x509", "-in", authority, "-noout", "-checkend", "86400"])) == nil
        {
            try Self.openssl([
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", authorityKey, "-out", authority,
                "-days", "3650", "-subj", "/CN=Marquee dev CA (\(Self.hostName()))",
            ])
        }
        let request = folder + "/gateway.csr"
        let extensions = folder + "/gateway.ext"
        var names = ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
        let host = Self.hostName()
        if !host.isEmpty && host != "localhost" && host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) {
            names.append("DNS:\(host)")
        }
        try """
            subjectAltName=\(names.joined(separator: ","))
            basicConstraints=CA:FALSE
            keyUsage=digitalSignature
            extendedKeyUsage=serverAuth

            """.write(toFile: extensions, atomically: true, encoding: .utf8)
        try Self.openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", request, "-subj",
            "/CN=localhost",
        ])
        // 397 days: the longest validity browsers accept for a server certificate.
        let leaf = folder + "/gateway-leaf.pem"
        try Self.openssl([
            "x509", "-req", "-in", request, "-CA", authority, "-CAkey", authorityKey, "-CAcreateserial", "-out", leaf, "-days", "397",
            "-extfile", extensions,
        ])
        let chainText = try String(contentsOfFile: leaf, encoding: .utf8) + String(contentsOfFile: authority, encoding: .utf8)
        try chainText.write(toFile: chain, atomically: true, encoding: .utf8)
        chmod(key, 0o600)
        chmod(authorityKey, 0o600)
        for scratch in [request, extensions, leaf] { try? FileManager.default.removeItem(atPath: scratch) }
    }

    /// How to trust the CA, for the startup banner.
    var trustAdvice: [String] {
        [
            "tls:       certificates by a local CA: \(authority)",
            "           trust it: curl --cacert \(authority); Chromium: --ignore-certificate-errors, or certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n marquee-dev -i \(authority);",
            "           the whole system (Debian): cp \(authority) /usr/local/share/ca-certificates/marquee-dev.crt && update-ca-certificates",
        ]
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Runs `openssl` to completion (posix_spawn and waitpid: this runs inside Swift concurrency,
    /// where Foundation's Process can miss its child's exit); throws with its output on failure.
    @discardableResult
    static func openssl(_ arguments: [String]) throws -> String {
        let tool = ["/usr/bin/openssl", "/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let tool else { throw Failure(description: "--tls needs the openssl tool (apt-get install openssl)") }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("marquee-openssl-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, tool, &actions, nil, argv, environ) == 0 else { throw Failure(description: "cannot run \(tool)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard status == 0 else { throw Failure(description: "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(output)") }
        return output
    }
}
