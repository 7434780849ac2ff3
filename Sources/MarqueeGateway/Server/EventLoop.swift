import CLinux
import CURing
import Glibc
import MarqueeBus
import MarqueeHTTP
import MarqueePolicy
import MarqueeRing
import MarqueeTLS
import MarqueeTokens

/// One event loop: a ring, a thread, and the connections the kernel gave its listener. It owns all
/// its state (connection table, buffers, file cache) so nothing on the request path is shared,
/// locked or allocated. Each turn submits what the previous turn queued, waits once, and drains
/// every completion in batches.
struct EventLoop: ~Copyable {
    let id: Int
    let configuration: ServerConfiguration
    let shared: SharedState
    /// The shared state's policy, held without reference counting: it lives as long as the server,
    /// and a counted reference would bounce its count between loops on every request.
    unowned(unsafe) let policy: AccessPolicy?
    /// The catalog's per-title rules (held like `policy`, for the same reason).
    unowned(unsafe) let titleRules: SwappableReference<TitleRuleTable>?
    /// The origin's read-through cache (held like `policy`), nil when serving a plain folder.
    unowned(unsafe) let readThrough: ReadThroughCache?
    /// Fetch answers taken from the read-through cache on a wake-up (reused, swapped with it).
    var fetchAnswers: [FetchAnswer] = []
    /// The read-through cache's purge epoch when this loop last re-checked its open files.
    var purgeEpochSeen: UInt64 = 0
    /// Per slot: the fill its response streams from (`EventLoop+Fills`), or the fill a parked
    /// request was answered with until it is parsed again; nil otherwise.
    let fills: UnsafeMutablePointer<ObjectFill?>
    /// Responses waiting for their fills to grow, as generation << 32 | slot (and the list being
    /// gone through on a wake-up, swapped with it).
    var fillWaiters: [UInt64] = []
    var fillWaitersTaken: [UInt64] = []
    let ring: Ring
    let buffers: ProvidedBuffers
    let metrics: LoopMetrics
    let listenFD: Int32
    /// The plain listener that only redirects to HTTPS (`tls.redirect_listen`), -1 when none, and
    /// the HTTPS port redirects name.
    let redirectListenFD: Int32
    let httpsPort: UInt16

    let capacity: Int
    let connections: UnsafeMutablePointer<Connection>
    let freeSlots: UnsafeMutablePointer<Int32>
    var freeSlotCount: Int
    var openConnections = 0
    /// Memory lent to each response from its start to its end, never to an idle connection: the
    /// head (and the body too when both fit: playlists, manifests, errors) in the first
    /// `headBytes`, then the response's delivery record when records are on. A slot holds at
    /// most one chunk (`responseMemory(_:)`), so the pool never runs dry; chunks are made at the
    /// loop's peak of concurrent responses and reused, so idle keep-alive connections cost none.
    var responses: ChunkPool
    static let headBytes = 4096
    /// Per-slot sendmsg header and its two iovecs (head, body).
    let messages: UnsafeMutablePointer<msghdr>
    let iovecs: UnsafeMutablePointer<iovec>

    var inputs: ChunkPool
    var pipes: PipePool
    var files: FileCache
    /// The decoded request path: `/` at offset 0, then the relative path the file cache takes.
    let pathScratch: UnsafeMutableRawPointer
    /// Decoded token claims (`TokenVerifier`); the granted session id points into it.
    let tokenScratch: UnsafeMutableRawPointer
    /// Short refusal bodies built per request (the 451 message names the country).
    let messageScratch: UnsafeMutableRawPointer
    static let messageScratchBytes = 256
    /// Bodies built per response: playlists rewritten to carry the viewer's token.
    var bodies = BodyBufferPool()

    // Connections waiting for a pipe: a ring of (slot, generation), each connection in it at most once.
    let pipeQueue: UnsafeMutablePointer<UInt64>
    var pipeQueueHead = 0
    var pipeQueueCount = 0

    // Timeout lists (see TimeoutKind).
    let timerHeads: UnsafeMutablePointer<Int32>
    let timerTails: UnsafeMutablePointer<Int32>
    let timeouts: UnsafeMutablePointer<Int64>

    let completions: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>
    static let completionBatch: UInt32 = 256

