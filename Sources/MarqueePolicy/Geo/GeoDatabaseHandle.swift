import CLinux
import Glibc

/// The current database for one file (plus, optionally, an Anonymous IP database), swapped in
/// place when the file is replaced, while event loops keep looking up without locks
/// (`SwappableReference`: a replaced database stays open for `retirementDelay`, released by later
/// `reloadIfChanged` calls, which the gateway makes once a second).
public final class GeoDatabaseHandle: @unchecked Sendable {
    // @unchecked: `reloading` is accessed only through atomics; `loaded` and `anonymousLoaded`
    // only by the thread that holds it.

    /// The main database's file.
    public let path: String
    /// The Anonymous IP database's file, if any.
    public let anonymousPath: String?
    /// How long a replaced database stays open after the swap.
    public let retirementDelay: Duration

    private let main: SwappableReference<GeoDatabase>
    private let anonymousReference: SwappableReference<GeoDatabase>?
    /// 1 while a reload runs.
    private let reloading: UnsafeMutablePointer<UInt64>
    private var loaded: FileIdentity?
    private var anonymousLoaded: FileIdentity?

    /// Opens `path` (and `anonymousPath`).
    ///
    /// - Parameters:
    ///   - path: A City or Country MaxMind DB.
    ///   - anonymousPath: A GeoIP2 Anonymous IP database, or nil.
    ///   - retirementDelay: How long a replaced database stays open. Default 30 seconds; tests
    ///     may shorten it, production should not.
    /// - Throws: `GeoError` when either file cannot be opened; the gateway refuses to start
    ///   rather than serve without the rules it was configured with.
    public init(path: String, anonymousPath: String? = nil, retirementDelay: Duration = .seconds(30)) throws(GeoError) {
        loaded = try Self.identity(of: path)
        main = SwappableReference(try GeoDatabase(path: path), retirementDelay: retirementDelay)
        if let anonymousPath {
            anonymousLoaded = try Self.identity(of: anonymousPath)
            anonymousReference = SwappableReference(try GeoDatabase(path: anonymousPath), retirementDelay: retirementDelay)
        } else {
            anonymousReference = nil
        }
        self.path = path
        self.anonymousPath = anonymousPath
        self.retirementDelay = retirementDelay
        reloading = .allocate(capacity: 1)
        reloading.initialize(to: 0)
    }

    deinit { reloading.deallocate() }

    /// The current main database.
    public var current: GeoDatabase { main.current }

    /// The current Anonymous IP database, or nil when the handle has none.
    public var anonymous: GeoDatabase? { anonymousReference?.current }

    /// Calls `body` with the current databases without touching their reference counts; the
    /// retirement delay is what keeps them alive. `body` must not keep them.
    public func withDatabases<Result>(_ body: (GeoDatabase, GeoDatabase?) -> Result) -> Result {
        main.withCurrent { database in
            guard let anonymousReference else { return body(database, nil) }
            return anonymousReference.withCurrent { body(database, $0) }
        }
    }

    /// Reopens each file whose identity (device, inode, size, modification time) differs from
    /// the loaded one, and releases databases retired longer than `retirementDelay` ago.
    ///
    /// A file that cannot be read or opened leaves its current database in place and is reported
    /// as failed; it is tried again on the next call, so a file still being written recovers by
    /// itself. Meant for one background thread (once a second and on SIGHUP); a call made while
    /// another is running returns `.unchanged` at once instead of waiting.
    ///
    /// - Parameter force: Reopen the files even when their identity is unchanged (SIGHUP).
    public func reloadIfChanged(force: Bool = false) -> GeoReloadReport {
        var idle: UInt64 = 0
        guard mq_compare_exchange(reloading, &idle, 1) != 0 else {
            return GeoReloadReport(
                database: .unchanged, anonymousDatabase: anonymousPath == nil ? nil : .unchanged,
                databasePath: path, anonymousDatabasePath: anonymousPath)
        }
        defer { mq_store_release(reloading, 0) }

        var report = GeoReloadReport(
            database: .unchanged, anonymousDatabase: nil, databasePath: path, anonymousDatabasePath: anonymousPath)
        report.database = reload(path: path, into: main, identity: &loaded, force: force)
        if let anonymousPath, let anonymousReference {
            report.anonymousDatabase = reload(path: anonymousPath, into: anonymousReference, identity: &anonymousLoaded, force: force)
        }
        main.releaseRetired()
        anonymousReference?.releaseRetired()
        return report
    }

    /// How many replaced databases are still open (for tests and the admin page). Only
    /// meaningful on the reloading thread.
    var retiredCount: Int { main.retiredCount + (anonymousReference?.retiredCount ?? 0) }

    private func reload(
        path: String, into reference: SwappableReference<GeoDatabase>, identity: inout FileIdentity?, force: Bool
    ) -> GeoReloadReport.Outcome {
        do throws(GeoError) {
            // Stat before opening: if the file is replaced again in between, the next call sees
            // a newer identity than the one recorded and reloads once more, never too few times.
            let fresh = try Self.identity(of: path)
            guard force || fresh != identity else { return .unchanged }
            reference.replace(with: try GeoDatabase(path: path))
            identity = fresh
            return .reloaded
        } catch {
            return .failed(error)
        }
    }

    private static func identity(of path: String) throws(GeoError) -> FileIdentity {
        guard let identity = FileIdentity(path: path) else {
            throw .statFailed(path: path, reason: String(cString: strerror(errno)))
        }
        return identity
    }
}
