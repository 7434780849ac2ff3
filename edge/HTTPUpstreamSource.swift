import CLinux
import Glibc
import MarqueeGateway
import MarqueeHTTP
import MarqueePolicy
import MarqueeTokens
import Synchronization

/// Feeds an edge's read-through cache from its upstreams (origins or parent edges) over HTTP/1.1:
/// one blocking GET per call, on a cache fetch thread, never on an event loop.
///
/// - The upstream is chosen by `UpstreamSelection` (rendezvous hashing, failover past upstreams
///   that failed recently). A refused connection, a 5xx or a timeout tries the next one within the
///   fetch's time budget; a 404 or 410 is the answer (the object does not exist), as is any other
///   4xx (every upstream would say the same).
/// - Connections are kept alive in a small pool per upstream. A pooled connection the upstream
///   closed while idle is noticed before use, or, failing that, the request is sent once more on
///   a fresh connection when no byte of an answer came.
/// - The request carries no player token (the edge checked it); with a shared key it carries a
///   `Marquee-Edge` signature instead (`EdgeSignature`), which the origin trusts.
/// - The body goes to the file the cache names; the cache renames it into place only when this
///   returns `.storedExpiring`, so a cut transfer never becomes a cached object. The file's
///   modification time is the upstream's `Last-Modified`, so validators match the origin's.
/// - A body with a Content-Length streams to the waiting players as it arrives (`ObjectFill`);
///   once it has, a failure is final for this fetch rather than tried on the next upstream.
/// - How long the copy is served follows the response (`ResponseFacts`: Cache-Control, Expires),
///   and a stale copy is refreshed with If-None-Match / If-Modified-Since, so an unchanged object
///   costs a 304.
final class HTTPUpstreamSource: ReadThroughSource, @unchecked Sendable {
    let upstreams: [ServiceUpstream]
    let signer: (signature: EdgeSignature, edgeID: String)?
    /// Freshness where a response gives none (`edge.default_ttl_s` and the stale windows).
    let defaults: ResponseFacts.Defaults
    /// How often upstreams marked down are probed (`edge.health_check_ms`; 0: never).
    let healthCheckMilliseconds: Int64
    private let selection: Mutex<UpstreamSelection>
    private let idle: Mutex<[[Int32]]>
    private let maxIdlePerUpstream: Int
    private let hostHeaders: [[UInt8]]
    private let viaHeader: [UInt8]

    init(
        upstreams: [ServiceUpstream], signer: (EdgeSignature, String)?, edgeID: String, downMilliseconds: Int64, maxIdlePerUpstream: Int,
        defaults: ResponseFacts.Defaults = ResponseFacts.Defaults(), healthCheckMilliseconds: Int64 = 0
    ) {
        self.upstreams = upstreams
        self.defaults = defaults
        self.healthCheckMilliseconds = healthCheckMilliseconds
        self.signer = signer.map { (signature: $0.0, edgeID: $0.1) }
        selection = Mutex(UpstreamSelection(names: upstreams.map(\.authority), downMilliseconds: downMilliseconds))
        idle = Mutex(upstreams.map { _ in [] })
        self.maxIdlePerUpstream = maxIdlePerUpstream
        hostHeaders = upstreams.map { Array("Host: \($0.authority)\r\n".utf8) }
        viaHeader = Array("Via: 1.1 \(edgeID) (marquee)\r\n".utf8)
    }

    func download(_ key: String, toFile path: String, timeoutMilliseconds: Int64, revalidating: ObjectFreshness?, fill: ObjectFill?) -> ReadThroughDownload {
        let deadline = Self.monotonicMilliseconds() + timeoutMilliseconds
        let order = selection.withLock { $0.order(for: key, now: Self.monotonicMilliseconds()) }
        let request = requestHead(for: key, revalidating: revalidating)
        var reasons: [String] = []
        for upstream in order {
            guard Self.monotonicMilliseconds() < deadline else { return .timedOut }
            let outcome = fetch(request, from: upstream, into: path, deadline: deadline, fill: fill)
            switch outcome {
            case .stored(let facts):
                selection.withLock { $0.succeeded(upstream) }
                return .storedExpiring(facts.freshness(now: ObjectFreshness.nowMilliseconds(), defaults: defaults))
            case .notModified(var facts):
                selection.withLock { $0.succeeded(upstream) }
                // A 304 may omit the validators: the copy keeps its own.
                facts.etag = facts.etag ?? revalidating?.etag
                facts.lastModified = facts.lastModified ?? revalidating?.lastModified
                return .notModified(facts.freshness(now: ObjectFreshness.nowMilliseconds(), defaults: defaults))
            case .notFound:
                selection.withLock { $0.succeeded(upstream) }
                return .notFound
            case .refused(let reason):
                // The upstream is up and answered; another would answer the same.
                return .failed(reason)
            case .unavailable(let reason):
                selection.withLock { $0.failed(upstream, now: Self.monotonicMilliseconds()) }
                reasons.append("\(upstreams[upstream].authority): \(reason)")
            case .timedOut:
                selection.withLock { $0.failed(upstream, now: Self.monotonicMilliseconds()) }
                reasons.append("\(upstreams[upstream].authority): no answer in time")
            }
            // Bytes of this body were streamed to players already: another upstream's copy cannot
            // continue them, so the fill fails here (and the next miss starts afresh).
            if fill?.hasBegun == true { break }
        }
        if Self.monotonicMilliseconds() >= deadline { return .timedOut }
        return .failed(reasons.joined(separator: "; "))
    }

