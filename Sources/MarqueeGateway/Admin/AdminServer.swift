import CLinux
import Glibc
import MarqueeHTTP
import MarqueePolicy

/// The operator's listener: `/metrics` (Prometheus text format), `/healthz` (the process runs),
/// `/readyz` (accepting traffic; 503 while draining), and `POST /revocations` behind a bearer
/// secret (`AdminAccess`). It runs on its own blocking thread, one connection at a time, so a
/// scrape never touches the event loops.
final class AdminServer: @unchecked Sendable {
    let fd: Int32
    let shared: SharedState
    let access: AdminAccess
    /// The revocation rate's token bucket (only this thread touches it).
    private var revocationTokens: Double
    private var revocationRefilledAt: Double = 0

    init(fd: Int32, shared: SharedState, access: AdminAccess) {
        self.fd = fd
        self.shared = shared
        self.access = access
        revocationTokens = Double(access.revocationsPerSecond)
    }

    func start() { OSThread.detach { [self] in serve() } }

    private func serve() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED || errno == EMFILE { continue }
                return
            }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            answer(client)
            close(client)
        }
    }

    private func answer(_ client: Int32) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        var received = 0
        var boundary = HeadBoundary()
        let limits = RequestLimits()
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress! + received, $0.count - received, 0) }
            if n <= 0 { return }
            received += n
            let result = buffer.withUnsafeBytes { boundary.scan(UnsafeRawBufferPointer(rebasing: $0[0..<received]), limits: limits) }
            switch result {
            case .incomplete:
                if received == buffer.count { return }
                continue
            case .failed(let error):
                reply(client, error.status, "text/plain; charset=utf-8", Array("\(error.reason)\n".utf8), head: false)
                return
            case .complete(let headLength):
                let parsed = buffer.withUnsafeBytes { RequestParser.parse($0, headLength: headLength) }
                guard case .complete(let head) = parsed else {
                    if case .failed(let error) = parsed {
                        reply(client, error.status, "text/plain; charset=utf-8", Array("\(error.reason)\n".utf8), head: false)
                    }
                    return
                }
                route(client, head, buffer)
                return
            }
        }
    }

    private func route(_ client: Int32, _ head: RequestHead, _ buffer: [UInt8]) {
        // DNS rebinding: a browser that was led here under another name sends that name.
        let hostAccepted = buffer.withUnsafeBytes { raw in
            !head.host.isPresent || access.acceptsHost(head.host.bytes(in: raw))
        }
        guard hostAccepted else {
            let host = buffer.withUnsafeBytes { head.host.string(in: $0) } ?? ""
            reply(client, .forbidden, "text/plain; charset=utf-8", Array("Host \(host.debugDescription) is not a name of this admin listener (admin.allowed_hosts)\n".utf8), head: false)
            return
        }
        let target = buffer.withUnsafeBytes { head.target.string(in: $0) } ?? ""
        let targetPath = String(target.prefix { $0 != "?" })
        let query = target.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        if head.method == .post && (targetPath == "/revocations" || targetPath == "/purge") {
            guard access.bearerSecret != nil else {
                reply(client, .forbidden, "text/plain; charset=utf-8", Array("state-changing admin routes are off: configure admin.token_file (--admin-token-file)\n".utf8), head: false)
                return
            }
            let authorized = buffer.withUnsafeBytes { raw -> Bool in
                var value: UnsafeRawBufferPointer?
                HeaderFields(head: UnsafeRawBufferPointer(rebasing: raw[0..<head.headLength])).forEach { field in
                    if field.name.equalsLowercase("authorization") { value = field.value }
                    return true
                }
                return access.authorizes(value)
            }
            guard authorized else {
                reply(client, .unauthorized, "text/plain; charset=utf-8", Array("Authorization: Bearer <admin.token_file secret> is required\n".utf8), head: false,
                    extra: "WWW-Authenticate: Bearer realm=\"marquee-admin\"\r\n")
                return
            }
            if targetPath == "/purge" { purge(client, query: query) } else { revoke(client, query: query) }
            return
        }
        guard head.method == .get || head.method == .head else {
            reply(client, .methodNotAllowed, "text/plain; charset=utf-8", Array("use GET\n".utf8), head: false)
            return
        }
        let path = buffer.withUnsafeBytes { head.path.string(in: $0) } ?? ""
        let isHead = head.method == .head
        switch path {
        case "/metrics":
            reply(client, .ok, "text/plain; version=0.0.4; charset=utf-8", Array(PrometheusText.render(shared).utf8), head: isHead)
        case "/healthz":
            reply(client, .ok, "text/plain; charset=utf-8", Array("ok\n".utf8), head: isHead)
        case "/readyz":
            if shared.isReady, shared.purgeFeed?.allowsReadiness == false {
                // An edge back from an outage replays the purges it missed before taking traffic.
                reply(client, .serviceUnavailable, "text/plain; charset=utf-8", Array("catching up on purges\n".utf8), head: isHead)
            } else if shared.isReady {
                reply(client, .ok, "text/plain; charset=utf-8", Array("ready\n".utf8), head: isHead)
            } else {
                reply(client, .serviceUnavailable, "text/plain; charset=utf-8", Array("draining\n".utf8), head: isHead)
            }
        default:
            reply(client, .notFound, "text/plain; charset=utf-8", Array("admin endpoints: /metrics /healthz /readyz, POST /revocations, POST /purge\n".utf8), head: isHead)
        }
    }

    /// `POST /revocations?session=S&reason=funds|other&ttl=SECONDS`: the session's next request
    /// gets 402 (funds) or 403, on this gateway and every one sharing its Redis.
    private func revoke(_ client: Int32, query: String) {
        func fail(_ status: HTTPStatus, _ message: String) {
            reply(client, status, "text/plain; charset=utf-8", Array((message + "\n").utf8), head: false)
        }
        guard let fields = Self.queryFields(query) else { return fail(.badRequest, "malformed query: \(query.debugDescription)") }
        guard let policy = shared.policy else {
            return fail(.notFound, "no access policy is configured on this gateway")
        }
        guard let session = fields["session"], !session.isEmpty else { return fail(.badRequest, "session= is required") }
        guard let reason = RevocationReason(fields["reason"] ?? "other") else {
            return fail(.badRequest, "reason must be funds or other")
        }
        guard let ttl = Int64(fields["ttl"] ?? "86400"), ttl > 0, ttl <= access.maxRevocationSeconds else {
            return fail(.badRequest, "ttl must be a number of seconds between 1 and \(access.maxRevocationSeconds) (admin.max_revocation_ttl_s)")
        }
        var monotonic = timespec()
        clock_gettime(CLOCK_MONOTONIC, &monotonic)
        let seconds = Double(monotonic.tv_sec) + Double(monotonic.tv_nsec) / 1e9
        let rate = Double(access.revocationsPerSecond)
        revocationTokens = min(rate, revocationTokens + (seconds - revocationRefilledAt) * rate)
        revocationRefilledAt = seconds
        guard revocationTokens >= 1 else {
            reply(client, .tooManyRequests, "text/plain; charset=utf-8",
                Array("more than \(access.revocationsPerSecond) revocations per second (admin.revocations_per_second); retry\n".utf8), head: false,
                extra: "Retry-After: 1\r\n")
            return
        }
        revocationTokens -= 1
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        do {
            try policy.revoke(session: session, reason: reason, expiresAt: Int64(now.tv_sec) + ttl)
            reply(client, .ok, "text/plain; charset=utf-8", Array("revoked \(session) (\(reason)) for \(ttl) s\n".utf8), head: false)
        } catch {
            fail(.serviceUnavailable, error.description)
        }
    }

    /// `POST /purge?path=P` (one object) or `POST /purge?prefix=P` (a title, a package version;
    /// `prefix=/` empties the cache): the files leave the cache and the next request fetches
    /// them again.
    private func purge(_ client: Int32, query: String) {
        func fail(_ status: HTTPStatus, _ message: String) {
            reply(client, status, "text/plain; charset=utf-8", Array((message + "\n").utf8), head: false)
        }
        guard let cache = shared.readThrough else {
            return fail(.notFound, "this gateway has no cache to purge (an origin serving a folder, or no cache.dir)")
        }
        guard let fields = Self.queryFields(query) else { return fail(.badRequest, "malformed query: \(query.debugDescription)") }
        let request: PurgeRequest
        switch (fields["path"], fields["prefix"]) {
        case (let path?, nil): request = .path(path)
        case (nil, let prefix?): request = .prefix(prefix)
        default: return fail(.badRequest, "give exactly one of path= or prefix=")
        }
        switch cache.purge(request) {
        case .success(let removed):
            guard let feed = shared.purgeFeed else {
                reply(client, .ok, "application/json", Array("{\"purged\":\(removed)}\n".utf8), head: false)
                return
            }
            // Every other gateway on the same Redis applies it too; say whether it went out.
            let problem = PurgeFeed.publish(request, endpoint: feed.endpoint)
            if let problem { GatewayLog.warning("purge applied here but not published to the other gateways: \(problem)") }
            let body = "{\"purged\":\(removed),\"published\":\(problem == nil)}\n"
            reply(client, .ok, "application/json", Array(body.utf8), head: false)
        case .failure(let problem):
            fail(.badRequest, problem.message)
        }
    }

    /// The `name=value` pairs of an admin route's query, values percent-decoded; nil when a pair
    /// has no `=` or a malformed escape.
    static func queryFields(_ query: String) -> [String: String]? {
        var fields: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let value = percentDecoded(parts[1]) else { return nil }
            fields[parts[0]] = value
        }
        return fields
    }

    /// `%XX` decoded (and `+` as a space, as forms send it); nil when an escape is malformed.
    static func percentDecoded(_ text: String) -> String? {
        var out: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%") {
                guard bytes.count >= 2, let value = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                out.append(value)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b == UInt8(ascii: "+") ? 0x20 : b)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private func reply(_ client: Int32, _ status: HTTPStatus, _ type: String, _ body: [UInt8], head: Bool, extra: String = "") {
        var out = [UInt8](repeating: 0, count: 512)
        let headLength = out.withUnsafeMutableBytes { raw -> Int in
            var w = ResponseWriter(base: raw.baseAddress!, capacity: raw.count)
            w.append(status.statusLine)
            w.append("Server: marquee\r\nConnection: close\r\nCache-Control: no-store\r\nContent-Type: ")
            Array(type.utf8).withUnsafeBytes { w.append($0) }
            w.append("\r\nContent-Length: ")
            w.append(decimal: Int64(body.count))
            w.appendCRLF()
            Array(extra.utf8).withUnsafeBytes { w.append($0) }
            w.appendCRLF()
            return w.count
        }
        var message = Array(out[0..<headLength])
        if !head { message += body }
        var sent = 0
        while sent < message.count {
            let n = message.withUnsafeBytes { send(client, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }
}