    /// Monotonic time of this turn.
    var nowMilliseconds: Int64 = 0
    var nowNanoseconds: UInt64 = 0
    /// `Date: <IMF-fixdate>\r\n`, rewritten when the second changes.
    let dateLine: UnsafeMutableRawPointer
    static let dateLineBytes = 37
    var dateSecond: Int64 = -1
    /// Unix time in ms at the turn's start (a coarse clock): cached objects' freshness.
    var wallMilliseconds: Int64 = 0

    let tickSpec: UnsafeMutablePointer<__kernel_timespec>
    /// Per slot: the wait of a request a rate limit with a delay queued (`pace`).
    let pacingSpecs: UnsafeMutablePointer<__kernel_timespec>
    var tickMultishot = true
    let wakeBuffer: UnsafeMutablePointer<UInt64>
    var acceptArmed = false
    var acceptRearmAtTick = false
    var redirectAcceptArmed = false
    var redirectAcceptRearmAtTick = false
    var draining = false
    var drainDeadline: Int64 = 0

    // Prepared header lines.
    let headerLines: HeaderLines

    // Service upstreams (`EventLoop+Proxy`): routes, one exchange per client slot, the link table
    // with its free list and per-upstream idle pools, relay buffers.
    let routes: ServiceRoutes?
    let exchanges: UnsafeMutablePointer<ProxyExchange>
    /// Connections to the service upstreams and, after them (from `fillUpstreamBase`), to an
    /// edge's cache upstreams, with their keep-alive pools.
    var links: UpstreamLinks
    /// Cache fills this loop runs from an edge's upstreams (`EventLoop+UpstreamFills`): the
    /// source, where its upstreams start in `links`, the fills (reused through `freeFills`), their
    /// receive areas and the timeouts linked to their operations.
    let fillSource: (any UpstreamFillSource)?
    let fillUpstreamBase: Int
    var fillExchanges: [FillExchange] = []
    var freeFills: [Int32] = []
    var fillAreas: ChunkPool
    let fillTimeouts: UnsafeMutablePointer<__kernel_timespec>
    var relays: ChunkPool
    /// This loop's delivery-record ring and the writer that drains it (held like `policy`); nil
    /// when records are off.
    unowned(unsafe) let records: RecordRing?
    unowned(unsafe) let recordWriter: DeliveryRecordWriter?
    /// The CMCD text of the request being answered (`MediaPath.cmcd`).
    let cmcdScratch: UnsafeMutableRawPointer
    /// What the media request being answered left for its record.
    var media = MediaRequest()
    /// The writer was woken since the ring last went below half full.
    var recordWakeSent = false
    /// https upstreams of an edge (`EventLoop+UpstreamTLS`): each upstream's name to verify (nil
    /// for plain ones, by index in `links`), the client context, the links' TLS and buffers.
    let upstreamTLSNames: [String?]
    let upstreamTLSContext: TLSContext?
    let linkTLS: TLSConnections?
    var linkTLSBuffers: ChunkPool
    /// HTTPS on this loop's listener (`EventLoop+TLS`): the connections' TLS, their output
    /// buffers, a record's plaintext as received, and plaintext gathered for encryption (a round
    /// of a file read in, or a small response's head and body as one record).
    let tls: TLSConnections?
    var tlsOutputs: ChunkPool
    let tlsPlaintext: UnsafeMutableRawPointer
    let tlsPlainScratch: UnsafeMutableRawPointer
    /// Generated X-Request-IDs: a random prefix per loop and a counter.
    let requestIDPrefix: UInt64
    var requestCounter: UInt64 = 0