    /// The request line and fields, up to (not including) the Host field and the final CRLF; a
    /// refresh of a copy with validators is conditional.
    private func requestHead(for key: String, revalidating: ObjectFreshness?) -> [UInt8] {
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
        return head
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

    // MARK: - One attempt

    enum Attempt: Equatable {
        case stored(ResponseFacts)
        /// A 304 to a conditional refresh.
        case notModified(ResponseFacts)
        case notFound
        /// The upstream answered with a refusal (4xx other than 404/410): the fetch's answer.
        case refused(String)
        /// Cannot connect, 5xx, a broken or malformed response: try the next upstream.
        case unavailable(String)
        case timedOut
    }

    private func fetch(_ requestHead: [UInt8], from upstream: Int, into path: String, deadline: Int64, fill: ObjectFill?) -> Attempt {
        var request = requestHead
        request += hostHeaders[upstream]
        request += Array("\r\n".utf8)
        var pooled = takeIdle(upstream)
        while true {
            let fd: Int32
            if pooled >= 0 {
                fd = pooled
            } else {
                switch connect(upstream, deadline: deadline) {
                case .connected(let opened): fd = opened
                case .failed(let attempt): return attempt
                }
            }
            let result = UpstreamExchange(fd: fd, deadline: deadline).run(request: request, into: path, fill: fill)
            if case .closedBeforeAnswer = result, pooled >= 0 {
                // The upstream closed the pooled connection while it was idle: once more, fresh.
                close(fd)
                pooled = -1
                continue
            }
            switch result {
            case .complete(let attempt, let reusable):
                if reusable { giveBack(fd, upstream) } else { close(fd) }
                return attempt
            case .closedBeforeAnswer:
                close(fd)
                return .unavailable("closed the connection without answering")
            case .failed(let attempt):
                close(fd)
                return attempt
            }
        }
    }

    enum Connecting {
        case connected(Int32)
        case failed(Attempt)
    }

    /// A non-blocking connect, waited for with poll until `deadline`.
    private func connect(_ upstream: Int, deadline: Int64) -> Connecting {
        let address = upstreams[upstream].address
        var storage = address.storage
        let family = Int32(storage.ss_family)
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return .failed(.unavailable("socket: \(String(cString: strerror(errno)))")) }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let length = socklen_t(family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) } }
        if rc != 0 && errno != EINPROGRESS {
            let reason = String(cString: strerror(errno))
            close(fd)
            return .failed(.unavailable("connect: \(reason)"))
        }
        if rc != 0 {
            switch Self.wait(fd, for: Int16(POLLOUT), until: deadline) {
            case .ready: break
            case .timedOut:
                close(fd)
                return .failed(.timedOut)
            }
            var error: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
            if error != 0 {
                close(fd)
                return .failed(.unavailable("connect: \(String(cString: strerror(error)))"))
            }
        }
        return .connected(fd)
    }

    /// An idle connection of `upstream` still open (one the upstream closed is readable: it is
    /// dropped here); -1 when none.
    private func takeIdle(_ upstream: Int) -> Int32 {
        while let fd = idle.withLock({ $0[upstream].popLast() }) {
            var probe = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&probe, 1, 0) == 0 { return fd }
            close(fd)
        }
        return -1
    }

    private func giveBack(_ fd: Int32, _ upstream: Int) {
        let kept = idle.withLock { pools -> Bool in
            guard pools[upstream].count < maxIdlePerUpstream else { return false }
            pools[upstream].append(fd)
            return true
        }
        if !kept { close(fd) }
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

