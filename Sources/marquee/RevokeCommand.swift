import ArgumentParser
import Glibc
import MarqueeConsole
import MarqueeGateway
import MarqueePolicy
import MarqueeRedis
import MarqueeTokens

/// `marquee revoke`: ends a playback session on every gateway, through Redis or one gateway's
/// admin listener.
struct RevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a playback session: its next request gets 402 (funds) or 403.")

    @Option(help: "Session id named in the session's URL tokens.")
    var session: String

    @Option(help: "funds (402) or other (403).")
    var reason: String = "other"

    @Option(help: "Seconds the revocation lasts (at least as long as the session's URLs are valid).")
    var ttl: Int64 = 86400

    @Option(help: "Publish through this Redis (redis://host:port/db): every gateway using it obeys within a second.")
    var redis: String?

    @Option(help: "Otherwise, ask this gateway's admin listener (HOST:PORT).")
    var admin: String = "127.0.0.1:9090"
    @Option(name: .customLong("admin-token-file"), help: "The admin listener's bearer secret (its admin.token_file).")
    var adminTokenFile: String?

    func run() throws {
        guard let why = RevocationReason(reason) else { throw ValidationError("--reason must be funds or other") }
        guard RevocationList.isValidSessionID(session) else { throw ValidationError("--session must be 1-128 characters of A-Z a-z 0-9 . _ : -") }
        guard ttl > 0 else { throw ValidationError("--ttl must be positive") }
        if let redis {
            do {
                let endpoint = try RedisEndpoint(parsing: redis)
                try RedisRevocationFeed.publish(session, reason: why, expiresAt: Int64(time(nil)) + ttl, endpoint: endpoint)
            } catch {
                printError("marquee revoke: \(error)")
                throw ExitCode(1)
            }
            printLine("revoked \(session) (\(reason)) for \(ttl) s through \(redis)")
            return
        }
        var secret: String?
        if let adminTokenFile {
            guard let bytes = TokenKeyFiles.readSecret(adminTokenFile) else {
                throw ValidationError("--admin-token-file: cannot read \(adminTokenFile): \(String(cString: strerror(errno)))")
            }
            secret = String(decoding: bytes, as: UTF8.self)
        }
        let (status, body) = try AdminRequest.post(admin, path: "/revocations?session=\(session)&reason=\(reason)&ttl=\(ttl)", bearer: secret)
        guard status == 200 else {
            printError("marquee revoke: \(admin) answered \(status): \(body)")
            throw ExitCode(1)
        }
        printLine(body)
    }
}

/// A blocking HTTP/1.1 request to a gateway's admin listener.
enum AdminRequest {
    static func post(_ address: String, path: String, bearer: String? = nil) throws -> (Int, String) {
        let target: SocketAddress
        do { target = try SocketAddress(parsing: address) } catch { throw ValidationError("\(error)") }
        let fd = socket(target.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard target.connect(fd) else { throw ValidationError("cannot connect to \(address): \(String(cString: strerror(errno)))") }
        let authorization = bearer.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        let request = Array("POST \(path) HTTP/1.1\r\nHost: \(address)\r\n\(authorization)Content-Length: 0\r\nConnection: close\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 4096, 0) }
            if n <= 0 { break }
            response += chunk[0..<n]
        }
        let text = String(decoding: response, as: UTF8.self)
        let status = Int(text.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") ?? 0
        var body = ""
        if let end = response.indices.first(where: { response[$0...].starts(with: [13, 10, 13, 10]) }) {
            body = String(decoding: response[(end + 4)...], as: UTF8.self)
        }
        return (status, body.hasSuffix("\n") ? String(body.dropLast()) : body)
    }
}
