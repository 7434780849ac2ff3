import Logging
import ServiceLifecycle

/// Periodic work a service does besides answering requests (key rotation, cleanup), run by the
/// application's service group: once at start, then every `interval`, until shutdown. A failed
/// round is logged and retried at the next interval.
public struct PeriodicWork: Service {
    let name: String
    let interval: Duration
    let work: @Sendable () async throws -> Void
    let logger: Logger

    public init(_ name: String, every interval: Duration, logger: Logger, _ work: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.interval = interval
        self.work = work
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await work()
                } catch {
                    logger.error("\(name) failed; retrying in \(interval)", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}

/// Closes the database after the server has stopped taking requests.
public struct DatabaseCloser: Service {
    let database: any Database

    public init(_ database: any Database) { self.database = database }

    public func run() async throws {
        try? await gracefulShutdown()
        await database.close()
    }
}
