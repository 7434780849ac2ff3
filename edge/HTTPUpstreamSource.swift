import CLinux
import Glibc
import MarqueeGateway
import MarqueeHTTP
import MarqueePolicy
import MarqueeTLS
import MarqueeTokens
import Synchronization

/// An edge's upstreams (origins or parent edges) as its read-through cache's source. The loops
/// run the fetches on their rings (`EventLoop+UpstreamFills` in the engine); this decides for them:
///
/// - The upstream is chosen by `UpstreamSelection` (rendezvous hashing, failover past upstreams
///   that failed recently). A refused connection, a 5xx or a timeout asks the next one within the
///   fetch's time budget; a 404 or 410 is the answer (the object does not exist), as is any other
///   4xx (every upstream would say the same).
/// - The request carries no player token (the edge checked it); with a shared key it carries a
///   `Marquee-Edge` signature instead (`EdgeSignature`), which the origin trusts.
/// - The file's modification time is the upstream's `Last-Modified` (else the time the head
///   arrived), so validators match the origin's.
/// - How long the copy is served follows the response (`ResponseFacts`: Cache-Control, Expires),
///   and a stale copy is refreshed with If-None-Match / If-Modified-Since, so an unchanged object
///   costs a 304.
/// - Upstreams marked down are probed by a thread of their own (`startHealthChecks`).
final class HTTPUpstreamSource: UpstreamFillSource, @unchecked Sendable {
    let upstreams: [ServiceUpstream]
    let signer: (signature: EdgeSignature, edgeID: String)?
    /// Freshness where a response gives none (`edge.default_ttl_s` and the stale windows).
    let defaults: ResponseFacts.Defaults
    /// How often upstreams marked down are probed (`edge.health_check_ms`; 0: never).
    let healthCheckMilliseconds: Int64
    /// How https upstreams are verified (the probes speak TLS to them too).
    let tls: TLSContext?
    private let selection: Mutex<UpstreamSelection>
    private let hostHeaders: [[UInt8]]
    private let viaHeader: [UInt8]

    init(
        upstreams: [ServiceUpstream], signer: (EdgeSignature, String)?, edgeID: String, downMilliseconds: Int64,
        defaults: ResponseFacts.Defaults = ResponseFacts.Defaults(), healthCheckMilliseconds: Int64 = 0, tls: TLSContext? = nil
    ) {
        self.upstreams = upstreams
        self.tls = tls
        self.defaults = defaults
        self.healthCheckMilliseconds = healthCheckMilliseconds
        self.signer = signer.map { (signature: $0.0, edgeID: $0.1) }
        selection = Mutex(UpstreamSelection(names: upstreams.map(\.authority), downMilliseconds: downMilliseconds))
        hostHeaders = upstreams.map { Array("Host: \($0.authority)\r\n".utf8) }
        viaHeader = Array("Via: 1.1 \(edgeID) (marquee)\r\n".utf8)
    }

    // MARK: - UpstreamFillSource

    func order(for key: String) -> [Int] { selection.withLock { $0.order(for: key, now: Self.monotonicMilliseconds()) } }

    func succeeded(_ upstream: Int) { selection.withLock { $0.succeeded(upstream) } }

    func failed(_ upstream: Int) { selection.withLock { $0.failed(upstream, now: Self.monotonicMilliseconds()) } }

    /// The request line and fields; a refresh of a copy with validators is conditional.
    func request(for key: String, upstream: Int, revalidating: ObjectFreshness?) -> [UInt8] {
        var head = Array("GET /".utf8)
        Self.appendPercentEncoded(key, to: &head)
        head += Array(" HTTP/1.1\r\nUser-Agent: marquee-edge\r\nAccept-Encoding: identity\r\n".utf8)
        head += viaHeader
        if let etag = revalidating?.etag { head += Array("If-None-Match: \(etag)\r\n".utf8) }
        if let modified = revalidating?.lastModified { head += Array("If-Modified-Since: \(HTTPDate.string(modified))\r\n".utf8) }
        if let signer {
            let expires = ObjectFreshness.nowMilliseconds() / 1000 + 300
            head += Array("\(EdgeSignature.headerName): \(signer.signature.sign(edgeID: signer.edgeID, absolutePath: "/" + key, expires: expires))\r\n".utf8)
        }
        head += hostHeaders[upstream]
        head += Array("\r\n".utf8)
        return head
    }

