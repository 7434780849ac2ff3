import ArgumentParser
import Glibc
import MarqueeConsole
import MarqueeHTTP
import MarqueeTokens

/// `marquee sign`: mints a URL token (docs/url-token.md) and prints the signed URL.
struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Print a signed URL for a path (URL token v1, docs/url-token.md).",
        discussion: """
            Prints the URL in both placements unless --mode picks one:
              path:  <base>/t/<token>/titles/demo/master.m3u8   (relative URLs in playlists inherit it)
              query: <base>/titles/demo/master.m3u8?token=<token> (the gateway rewrites playlists)
            """)

    @Option(name: .customLong("key-id"), help: "Key id the gateway knows the secret by.")
    var keyID: String

    @Option(name: .customLong("secret-file"), help: "File holding the key's secret (at least 32 bytes; trailing newline ignored).")
    var secretFile: String

    @Option(help: "Path prefix the token covers, e.g. /titles/demo/ (default: the path's folder).")
    var scope: String?

    @Option(help: "Seconds the URL stays valid.")
    var ttl: Int64 = 3600

    @Option(help: "Absolute expiry as a Unix time (instead of --ttl).")
    var expires: Int64?

    @Option(name: .customLong("not-before"), help: "Unix time before which the URL is refused (default: none).")
    var notBefore: Int64?

    @Option(help: "Playback session id (for revocation and per-session limits).")
    var session: String?

    @Option(help: "Client address or CIDR block the URL is bound to.")
    var ip: String?

    @Option(help: "path, query, or both.")
    var mode: String = "both"

    @Option(help: "Gateway base URL the path is appended to.")
    var base: String = "http://127.0.0.1:8080"

    @Flag(name: .customLong("token-only"), help: "Print only the token.")
    var tokenOnly = false

    @Argument(help: "The path to sign, e.g. /titles/demo/1/master.m3u8")
    var path: String

    func run() throws {
        guard path.hasPrefix("/") else { throw ValidationError("the path must start with /") }
        guard ttl > 0 else { throw ValidationError("--ttl must be positive") }
        guard let secret = TokenKeyFiles.readSecret(secretFile) else {
            throw ValidationError("cannot read --secret-file \(secretFile): \(String(cString: strerror(errno)))")
        }
        var client: CIDR?
        if let ip {
            guard let block = CIDR(ip) else { throw ValidationError("--ip \"\(ip)\" is not an address or CIDR block") }
            client = block
        }
        let pathOnly = String(path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        let folder = pathOnly.hasSuffix("/") ? pathOnly : String(pathOnly[...(pathOnly.lastIndex(of: "/") ?? pathOnly.startIndex)])
        let claims = TokenClaims(
            keyID: keyID, expires: expires ?? (Int64(time(nil)) + ttl), notBefore: notBefore, scope: scope ?? folder, session: session, client: client)
        let token: String
        do {
            token = try URLToken.mint(claims, keys: try TokenKeyRing([(keyID, secret)]))
        } catch {
            throw ValidationError("\(error)")
        }
        if tokenOnly {
            printLine(token)
            return
        }
        switch mode {
        case "path":
            printLine(URLToken.signedURL(base: base, path: path, token: token, placement: .path))
        case "query":
            printLine(URLToken.signedURL(base: base, path: path, token: token, placement: .query))
        case "both":
            printLine("path:  " + URLToken.signedURL(base: base, path: path, token: token, placement: .path))
            printLine("query: " + URLToken.signedURL(base: base, path: path, token: token, placement: .query))
        default:
            throw ValidationError("--mode must be path, query or both")
        }
    }
}