    init(
        id: Int, configuration: ServerConfiguration, shared: SharedState, listenFD: Int32, redirectListenFD: Int32 = -1, rootFD: Int32,
        capacity: Int
    ) throws {
        let ring = try Ring(entries: configuration.ringEntries)
        let buffers: ProvidedBuffers
        do {
            buffers = try ProvidedBuffers(
                on: ring, groupID: 1, count: configuration.receiveBufferCount, bufferSize: configuration.receiveBufferBytes)
        } catch {
            ring.close()
            throw error
        }
        self.ring = ring
        self.buffers = buffers
        self.id = id
        self.configuration = configuration
        self.shared = shared
        policy = shared.policy
        titleRules = shared.titleRules
        readThrough = shared.readThrough
        self.listenFD = listenFD
        self.redirectListenFD = redirectListenFD
        httpsPort = redirectListenFD >= 0 ? ListeningSocket.boundAddress(listenFD).port : 443
        self.capacity = capacity
        metrics = shared.metrics[id]
        records = shared.recordRings.isEmpty ? nil : shared.recordRings[id]
        recordWriter = shared.recordWriter
        cmcdScratch = .allocate(byteCount: MediaPath.cmcdScratchBytes, alignment: 16)

        connections = .allocate(capacity: capacity)
        connections.initialize(repeating: Connection(), count: capacity)
        fills = .allocate(capacity: capacity)
        fills.initialize(repeating: nil, count: capacity)
        freeSlots = .allocate(capacity: capacity)
        for i in 0..<capacity { freeSlots[i] = Int32(capacity - 1 - i) }
        freeSlotCount = capacity
        responses = ChunkPool(chunkBytes: Self.headBytes + (records == nil ? 0 : DeliveryRecordLayout.size), capacity: capacity)
        messages = .allocate(capacity: capacity)
        messages.initialize(repeating: msghdr(), count: capacity)
        iovecs = .allocate(capacity: capacity * 2)
        iovecs.initialize(repeating: iovec(), count: capacity * 2)
        for i in 0..<capacity { messages[i].msg_iov = iovecs + 2 * i }

        // An input chunk holds a maximal head plus whatever a pipelining client sent after it.
        inputs = ChunkPool(chunkBytes: configuration.requestLimits.maxHeadBytes * 2, capacity: capacity)
        pipes = PipePool(limit: configuration.maxPipesPerLoop, pipeBytes: configuration.spliceChunkBytes)
        files = FileCache(
            rootFD: rootFD, capacity: configuration.fileCacheEntries, maxPathBytes: configuration.maxPathBytes,
            memoryFileMaxBytes: configuration.memoryFileMaxBytes, mapsLargeFiles: (configuration.largeFileTransfer == .send || shared.tls != nil) && MappedFileReads.install(),
            revalidateMilliseconds: configuration.fileCacheRevalidateMilliseconds)
        pathScratch = .allocate(byteCount: configuration.maxPathBytes + 2, alignment: 16)
        pathScratch.storeBytes(of: UInt8(ascii: "/"), as: UInt8.self)
        tokenScratch = .allocate(byteCount: TokenVerifier.maximumTokenBytes, alignment: 16)
        messageScratch = .allocate(byteCount: Self.messageScratchBytes, alignment: 16)
        pipeQueue = .allocate(capacity: capacity)

        completions = .allocate(capacity: Int(Self.completionBatch))
        dateLine = .allocate(byteCount: Self.dateLineBytes, alignment: 16)
        tickSpec = .allocate(capacity: 1)
        tickSpec.initialize(to: __kernel_timespec(tv_sec: 1, tv_nsec: 0))
        pacingSpecs = .allocate(capacity: capacity)
        pacingSpecs.initialize(repeating: __kernel_timespec(tv_sec: 0, tv_nsec: 0), count: capacity)
        wakeBuffer = .allocate(capacity: 1)
        headerLines = HeaderLines(configuration)
        let kinds = TimeoutKind.allCases.count
        timerHeads = .allocate(capacity: kinds)
        timerHeads.initialize(repeating: -1, count: kinds)
        timerTails = .allocate(capacity: kinds)
        timerTails.initialize(repeating: -1, count: kinds)
        timeouts = .allocate(capacity: kinds)
        timeouts[Int(TimeoutKind.header.rawValue)] = configuration.headerTimeoutMilliseconds
        timeouts[Int(TimeoutKind.idle.rawValue)] = configuration.idleTimeoutMilliseconds
        timeouts[Int(TimeoutKind.send.rawValue)] = configuration.sendTimeoutMilliseconds
        timeouts[Int(TimeoutKind.linger.rawValue)] = configuration.lingerTimeoutMilliseconds
        timeouts[Int(TimeoutKind.upstream.rawValue)] = configuration.services.timeoutMilliseconds
        timeouts[Int(TimeoutKind.body.rawValue)] = configuration.bodyTimeoutMilliseconds

        let upstreams = configuration.services.upstreams
        routes = upstreams.isEmpty ? nil : ServiceRoutes(upstreams)
        exchanges = .allocate(capacity: capacity)
        exchanges.initialize(repeating: ProxyExchange(), count: capacity)
        fillSource = configuration.readThrough?.upstreamSource
        let fillUpstreams = fillSource?.upstreams ?? []
        // The cache bounds the fetches pending on all loops together by its queue limit.
        let maxFills = fillUpstreams.isEmpty ? 0 : configuration.readThrough!.queueLimit
        fillUpstreamBase = upstreams.count
        // One active link per client slot for the proxy, one per fill.
        links = UpstreamLinks(
            upstreams: upstreams + fillUpstreams, activeLinks: (upstreams.isEmpty ? 0 : capacity) + maxFills,
            idlePerUpstream: configuration.services.idleConnectionsPerUpstream)
        fillAreas = ChunkPool(chunkBytes: Self.fillAreaBytes, capacity: maxFills)
        fillTimeouts = .allocate(capacity: max(1, maxFills))
        relays = ChunkPool(chunkBytes: upstreams.isEmpty ? 0 : Self.relayHeadBytes + Self.relayReceiveBytes, capacity: capacity)
        var random = UInt64(truncatingIfNeeded: nowNanoseconds) ^ UInt64(getpid()) << 32 ^ UInt64(id)
        let urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if urandom >= 0 {
            _ = read(urandom, &random, 8)
            Glibc.close(urandom)
        }
        requestIDPrefix = random
        tls = shared.tls == nil ? nil : TLSConnections(capacity: capacity)
        upstreamTLSNames = (upstreams + fillUpstreams).map(\.tlsServerName)
        let anyTLSUpstream = upstreamTLSNames.contains { $0 != nil }
        upstreamTLSContext = anyTLSUpstream ? shared.upstreamTLS : nil
        linkTLS = anyTLSUpstream ? TLSConnections(capacity: max(1, links.capacity)) : nil
        linkTLSBuffers = ChunkPool(chunkBytes: anyTLSUpstream ? Self.linkTLSInputBytes + Self.linkTLSOutputBytes : 0, capacity: links.capacity)
        tlsOutputs = ChunkPool(chunkBytes: shared.tls == nil ? 0 : Self.tlsOutputBytes, capacity: capacity)
        tlsPlaintext = .allocate(byteCount: shared.tls == nil ? 1 : Self.tlsPlaintextBytes, alignment: 64)
        tlsPlainScratch = .allocate(byteCount: shared.tls == nil ? 1 : Self.tlsRoundBytes, alignment: 64)
    }

