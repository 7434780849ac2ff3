import CLinux
import Glibc
import MarqueeTLS
import MarqueeBus
import MarqueePolicy
import MarqueeRedis
import Synchronization

/// The gateway engine: one event loop per thread, each with its own SO_REUSEPORT listener, plus an
/// admin listener on its own thread. `run()` blocks until SIGTERM or SIGINT, then drains.
public final class Server {
    public let configuration: ServerConfiguration
    /// Where the media listener is bound (the real port when 0 was asked for).
    public let mediaAddress: SocketAddress
    public let adminAddress: SocketAddress?
    let listenFDs: [Int32]
    /// Per loop, the plain listener that only redirects to HTTPS (`tls.redirect_listen`); empty when none.
    let redirectFDs: [Int32]
    /// Where the redirect listener is bound, when there is one.
    public let redirectAddress: SocketAddress?
    let adminFD: Int32
    let rootFD: Int32
    let shared: SharedState
    let started = Atomic<Int>(0)

    /// Opens the root folder and binds every listener, so configuration mistakes surface here.
    public init(configuration: ServerConfiguration) throws(GatewayError) {
        self.configuration = configuration
        precondition(configuration.threads > 0)
        var readThrough: ReadThroughCache?
        if let settings = configuration.readThrough {
            readThrough = try ReadThroughCache(settings)
        }
        var tls: SwappableReference<TLSContext>?
        if let settings = configuration.tls {
            do throws(TLSError) {
                let ticketKeys = try TLSTicketKeys(rotationSeconds: settings.ticketKeyRotationSeconds)
                let context = try TLSContext(
                    certificates: settings.certificates.map { TLSCertificateFiles(chain: $0.chainFile, key: $0.keyFile) }, ticketKeys: ticketKeys,
                    libraries: try TLSLibraries(count: configuration.threads))
                // A replaced set is freed only once no connection can still be in a handshake
                // that started with it (the header timeout covers the handshake).
                let handshakeLimit = Duration.milliseconds(configuration.headerTimeoutMilliseconds) + .seconds(5)
                tls = SwappableReference(context, retirementDelay: max(.seconds(30), handshakeLimit))
                CertificateReloader.warnOfExpiry(context)
            } catch {
                throw .invalid("tls", ": \(error)")
            }
        }
        let root = open(configuration.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else {
            throw .folder(configuration.root, message: "cannot open root folder \(configuration.root): \(String(cString: strerror(errno)))")
        }
        rootFD = root
        do throws(GatewayError) {
            var address = try SocketAddress(parsing: configuration.listen)
            var fds: [Int32] = []
            // Bind the first listener, then the others to the port it got (port 0 means "any free").
            for _ in 0..<configuration.threads {
                let fd = try ListeningSocket.open(address, reusePort: true)
                if fds.isEmpty { address.port = ListeningSocket.boundAddress(fd).port }
                fds.append(fd)
            }
            listenFDs = fds
            mediaAddress = ListeningSocket.boundAddress(fds[0])
            var redirects: [Int32] = []
            if let redirect = configuration.tls?.redirectListen {
                var address = try SocketAddress(parsing: redirect)
                for _ in 0..<configuration.threads {
                    let fd = try ListeningSocket.open(address, reusePort: true)
                    if redirects.isEmpty { address.port = ListeningSocket.boundAddress(fd).port }
                    redirects.append(fd)
                }
            }
            redirectFDs = redirects
            redirectAddress = redirects.first.map { ListeningSocket.boundAddress($0) }
            if let admin = configuration.admin {
                let fd = try ListeningSocket.open(try SocketAddress(parsing: admin), reusePort: false, backlog: 64)
                adminFD = fd
                adminAddress = ListeningSocket.boundAddress(fd)
            } else {
                adminFD = -1
                adminAddress = nil
            }
        } catch {
            Glibc.close(root)
            throw error
        }
        let policy = configuration.policy.isEmpty ? nil : try AccessPolicy(configuration.policy)
        shared = SharedState(loops: configuration.threads, policy: policy, upstreamNames: configuration.services.upstreams.map(\.name),
            titleRules: configuration.services.titleRulesUpstream != nil)
        shared.readThrough = readThrough
        shared.tls = tls
        if configuration.readThrough?.upstreamSource?.upstreams.contains(where: { $0.tlsServerName != nil }) == true {
            do throws(TLSError) {
                if let given = configuration.upstreamTLS {
                    shared.upstreamTLS = given
                } else {
                    shared.upstreamTLS = try TLSContext(clientTrusting: nil)
                }
            } catch {
                throw .invalid("edge.upstream_ca_file", ": \(error)")
            }
        }
        shared.trustsEdges = configuration.edgeSignature != nil
        if let readThrough, let endpoint = policy?.redisEndpoint {
            shared.purgeFeed = PurgeFeed(endpoint: endpoint, cache: readThrough)
        }
        if let records = configuration.deliveryRecords {
            guard records.ringRecords > 0, records.ringRecords.nonzeroBitCount == 1 else {
                throw .invalid("bus.ring_records", "must be a power of two, got \(records.ringRecords)")
            }
            let carrier: any DeliveryRecordCarrier
            do {
                let identity = DeliveryLogIdentity(
                    gatewayID: records.gatewayID, role: records.role, region: records.region, boot: DeliveryLogIdentity.randomBoot())
                if let url = records.redisURL {
                    var stream = RedisStreamCarrier.Settings(endpoint: try RedisEndpoint(parsing: url))
                    stream.stream = records.stream
                    stream.maxLength = records.streamMaxLength
                    carrier = try RedisStreamCarrier(
                        settings: stream, directory: records.logDirectory, identity: identity, segmentBytes: records.logSegmentBytes,
                        fsyncInterval: .milliseconds(records.logFsyncMilliseconds))
                } else {
                    carrier = try DeliveryLogCarrier(
                        directory: records.logDirectory, gatewayID: records.gatewayID, role: records.role, region: records.region,
                        boot: identity.boot, segmentBytes: records.logSegmentBytes, fsyncInterval: .milliseconds(records.logFsyncMilliseconds))
                }
            } catch {
                throw .folder(records.logDirectory, message: "delivery records: the log in \(records.logDirectory) cannot be opened: \(error)")
            }
            shared.recordRings = (0..<configuration.threads).map { _ in RecordRing(capacity: records.ringRecords) }
            shared.recordWriter = DeliveryRecordWriter(
                rings: shared.recordRings, carrier: carrier, batchInterval: .milliseconds(records.batchMilliseconds),
                flushInterval: .milliseconds(max(1, records.logFsyncMilliseconds)))
        }
    }

    /// Starts the loops and blocks until a termination signal has been handled and every loop has
    /// drained (or the shutdown grace period has passed). `onReady` runs once all loops accept.
    public func run(onReady: () -> Void = {}) {
        let termination = TerminationSignals.install()

        let perLoop = (configuration.maxConnections + configuration.threads - 1) / configuration.threads
        shared.policy?.start(wakeFDs: shared.wakeFDs, slotsPerLoop: perLoop)
        if shared.policy != nil || shared.tls != nil {
            Reloader(policy: shared.policy, certificates: shared.tls.map { CertificateReloader(current: $0) }).start()
        }
        if let catalog = configuration.services.titleRulesUpstream, let rules = shared.titleRules {
            CatalogRulesFeed(
                upstream: catalog, waitSeconds: configuration.services.titleRulesWaitSeconds, credential: configuration.services.catalogCredential,
                rules: rules
            ).start()
        }
        shared.readThrough?.start(wakeFDs: shared.wakeFDs)
        shared.purgeFeed?.start()
        shared.recordWriter?.start()
        let threads = (0..<configuration.threads).map { id in
            let start = LoopStart(server: self, id: id, capacity: perLoop)
            return OSThread { start.run() }
        }
        while started.load(ordering: .acquiring) < configuration.threads { usleep(1000) }
        if adminFD >= 0 { AdminServer(fd: adminFD, shared: shared, access: configuration.adminAccess).start() }
        shared.markReady()
        onReady()

        TerminationSignals.wait(termination)
        // Refuse newcomers at once (the kernel resets them) instead of leaving them in the
        // accept queue for the whole drain; then tell the loops.
        for fd in listenFDs + redirectFDs { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        shared.beginDrain()
        for thread in threads { thread.join() }
        // The loops are done producing: ship what their rings hold and flush the carrier.
        shared.recordWriter?.stop()
        shared.policy?.stop()
        for fd in listenFDs + redirectFDs { close(fd) }
    }

    /// Starts draining as if SIGTERM had arrived (for embedding and tests).
    public func shutdown() { kill(getpid(), SIGTERM) }

    fileprivate func loopStarted() { started.add(1, ordering: .releasing) }
}

/// What a loop thread needs to build its loop on its own thread (the ring's single issuer).
/// @unchecked Sendable: made before its thread starts and used only by that thread.
private final class LoopStart: @unchecked Sendable {
    let server: Server
    let id: Int
    let capacity: Int

    init(server: Server, id: Int, capacity: Int) {
        self.server = server
        self.id = id
        self.capacity = capacity
    }

    func run() {
        var loop: EventLoop
        do {
            loop = try EventLoop(
                id: id, configuration: server.configuration, shared: server.shared, listenFD: server.listenFDs[id],
                redirectListenFD: server.redirectFDs.isEmpty ? -1 : server.redirectFDs[id], rootFD: server.rootFD, capacity: capacity)
        } catch {
            GatewayLog.error("event loop \(id) could not start: \(error)")
            exit(1)
        }
        server.loopStarted()
        loop.run()
    }
}
