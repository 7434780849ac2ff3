import CLinux
import Glibc
import MarqueeHTTP
import MarqueePolicy

/// Follows the catalog's per-title access rules on a thread of its own: a long poll
/// `GET /internal/access-rules?wait=N` with `If-None-Match: <last ETag>` and the gateways' service
/// credential over a blocking socket, straight to the catalog (the feed is not under `/api/`, so
/// the gateway never forwards it for anyone else).
/// A 200 replaces the loops' table at once (`SwappableReference`); a 304 means nothing changed
/// within `wait` seconds. On any error it retries with backoff (1 s doubling to 10 s) and the loops
/// keep the last good rules.
final class CatalogRulesFeed: @unchecked Sendable {
    let upstream: ServiceUpstream
    let waitSeconds: Int
    /// The service credential's secret, sent as `Authorization: Bearer`.
    let credential: String?
    let rules: SwappableReference<TitleRuleTable>
    /// Largest document accepted, in bytes.
    static let maxDocumentBytes = 64 << 20
    /// The catalog's feed.
    static let path = "/internal/access-rules"

    init(upstream: ServiceUpstream, waitSeconds: Int, credential: String?, rules: SwappableReference<TitleRuleTable>) {
        self.upstream = upstream
        self.waitSeconds = waitSeconds
        self.credential = credential
        self.rules = rules
    }

    func start() { OSThread.detach { [self] in run() } }

    enum Answer: Equatable {
        case changed(etag: String?)
        case unchanged
    }

    private func run() {
        var etag: String?
        var backoff: UInt32 = 1
        var lastError = ""
        while true {
            do {
                let started = Self.monotonicSeconds()
                let (answer, body) = try poll(etag: etag)
                var changed = false
                if case .changed(let newTag) = answer {
                    let document = try Self.decode(body)
                    // New rules: a new ETag, or without ETags a new version.
                    let isNew = newTag.map { $0 != etag } ?? (document.version != rules.current.version)
                    etag = newTag
                    if isNew || !rules.current.isLoaded {
                        rules.replace(with: TitleRuleTable(version: document.version, rules: document.rules))
                        GatewayLog.notice("catalog title rules version \(document.version) loaded (\(document.rules.count) titles)")
                        changed = true
                    }
                }
                // A catalog that answers at once without news (no long poll, no ETag) is asked
                // at most once a second.
                if !changed && Self.monotonicSeconds() - started < 1 { sleep(1) }
                backoff = 1
                lastError = ""
            } catch {
                let message = "\(error)"
                if message != lastError { GatewayLog.warning("catalog title rules: \(message); keeping the last rules, retrying") }
                lastError = message
                sleep(backoff)
                backoff = min(10, backoff * 2)
            }
            rules.releaseRetired()
        }
    }

    static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    static func decode(_ body: [UInt8]) throws(GatewayError) -> (version: Int64, rules: [TitleRule]) {
        do {
            return try AccessRulesDocument.decode(body)
        } catch {
            throw .upstream("catalog", message: error.description)
        }
    }

    /// One request on a fresh connection (`Connection: close`: one poll at a time needs no pool).
    func poll(etag: String?) throws(GatewayError) -> (Answer, [UInt8]) {
        let address = upstream.address
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .upstream("catalog", message: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var connectTimeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &connectTimeout, socklen_t(MemoryLayout<timeval>.size))
        var readTimeout = timeval(tv_sec: waitSeconds + 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &readTimeout, socklen_t(MemoryLayout<timeval>.size))
        guard address.connect(fd) else {
            throw .upstream("catalog", message: "cannot connect to http://\(upstream.authority): \(String(cString: strerror(errno)))")
        }
        var request = "GET \(Self.path)?wait=\(waitSeconds) HTTP/1.1\r\nHost: \(upstream.authority)\r\nAccept: application/json\r\nConnection: close\r\n"
        if let credential { request += "Authorization: Bearer \(credential)\r\n" }
        if let etag { request += "If-None-Match: \(etag)\r\n" }
        request += "\r\n"
        let sent = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        guard sent == request.utf8.count else { throw .upstream("catalog", message: "could not send the request") }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .upstream("catalog", message: "receive failed: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            received += chunk[0..<n]
            guard received.count <= Self.maxDocumentBytes else { throw .upstream("catalog", message: "document over \(Self.maxDocumentBytes) bytes") }
        }
        return try Self.parse(received)
    }

    /// The status, ETag and body of a whole response read to its close.
    static func parse(_ bytes: [UInt8]) throws(GatewayError) -> (Answer, [UInt8]) {
        try bytes.withUnsafeBytes { raw in Result { () throws(GatewayError) in try parse(raw) } }.get()
    }

    private static func parse(_ raw: UnsafeRawBufferPointer) throws(GatewayError) -> (Answer, [UInt8]) {
        guard case .complete(let head) = ResponseParser.parse(raw) else {
            throw .upstream("catalog", message: "malformed or incomplete response")
        }
        if head.status == 304 { return (.unchanged, []) }
        guard head.status == 200 else { throw .upstream("catalog", message: "the catalog answered \(head.status)") }
        var etag: String?
        HeaderFields(head: UnsafeRawBufferPointer(rebasing: raw[0..<head.headLength])).forEach { field in
            if field.name.equalsLowercase("etag") { etag = String(decoding: field.value, as: UTF8.self) }
            return true
        }
        let rest = UnsafeRawBufferPointer(rebasing: raw[head.headLength...])
        var body: [UInt8] = []
        if head.isChunked {
            var decoder = ChunkedDecoder()
            guard case .complete = decoder.decode(rest, onData: { body += $0 }) else {
                throw .upstream("catalog", message: "malformed chunked body")
            }
        } else if head.contentLength >= 0 {
            guard rest.count >= Int(head.contentLength) else { throw .upstream("catalog", message: "body shorter than its Content-Length") }
            body = Array(rest[0..<Int(head.contentLength)])
        } else {
            body = Array(rest)
        }
        return (.changed(etag: etag), body)
    }
}