    // MARK: - The loop

    mutating func run() {
        updateClock()
        armAccept()
        if redirectListenFD >= 0 { armRedirectAccept() }
        armTick()
        armWake()
        while true {
            ring.submitAndWait(1)
            metrics.add(.loopTurns)
            metrics.add(.submissions)
            updateClock()
            while true {
                let count = ring.peekBatch(into: completions, count: Self.completionBatch)
                if count == 0 { break }
                for i in 0..<Int(count) {
                    let cqe = completions[i]!
                    handle(UserData(value: cqe.pointee.user_data), result: cqe.pointee.res, flags: cqe.pointee.flags)
                }
                ring.advance(count)
                metrics.add(.completions, UInt64(count))
            }
            if draining && (openConnections == 0 || nowMilliseconds >= drainDeadline) { break }
        }
        for slot in 0..<capacity where connections[slot].phase != .free {
            // Cut by the end of the shutdown grace: its record says what went out.
            endRecord(Int32(slot), aborted: true)
            Glibc.close(connections[slot].fd)
        }
        ring.close()
    }

    @inline(__always) mutating func updateClock() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        nowNanoseconds = UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
        nowMilliseconds = Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
        clock_gettime(CLOCK_REALTIME_COARSE, &ts)
        wallMilliseconds = Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
        if Int64(ts.tv_sec) != dateSecond {
            dateSecond = Int64(ts.tv_sec)
            var w = ResponseWriter(base: dateLine, capacity: Self.dateLineBytes)
            w.append("Date: ")
            HTTPDate.format(dateSecond, into: dateLine + w.count)
            w.count += HTTPDate.length
            w.appendCRLF()
        }
    }

    @inline(__always) mutating func handle(_ data: UserData, result: Int32, flags: UInt32) {
        switch data.kind {
        case .recv:
            let slot = data.slot
            guard connections[Int(slot)].generation == data.generation, connections[Int(slot)].phase != .free else {
                if flags & IORING_CQE_F_BUFFER != 0 { buffers.recycle(id: UInt16(flags >> IORING_CQE_BUFFER_SHIFT)) }
                return
            }
            onReceive(slot, result: result, flags: flags)
        case .send:
            guard connections[Int(data.slot)].generation == data.generation else { return }
            onSendComplete(data.slot, result: result)
        case .stream:
            guard connections[Int(data.slot)].generation == data.generation else { return }
            onStreamStepComplete(data.slot, step: data.step, result: result)
        case .accept:
            onAccept(result: result, flags: flags, redirect: data.step == Self.redirectAcceptStep)
        case .tick:
            onTick(result: result, flags: flags)
        case .paced:
            resumeParked(slot: data.slot, generation: data.generation, .turn(limitIndex: UInt8(data.step)))
        case .wake:
            onWake()
        case .upstream:
            onUpstreamComplete(data.slot, generation: data.generation, step: data.step, result: result)
        case .relay:
            guard connections[Int(data.slot)].generation == data.generation else { return }
            onRelaySent(data.slot, result: result)
        case .tls:
            guard connections[Int(data.slot)].generation == data.generation else { return }
            onTLSSent(data.slot, result: result)
        case .ignored, .none:
            break
        }
    }

    // MARK: - Accepting

    mutating func armAccept() {
        let sqe = ring.submissionEntry()
        io_uring_prep_multishot_accept(sqe, listenFD, nil, nil, SOCK_CLOEXEC.rawValue == 0 ? 0 : Int32(SOCK_CLOEXEC.rawValue))
        io_uring_sqe_set_data64(sqe, UserData.make(.accept))
        acceptArmed = true
    }

    /// The step that marks the redirect listener's accepts.
    static let redirectAcceptStep = 1

    mutating func armRedirectAccept() {
        let sqe = ring.submissionEntry()
        io_uring_prep_multishot_accept(sqe, redirectListenFD, nil, nil, SOCK_CLOEXEC.rawValue == 0 ? 0 : Int32(SOCK_CLOEXEC.rawValue))
        io_uring_sqe_set_data64(sqe, UserData.make(.accept, step: UInt8(Self.redirectAcceptStep)))
        redirectAcceptArmed = true
    }

    /// A connection on the media listener, or (`redirect`) on the plain one that only redirects
    /// to HTTPS.
    mutating func onAccept(result: Int32, flags: UInt32, redirect: Bool = false) {
        if flags & IORING_CQE_F_MORE == 0 {
            if redirect { redirectAcceptArmed = false } else { acceptArmed = false }
            if !draining {
                // Out of descriptors: retry at the next tick rather than spin.
                let outOfDescriptors = result == -EMFILE || result == -ENFILE
                switch (redirect, outOfDescriptors) {
                case (false, true): acceptRearmAtTick = true
                case (false, false): armAccept()
                case (true, true): redirectAcceptRearmAtTick = true
                case (true, false): armRedirectAccept()
                }
            }
        }
        guard result >= 0 else {
            if result != -ECANCELED { metrics.add(.acceptErrors) }
            return
        }
        let fd = result
        // The shared flag, not `draining`: this completion may come before the wake-up's.
        if draining || shared.isDraining {
            Glibc.close(fd)
            return
        }
        guard freeSlotCount > 0 else {
            refuse(fd, plain: redirect)
            return
        }
        var peer = IPAddress(high: 0, low: 0)
        var addressSlot: Int32 = -1
        if policy != nil || routes != nil || records != nil { peer = Self.peerAddress(fd) }
        if let policy {
            if let counts = policy.connectionCounts, !policy.trustedProxies.isTrusted(peer) {
                let (admitted, countSlot) = counts.acquire(peer)
                guard admitted else {
                    metrics.countPolicy(PolicyCounter.addressCapRefused)
                    refuse(fd, tooManyFromAddress: true, plain: redirect)
                    return
                }
                addressSlot = countSlot
            }
        }
        freeSlotCount -= 1
        let slot = freeSlots[freeSlotCount]
        let generation = connections[Int(slot)].generation
        connections[Int(slot)] = Connection()
        connections[Int(slot)].generation = generation
        connections[Int(slot)].fd = fd
        connections[Int(slot)].peer = peer
        connections[Int(slot)].addressSlot = addressSlot
        connections[Int(slot)].state.accepted()
        connections[Int(slot)].redirectsToHTTPS = redirect
        if let tls, !redirect, !shared.tls!.withCurrent({ tls.open(slot, with: $0, loop: id) }) {
            // Out of memory for OpenSSL: the connection goes as if over the limit.
            freeSlotCount += 1
            if addressSlot >= 0 { policy?.connectionCounts?.release(addressSlot) }
            connections[Int(slot)] = Connection()
            connections[Int(slot)].generation = generation
            metrics.add(.connectionsRefused)
            Glibc.close(fd)
            return
        }
        openConnections += 1
        metrics.add(.connectionsAccepted)
        metrics.set(.connectionsOpen, UInt64(openConnections))
        startTimer(slot, .header)
        armReceive(slot)
    }

    /// Over the connection limit (503) or the address's cap (429): a short answer and close,
    /// without taking a slot.
    func refuse(_ fd: Int32, tooManyFromAddress: Bool = false, plain: Bool = false) {
        let message: StaticString =
            tooManyFromAddress
            ? "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: 45\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many connections from your address, retry\n"
            : "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 34\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many connections, retry later\n"
        // Counted first: a client that has seen the close may read /metrics at once.
        metrics.add(.connectionsRefused)
        // Over TLS nothing can be said before a handshake: the client sees the connection close.
        guard tls == nil || plain else {
            Glibc.close(fd)
            return
        }
        _ = send(fd, message.utf8Start, message.utf8CodeUnitCount, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
        shutdown(fd, Int32(SHUT_WR))
        Glibc.close(fd)
    }

    /// The connected peer (multishot accept reports no address).
    static func peerAddress(_ fd: Int32) -> IPAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) == 0 }
        }
        guard ok else { return IPAddress(high: 0, low: 0) }
        return withUnsafeBytes(of: &storage) { IPAddress(socketAddress: $0.baseAddress!) } ?? IPAddress(high: 0, low: 0)
    }

    // MARK: - Receiving

    mutating func armReceive(_ slot: Int32) {
        let sqe = ring.submissionEntry()
        io_uring_prep_recv_multishot(sqe, connections[Int(slot)].fd, nil, 0, 0)
        sqe.pointee.flags |= MQ_IOSQE_BUFFER_SELECT
        sqe.pointee.buf_group = buffers.groupID
        io_uring_sqe_set_data64(sqe, UserData.make(.recv, slot: slot, generation: connections[Int(slot)].generation))
        connections[Int(slot)].state.receiveArmed()
    }

    mutating func onReceive(_ slot: Int32, result: Int32, flags: UInt32) {
        connections[Int(slot)].state.receiveCompleted(more: flags & IORING_CQE_F_MORE != 0)
        if result > 0 {
            let id = UInt16(flags >> IORING_CQE_BUFFER_SHIFT)
            if speaksTLS(slot) {
                receiveTLS(slot, buffers.bytes(id: id, count: Int(result)))
            } else {
                consume(slot, buffers.bytes(id: id, count: Int(result)))
            }
            buffers.recycle(id: id)
        } else if result == 0 {
            if connections[Int(slot)].state.finReceived() == .close { abort(slot) }
        } else if result == -ENOBUFS {
            metrics.add(.receiveBuffersExhausted)
        } else {
            abort(slot)
        }
        if connections[Int(slot)].state.rearmsReceive { armReceive(slot) }
        finishCloseIfQuiet(slot)
    }

    /// Bytes arrived for `slot`. The common case, a whole request in one receive with nothing
    /// pending, is parsed straight from the provided buffer without copying.
    mutating func consume(_ slot: Int32, _ bytes: UnsafeRawBufferPointer) {
        switch connections[Int(slot)].state.bytesAction {
        case .parseHead:
            if connections[Int(slot)].inputCount == 0 {
                if connections[Int(slot)].timerList == TimeoutKind.idle.rawValue { startTimer(slot, .header) }
                processInput(slot, bytes, fromInput: false)
            } else if appendInput(slot, bytes) {
                processInput(slot, inputBytes(slot), fromInput: true)
            }
        case .keep:
            _ = appendInput(slot, bytes)
        case .body:
            consumeBody(slot, bytes)
        case .discard:
            break
        }
    }

    /// Keeps bytes for later; a client that pipelines more than a chunk ahead is cut off.
    mutating func appendInput(_ slot: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        if connections[Int(slot)].input < 0 {
            let chunk = inputs.take()
            guard chunk >= 0 else {
                abort(slot)
                return false
            }
            connections[Int(slot)].input = chunk
        }
        let count = Int(connections[Int(slot)].inputCount)
        guard count + bytes.count <= inputs.chunkBytes else {
            if connections[Int(slot)].phase == .awaitingHead {
                respondWithError(slot, HTTPError(.requestHeaderFieldsTooLarge, "request head too large"), close: true)
            } else {
                abort(slot)
            }
            return false
        }
        (inputs.pointer(connections[Int(slot)].input) + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        connections[Int(slot)].inputCount += Int32(bytes.count)
        return true
    }

    @inline(__always) func inputBytes(_ slot: Int32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: inputs.pointer(connections[Int(slot)].input), count: Int(connections[Int(slot)].inputCount))
    }

    mutating func releaseInput(_ slot: Int32) {
        if connections[Int(slot)].input >= 0 {
            inputs.give(connections[Int(slot)].input)
            connections[Int(slot)].input = -1
        }
        connections[Int(slot)].inputCount = 0
    }

    /// Looks for a complete head in `data` (all unconsumed bytes of this connection) and answers it.
    mutating func processInput(_ slot: Int32, _ data: UnsafeRawBufferPointer, fromInput: Bool) {
        let limits = configuration.requestLimits
        switch connections[Int(slot)].boundary.scan(data, limits: limits) {
        case .incomplete:
            if !fromInput { _ = appendInput(slot, data) }
        case .failed(let error):
            respondWithError(slot, error, close: true)
        case .complete(let headLength):
            connections[Int(slot)].requestStartNanoseconds = nowNanoseconds
            switch RequestParser.parse(data, headLength: headLength, limits: limits) {
            case .failed(let error):
                respondWithError(slot, error, close: true)
            case .complete(let head):
                respond(slot, to: head, in: data)
                if connections[Int(slot)].phase == .parked && connections[Int(slot)].parking.keepsHead {
                    // Parked: keep the head and what followed it, to parse again on the answer.
                    connections[Int(slot)].boundary.reset()
                    if !fromInput { _ = appendInput(slot, data) }
                    return
                }
                // Keep what followed the head and its body (pipelined requests), unless this
                // connection ends.
                let consumed = min(data.count, headLength + Int(connections[Int(slot)].bodyConsumed))
                connections[Int(slot)].bodyConsumed = 0
                let rest = data.count - consumed
                connections[Int(slot)].boundary.reset()
                if !connections[Int(slot)].keepAlive || rest == 0 {
                    if fromInput { connections[Int(slot)].inputCount = 0 }
                } else if fromInput {
                    let base = inputs.pointer(connections[Int(slot)].input)
                    memmove(base, base + consumed, rest)
                    connections[Int(slot)].inputCount = Int32(rest)
                } else {
                    _ = appendInput(slot, UnsafeRawBufferPointer(rebasing: data[consumed...]))
                }
            }
        }
        if connections[Int(slot)].inputCount == 0 && connections[Int(slot)].input >= 0 { releaseInput(slot) }
    }

    // MARK: - Closing

    /// Ends a connection now: pending operations are failed by shutting the socket down, and the
    /// descriptor closes once they have completed.
    mutating func abort(_ slot: Int32) {
        let action = connections[Int(slot)].state.close()
        guard action != .none else { return }
        stopTimer(slot)
        if action == .shutDown { shutdown(connections[Int(slot)].fd, Int32(SHUT_RDWR)) }
        // An upstream operation of its exchange ends early, so its buffers come back soon.
        if upstreamBusy(slot) { interrupt(exchanges[Int(slot)].link) }
        finishCloseIfQuiet(slot)
    }

    /// After a final response: send FIN, discard what the client still sends, close on its FIN.
    mutating func closeGracefully(_ slot: Int32) {
        releaseInput(slot)
        guard connections[Int(slot)].state.linger() == .shutDownWrite else {
            abort(slot)
            return
        }
        if speaksTLS(slot) { sendCloseNotify(slot) }
        shutdown(connections[Int(slot)].fd, Int32(SHUT_WR))
        startTimer(slot, .linger)
    }

    mutating func finishCloseIfQuiet(_ slot: Int32) {
        let c = connections[Int(slot)]
        guard c.state.mayRelease(upstreamBusy: upstreamBusy(slot)) else { return }
        // A response cut before its end (client gone, timeout): its record says what went out.
        if c.recording { endRecord(slot, aborted: true) }
        if c.response >= 0 { responses.give(c.response) }
        releaseInput(slot)
        releaseExchange(slot)
        if c.entry >= 0 { files.release(c.entry) }
        fills[Int(slot)] = nil
        if c.body >= 0 { bodies.give(c.body) }
        if c.addressSlot >= 0 { policy?.connectionCounts?.release(c.addressSlot) }
        if c.pipe >= 0 {
            // The transfer stopped part-way: what the pipe holds is unknown, so it is not reused.
            pipes.discard(c.pipe)
        }
        if tls != nil { releaseTLS(slot) }
        Glibc.close(c.fd)
        connections[Int(slot)] = Connection()
        connections[Int(slot)].generation = c.generation &+ 1
        freeSlots[freeSlotCount] = slot
        freeSlotCount += 1
        openConnections -= 1
        metrics.set(.connectionsOpen, UInt64(openConnections))
        if c.pipe >= 0 { servePipeWaiters() }
    }

    // MARK: - Timers and wake-ups

    /// Resumes the requests whose fetches answered (or whose fills began streaming).
    mutating func takeFetchAnswers() {
        guard let readThrough else { return }
        readThrough.takeAnswers(loop: id, into: &fetchAnswers)
        for answer in fetchAnswers {
            if let fill = answer.fill, answer.slot >= 0, Int(answer.slot) < capacity,
                connections[Int(answer.slot)].generation == answer.generation, connections[Int(answer.slot)].phase == .parked
            {
                fills[Int(answer.slot)] = fill
            }
            resumeParked(slot: answer.slot, generation: answer.generation, .fetched(answer.outcome))
        }
        fetchAnswers.removeAll(keepingCapacity: true)
    }

    mutating func armTick() {
        let sqe = ring.submissionEntry()
        io_uring_prep_timeout(sqe, tickSpec, 0, tickMultishot ? MQ_IORING_TIMEOUT_MULTISHOT : 0)
        io_uring_sqe_set_data64(sqe, UserData.make(.tick))
    }

    mutating func onTick(result: Int32, flags: UInt32) {
        if result == -EINVAL && tickMultishot {
            // Kernels before 6.4 have no multishot timeout: re-arm a one-shot each tick instead.
            tickMultishot = false
            armTick()
            return
        }
        if flags & IORING_CQE_F_MORE == 0 { armTick() }
        if redirectAcceptRearmAtTick && !redirectAcceptArmed && !draining {
            redirectAcceptRearmAtTick = false
            armRedirectAccept()
        }
        if acceptRearmAtTick && !acceptArmed && !draining {
            acceptRearmAtTick = false
            armAccept()
        }
        expireTimers()
        metrics.set(.fileCacheHits, files.hits)
        metrics.set(.fileCacheMisses, files.misses)
    }

    mutating func armWake() {
        let sqe = ring.submissionEntry()
        io_uring_prep_read(sqe, shared.wakeFDs[id], wakeBuffer, 8, 0)
        io_uring_sqe_set_data64(sqe, UserData.make(.wake))
    }

    /// A wake-up: answers from the shared rate limiter, or SIGTERM (stop accepting, close idle
    /// connections, let responses in flight finish).
    mutating func onWake() {
        if let policy, policy.redis != nil {
            let queue = policy.rateAnswers[id]
            while let answer = queue.pop() {
                switch answer.result {
                case .verdict(let verdict): resumeParked(slot: answer.slot, generation: answer.generation, .verdict(verdict))
                case .unavailable: resumeParked(slot: answer.slot, generation: answer.generation, .redisUnavailable)
                }
            }
        }
        if readThrough != nil {
            takeFetchAnswers()
            resumeFillWaiters()
        }
        // Parked requests still need their answers while draining.
        let answersExpected = policy?.redis != nil || readThrough != nil
        guard shared.isDraining, !draining else {
            if !draining || answersExpected { armWake() }
            return
        }
        if answersExpected { armWake() }
        draining = true
        drainDeadline = nowMilliseconds + configuration.shutdownGraceMilliseconds
        if acceptArmed {
            let sqe = ring.submissionEntry()
            io_uring_prep_cancel64(sqe, UserData.make(.accept), 0)
            io_uring_sqe_set_data64(sqe, UserData.make(.ignored))
        }
        if redirectAcceptArmed {
            let sqe = ring.submissionEntry()
            io_uring_prep_cancel64(sqe, UserData.make(.accept, step: UInt8(Self.redirectAcceptStep)), 0)
            io_uring_sqe_set_data64(sqe, UserData.make(.ignored))
        }
        for slot in 0..<Int32(capacity) {
            switch connections[Int(slot)].state.drain(hasInput: connections[Int(slot)].inputCount > 0) {
            case .close: abort(slot)
            case .lastResponse, .nothing: break
            }
        }
    }
}