    func answer(head: UnsafeRawBufferPointer, status: Int, revalidating: ObjectFreshness?) -> UpstreamAnswer {
        switch status {
        case 200:
            let facts = ResponseFacts(head: head)
            let now = ObjectFreshness.nowMilliseconds()
            return .body(modifiedSeconds: facts.lastModified ?? now / 1000, freshness: facts.freshness(now: now, defaults: defaults))
        case 304:
            // The copy named in If-None-Match / If-Modified-Since is current; a 304 may omit the
            // validators, and the copy keeps its own.
            var facts = ResponseFacts(head: head)
            facts.etag = facts.etag ?? revalidating?.etag
            facts.lastModified = facts.lastModified ?? revalidating?.lastModified
            return .notModified(facts.freshness(now: ObjectFreshness.nowMilliseconds(), defaults: defaults))
        case 404, 410:
            return .notFound
        case 500...599:
            return .unavailable("answered \(status)")
        default:
            // A redirect or another 4xx: every upstream would say the same.
            return .refused("the upstream answered \(status)")
        }
    }

    // MARK: - Health

    /// Whether `upstream` failed recently and is asked last.
    func isDown(_ upstream: Int) -> Bool { selection.withLock { $0.isDown(upstream, now: Self.monotonicMilliseconds()) } }

    /// Starts a thread that, every `healthCheckMilliseconds`, asks each upstream marked down for
    /// `HEAD /`: an HTTP answer below 500 (a 404 too) shows it is back, and it takes its place in
    /// the order again before `edge.upstream_down_ms` runs out.
    func startHealthChecks() {
        guard healthCheckMilliseconds > 0 else { return }
        let interval = healthCheckMilliseconds
        OSThread.detach { [self] in checkHealth(every: interval) }
    }

    private func checkHealth(every interval: Int64) {
        while true {
            usleep(UInt32(min(interval, 60_000) * 1000))
            for upstream in upstreams.indices where isDown(upstream) {
                if answersHead(upstream, deadline: Self.monotonicMilliseconds() + min(interval, 2_000)) {
                    selection.withLock { $0.succeeded(upstream) }
                }
            }
        }
    }

