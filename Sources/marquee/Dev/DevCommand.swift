import ArgumentParser
import AsyncHTTPClient
import Foundation
import Glibc
import Logging
import MarqueeAnalytics
import MarqueeAuth
import MarqueeConsole
import MarqueeGateway
import MarqueeGatewaySettings
import MarqueeOrigin
import MarqueePlayback
import MarqueePolicy
import MarqueeServiceKit
import MarqueeStore
import MarqueeTokens
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// `marquee dev`: the whole platform in one process on embedded defaults (SQLite files, the
/// object store as a folder, in-process rate limits and revocation), under a data folder that
/// survives restarts. The gateway is the only public listener; the services listen on free
/// loopback ports behind it, exactly as they would on separate machines.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run the whole platform on one machine: the gateway, auth, catalog, ingest, billing, playback and analytics, with a demo title.",
        discussion: """
            On first start it makes a demo viewer and publisher, generates a 60-second test clip, ingests it through
            the real upload and packaging path and publishes it. It prints each part's address, the credentials,
            and lines scripts can read:
              player: <URL of the player page>
              playlist: <signed HLS URL of the demo title>
            Ctrl-C stops everything; running it again resumes with the same data.
            """)

    @Option(help: "Data folder: SQLite files, media, keys, uploads (kept between runs).")
    var data = "var"

    @Option(help: "The gateway's listener, HOST:PORT (0.0.0.0:8080 to reach it from other machines).")
    var listen = "127.0.0.1:8080"

    @Option(help: "The gateway's admin listener for /metrics, /healthz, /readyz, HOST:PORT or 'off'.")
    var admin = "127.0.0.1:0"

    @Option(help: "Gateway event loops (default: one per core).")
    var threads: Int?

    @Option(name: .customLong("demo-seconds"), help: "Length of the generated demo clip.")
    var demoSeconds = 60

    @Flag(
        name: .customLong("tls"),
        help: "Serve the gateway over HTTPS with a certificate from a local CA made in <data>/tls (kept between runs; the banner says how to trust it).")
    var tls = false

    /// Billing's cut-off (docs/billing.md): a session may run ahead of real time by a burst of 20
    /// requests, then gets 4 a second; requests past that wait their turn (up to 10 s) instead of
    /// getting 429. With 2-second segments a client can take at most about 45 s of media past its
    /// last paid minute before the revocation reaches the gateway.
    static let sessionPacing = RateDescriptor(
        limit: RateLimit(name: "session_pace", limit: 4, periodMilliseconds: 1000, burst: 20, delayMilliseconds: 10_000),
        key: .session, route: .media)

    func run() async throws {
        guard demoSeconds >= 10 && demoSeconds <= 3600 else { throw ValidationError("--demo-seconds must be 10 to 3600") }
        let data = URL(fileURLWithPath: self.data).standardizedFileURL.path
        let secrets = try DevSecrets.load(data: data)
        var logger = Logger(label: "marquee.dev")
        logger.logLevel = .warning

        // The services, each on a free loopback port, in dependency order.
        let context = DevContext(
            data: data, logger: logger, tokenKey: secrets.tokenKey, keyEncryptionKeyFile: secrets.keyEncryptionKeyFile,
            ingestCredential: try secrets.ingestCredential, gatewayCredential: try secrets.gatewayCredential,
            playbackBillingCredential: try secrets.playbackBillingCredential, playbackCatalogCredential: try secrets.playbackCatalogCredential,
            analyticsBillingCredential: try secrets.analyticsBillingCredential)
        var running: [RunningRole] = []
        do {
            for role in DevRole.all {
                let started = try await RunningRole.start(role, context: context)
                context.setURL(started.url, of: role.name)
                running.append(started)
                if role.name == "auth" { try await secrets.ensureAccounts(context.authService!) }
            }
        } catch {
            await RunningRole.stop(running)
            printError("marquee dev: \(error)")
            throw ExitCode(1)
        }

        // The player page and the analytics dashboard, into the store the gateway serves.
        let store = try FileSystemStore(root: data + "/media")
        for file in try PlayerSite.files() {
            try await store.put(try ObjectKey("\(PlayerSite.prefix)/\(file.name)"), bytes: file.bytes, contentType: nil)
        }
        for file in try DashboardSite.files() {
            try await store.put(try ObjectKey("\(DashboardSite.prefix)/\(file.name)"), bytes: file.bytes, contentType: nil)
        }

        // The gateway in front of them all.
        let certificates: DevCertificates?
        do {
            certificates = tls ? try DevCertificates.ensure(data: data) : nil
        } catch {
            await RunningRole.stop(running)
            printError("marquee dev: \(error)")
            throw ExitCode(1)
        }
        let gateway: Server
        do {
            var flags = OriginConfiguration.Flags(
                root: data + "/media", listen: listen, admin: admin, threads: threads, tokenKeyDirectory: secrets.tokenKeyDirectory,
                requireToken: true, services: running.map { "\($0.name)=\($0.url)" })
            flags.gateway.catalogCredentialFile = secrets.gatewayCredentialFile
            flags.gateway.adminTokenFile = secrets.adminTokenFile
            flags.gateway.defaultDeliveryLogDirectory = data + "/deliveries"
            if let certificates {
                flags.gateway.tlsCertificateFiles = [certificates.chain]
                flags.gateway.tlsKeyFiles = [certificates.key]
            }
            var configuration = try await OriginConfiguration.load(flags)
            configuration.policy.publicPrefixes = ["/\(PlayerSite.prefix)/", "/\(DashboardSite.prefix)/"]
            configuration.policy.rateLimits.append(Self.sessionPacing)
            gateway = try Server(configuration: configuration)
        } catch {
            await RunningRole.stop(running)
            printError("marquee dev: the gateway cannot start: \(error)")
            throw ExitCode(1)
        }
        if let admin = gateway.adminAddress, let secret = TokenKeyFiles.readSecret(secrets.adminTokenFile) {
            context.revoker.connect(admin: admin.description, bearer: String(decoding: secret, as: UTF8.self))
        }
        let stopped = GatewayThread.start(gateway)
        await stopped.ready()

        let host = gateway.mediaAddress.description.hasPrefix("0.0.0.0:") || gateway.mediaAddress.description.hasPrefix("[::]:")
            ? "127.0.0.1:\(gateway.mediaAddress.port)" : gateway.mediaAddress.description
        let base = "\(certificates == nil ? "http" : "https")://\(host)"
        printLine("marquee dev: data in \(data)")
        printLine("gateway:   \(base)" + (gateway.adminAddress.map { " (admin http://\($0)/metrics)" } ?? ""))
        for line in certificates?.trustAdvice ?? [] { printLine(line) }
        for role in running {
            printLine("\((role.name + ":").padding(toLength: 10, withPad: " ", startingAt: 0)) \(role.url) (\(base)/api/\(role.name)/...; \(role.summary))")
        }
        printLine("viewer:    \(secrets.viewer.email) password \(secrets.viewer.password)")
        printLine("publisher: \(secrets.publisher.email) password \(secrets.publisher.password)")

        // The demo title, through the gateway's APIs; then a playback session for the viewer.
        // Over HTTPS the platform's own calls trust the local CA, as a browser told to would.
        let client = try certificates.map { try DevAPI.client(trusting: $0.authority) }
        let api = DevAPI(base: base, client: client ?? .shared)
        let failed = FailureFlag()
        let demo = Task {
            do {
                var title = DemoTitle(api: api, data: data, publisher: secrets.publisher)
                title.seconds = demoSeconds
                let titleID = try await title.ensure()
                let playlist = try await Self.startSession(api: api, titleID: titleID, viewer: secrets.viewer)
                try await Self.showRefusal(api: api, titleID: titleID, viewer: secrets.brokeViewer)
                printLine("")
                printLine("Open the player page and sign in as the viewer, or play the demo title's signed playlist in ffplay, VLC or Safari:")
                printLine("player: \(base)/\(PlayerSite.prefix)/")
                printLine("dashboard: \(base)/\(DashboardSite.prefix)/ (sign in as the publisher)")
                printLine("playlist: \(playlist)")
                printLine("Ctrl-C stops everything; run again to resume with the same data.")
                await Self.watchBalance(api: api, viewer: secrets.viewer)
            } catch is CancellationError {
            } catch {
                failed.set()
                printError("marquee dev: the demo title could not be made: \(error)")
                gateway.shutdown()
            }
        }

        await stopped.finished()
        demo.cancel()
        _ = await demo.result
        try? await client?.shutdown()
        printLine("marquee dev: stopping")
        await RunningRole.stop(running)
        printLine("marquee dev: stopped")
        if failed.isSet { throw ExitCode(1) }
    }

    /// Shows that a viewer without money cannot start a priced title: the 402 and its reason.
    static func showRefusal(api: DevAPI, titleID: String, viewer: (email: String, password: String)) async throws {
        let token = try await api.signIn(viewer.email, viewer.password)
        let reply = try await api.send(.POST, "/api/playback/sessions", token: token, json: ["title_id": titleID])
        let detail = reply.json()["detail"] as? String ?? ""
        printLine("no funds:  \(viewer.email) password \(viewer.password) (starting the demo title answers \(reply.status.code): \(detail))")
    }

    /// Prints the demo viewer's balance whenever it changes: it falls by the title's price for
    /// every minute watched, on the player page or from the printed playlist.
    static func watchBalance(api: DevAPI, viewer: (email: String, password: String)) async {
        var token: String?
        var last: Int?
        while !Task.isCancelled {
            do {
                if token == nil { token = try await api.signIn(viewer.email, viewer.password) }
                let reply = try await api.send(.GET, "/api/billing/wallet?currency=EUR", token: token)
                if reply.status == .unauthorized { token = nil }
                if reply.status == .ok, let balance = reply.json()["balance"] as? Int, balance != last {
                    let held = reply.json()["held"] as? Int ?? 0
                    printLine("balance:   \(viewer.email) has EUR \(Self.euros(balance)) (EUR \(Self.euros(held)) held for the minute being watched)")
                    last = balance
                }
            } catch {
                // Billing is stopping or briefly away: the next look will tell.
            }
            try? await Task.sleep(for: .seconds(2))
        }
    }

    static func euros(_ minorUnits: Int) -> String {
        String(format: "%d.%02d", minorUnits / 100, minorUnits % 100)
    }

    /// Signs in as the viewer, starts a playback session for the title and waits until the
    /// gateway serves its playlist (it learns the title's rules from the catalog's feed).
    static func startSession(api: DevAPI, titleID: String, viewer: (email: String, password: String)) async throws -> String {
        let token = try await api.signIn(viewer.email, viewer.password)
        // The demo viewer's starting balance: 10.00 EUR, once (self-service deposits are on here).
        let wallet = try await api.call(.GET, "/api/billing/wallet?currency=EUR", token: token)
        let statement = try await api.call(.GET, "/api/billing/statement?currency=EUR&limit=1", token: token)
        if (wallet.json()["balance"] as? Int ?? 0) == 0, (statement.json()["items"] as? [Any])?.isEmpty ?? true {
            try await api.call(
                .POST, "/api/billing/deposits", token: token, json: ["amount": 1000, "currency": "EUR"],
                headers: [("Idempotency-Key", "dev-starting-balance")], expect: .created)
        }
        let session = try await api.call(.POST, "/api/playback/sessions", token: token, json: ["title_id": titleID], expect: .created)
        guard let playlist = session.string("hls_url") else { throw DemoTitle.Failed(description: "the playback session has no hls_url") }
        let deadline = Date().addingTimeInterval(10)
        while true {
            let reply = try await api.send(.GET, playlist)
            if reply.status == .ok { return playlist }
            guard Date() < deadline else {
                throw DemoTitle.Failed(description: "the gateway answers \(reply.status.code) for the demo playlist")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// A role's service group, running in a task, and the URL it listens on.
struct RunningRole {
    let name: String
    let url: String
    let summary: String
    let group: ServiceGroup
    let task: Task<Void, any Error>

    struct StartFailed: Error, CustomStringConvertible {
        let description: String
    }

    static func start(_ role: DevRole, context: DevContext) async throws -> RunningRole {
        let parts = try await role.open(context)
        let (ports, bound) = AsyncStream<Int>.makeStream()
        let application = try parts.application { channel in
            bound.yield(channel.localAddress?.port ?? 0)
            bound.finish()
        }
        let services = [ServiceGroupConfiguration.ServiceConfiguration(service: application)]
            + parts.background.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [], logger: context.logger))
        let task = Task {
            defer { bound.finish() }
            try await group.run()
        }
        var port: Int?
        for await value in ports {
            port = value
            break
        }
        guard let port, port > 0 else {
            do { try await task.value } catch { throw StartFailed(description: "\(role.name) did not start: \(error)") }
            throw StartFailed(description: "\(role.name) did not start listening")
        }
        return RunningRole(name: role.name, url: "http://127.0.0.1:\(port)", summary: parts.summary, group: group, task: task)
    }

    /// Stops the roles last-started first, each draining before the next.
    static func stop(_ roles: [RunningRole]) async {
        for role in roles.reversed() {
            await role.group.triggerGracefulShutdown()
            _ = await role.task.result
        }
    }
}

/// The gateway's blocking `run` on a thread of its own, bridged to async waits.
final class GatewayThread: @unchecked Sendable {
    private let readyStream: AsyncStream<Void>
    private let finishedStream: AsyncStream<Void>

    private init(readyStream: AsyncStream<Void>, finishedStream: AsyncStream<Void>) {
        self.readyStream = readyStream
        self.finishedStream = finishedStream
    }

    /// Starts the gateway; it runs until SIGINT or SIGTERM, then drains.
    static func start(_ server: Server) -> GatewayThread {
        let (readyStream, ready) = AsyncStream<Void>.makeStream()
        let (finishedStream, finished) = AsyncStream<Void>.makeStream()
        nonisolated(unsafe) let server = server
        Thread.detachNewThread {
            server.run { ready.finish() }
            ready.finish()
            finished.finish()
        }
        return GatewayThread(readyStream: readyStream, finishedStream: finishedStream)
    }

    func ready() async { for await _ in readyStream {} }
    func finished() async { for await _ in finishedStream {} }
}

final class FailureFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