    /// Whether `upstream` answers `HEAD /` with a status below 500 before `deadline`.
    private func answersHead(_ upstream: Int, deadline: Int64) -> Bool {
        guard case .connected(let fd) = connect(upstream, deadline: deadline) else { return false }
        defer { close(fd) }
        let request = Array("HEAD / HTTP/1.1\r\nUser-Agent: marquee-edge health\r\nConnection: close\r\n".utf8) + hostHeaders[upstream] + Array("\r\n".utf8)
        if let name = upstreams[upstream].tlsServerName {
            guard let tls, let stream = try? TLSStream(context: tls, serverName: name) else { return false }
            return answersHeadOverTLS(fd, stream, request: request, deadline: deadline)
        }
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n } else if n < 0 && errno == EAGAIN { _ = Self.wait(fd, for: Int16(POLLOUT), until: deadline) } else { return false }
            if Self.monotonicMilliseconds() >= deadline { return false }
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var received = 0
        while received < buffer.count {
            guard Self.wait(fd, for: Int16(POLLIN), until: deadline) == .ready else { return false }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + received, $0.count - received, 0) }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            if n <= 0 { return false }
            received += n
            let parsed = buffer.withUnsafeBytes { ResponseParser.parse(UnsafeRawBufferPointer(rebasing: $0[0..<received])) }
            switch parsed {
            // A 5xx to the probe (an overloaded or broken upstream) keeps it down.
            case .complete(let head): return head.status < 500
            case .failed: return false
            case .incomplete: continue
            }
        }
        return false
    }

    /// The probe to an https upstream: the handshake (verifying its certificate), then the HEAD.
    private func answersHeadOverTLS(_ fd: Int32, _ stream: TLSStream, request: [UInt8], deadline: Int64) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        /// Sends every byte of ciphertext the stream has for the upstream.
        func flush() -> Bool {
            while stream.pendingCiphertext > 0 {
                let count = buffer.withUnsafeMutableBytes { stream.takeCiphertext(into: $0) }
                var sent = 0
                while sent < count {
                    let n = buffer.withUnsafeBytes { send(fd, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL)) }
                    if n > 0 { sent += n } else if n < 0 && errno == EAGAIN { _ = Self.wait(fd, for: Int16(POLLOUT), until: deadline) } else { return false }
                    if Self.monotonicMilliseconds() >= deadline { return false }
                }
            }
            return true
        }
        /// Hands the stream what arrives next.
        func receive() -> Bool {
            guard Self.wait(fd, for: Int16(POLLIN), until: deadline) == .ready else { return false }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return true }
            guard n > 0 else { return false }
            buffer.withUnsafeBytes { stream.receive(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            return true
        }
        do {
            while try stream.handshake() != .established {
                guard flush(), receive() else { return false }
            }
            var offset = 0
            while offset < request.count {
                let written = try request.withUnsafeBytes { try stream.write(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
                guard written > 0 else { return false }
                offset += written
            }
            guard flush() else { return false }
            var head: [UInt8] = []
            var plain = [UInt8](repeating: 0, count: 4096)
            while head.count < 16 * 1024 {
                switch try plain.withUnsafeMutableBytes({ try stream.read(into: $0) }) {
                case .bytes(let n):
                    head += plain[0..<n]
                    switch head.withUnsafeBytes({ ResponseParser.parse($0) }) {
                    case .complete(let response): return response.status < 500
                    case .failed: return false
                    case .incomplete: continue
                    }
                case .needsMore:
                    guard flush(), receive() else { return false }
                case .closed:
                    return false
                }
            }
        } catch {
            return false
        }
        return false
    }

    enum Connecting {
        case connected(Int32)
        case failed
    }

    /// A non-blocking connect for the health probe, waited for with poll until `deadline`.
    private func connect(_ upstream: Int, deadline: Int64) -> Connecting {
        let address = upstreams[upstream].address
        var storage = address.storage
        let family = Int32(storage.ss_family)
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return .failed }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let length = socklen_t(family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) } }
        if rc != 0 && errno != EINPROGRESS {
            close(fd)
            return .failed
        }
        if rc != 0 {
            switch Self.wait(fd, for: Int16(POLLOUT), until: deadline) {
            case .ready: break
            case .timedOut:
                close(fd)
                return .failed
            }
            var error: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
            if error != 0 {
                close(fd)
                return .failed
            }
        }
        return .connected(fd)
    }

    // MARK: - Helpers

    enum Readiness { case ready, timedOut }

    static func wait(_ fd: Int32, for events: Int16, until deadline: Int64) -> Readiness {
        while true {
            let remaining = deadline - monotonicMilliseconds()
            guard remaining > 0 else { return .timedOut }
            var item = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&item, 1, Int32(min(remaining, 60_000)))
            if n > 0 { return .ready }
            if n < 0 && errno != EINTR { return .ready }  // the next call reports the error
        }
    }

    /// Unreserved characters, `/` and the sub-delimiters stay; every other byte is `%XX`.
    static func appendPercentEncoded(_ key: String, to out: inout [UInt8]) {
        let hex = Array("0123456789ABCDEF".utf8)
        for b in key.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"), UInt8(ascii: "!"),
                UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"),
                UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "@"):
                out.append(b)
            default:
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
    }

    static func monotonicMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

