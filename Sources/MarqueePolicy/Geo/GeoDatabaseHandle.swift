import CLinux
import Glibc

/// The current database for one file (plus, optionally, an Anonymous IP database), swapped in
/// place when the file is replaced, while event loops keep looking up without locks.
///
/// Each database sits in a 64-bit word as an `Unmanaged` pointer: loops read it with an acquire
/// load, the reloading thread publishes a new one with a release store. Readers never take a
/// reference count the writer waits for; instead the writer keeps every replaced database alive
/// for `retirementDelay` (30 s by default) before releasing it, far longer than any loop holds a
/// database it read (microseconds, within one request). Old databases are released by later
/// `reloadIfChanged` calls, which the gateway makes once a second.
public final class GeoDatabaseHandle: @unchecked Sendable {
    // @unchecked: `slots` is accessed only through atomics; `loaded`, `anonymousLoaded` and
    // `retired` only by the thread that holds the reload flag (slot 2).

    /// The main database's file.
    public let path: String
    /// The Anonymous IP database's file, if any.
    public let anonymousPath: String?
    /// How long a replaced database stays open after the swap.
    public let retirementDelay: Duration

    /// [0]: main database, [1]: anonymous database or 0, [2]: reload in progress.
    private let slots: UnsafeMutablePointer<UInt64>
    private var loaded: FileIdentity?
    private var anonymousLoaded: FileIdentity?
    private var retired: [(database: Unmanaged<GeoDatabase>, at: Duration)] = []

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
        let identity = try FileIdentity.of(path: path)
        let database = try GeoDatabase(path: path)
        var anonymousIdentity: FileIdentity?
        var anonymous: GeoDatabase?
        if let anonymousPath {
            anonymousIdentity = try FileIdentity.of(path: anonymousPath)
            anonymous = try GeoDatabase(path: anonymousPath)
        }
        self.path = path
        self.anonymousPath = anonymousPath
        self.retirementDelay = retirementDelay
        loaded = identity
        anonymousLoaded = anonymousIdentity
        slots = .allocate(capacity: 3)
        slots.initialize(repeating: 0, count: 3)
        mq_store_release(slots, Self.word(Unmanaged.passRetained(database)))
        if let anonymous { mq_store_release(slots + 1, Self.word(Unmanaged.passRetained(anonymous))) }
    }

    deinit {
        Self.unmanaged(slots[0])?.release()
        Self.unmanaged(slots[1])?.release()
        for entry in retired { entry.database.release() }
        slots.deallocate()
    }

    /// The current main database. Lock-free: one acquire load and a retain.
    public var current: GeoDatabase {
        Self.unmanaged(mq_load_acquire(slots))!.takeUnretainedValue()
    }

    /// The current Anonymous IP database, or nil when the handle has none.
    public var anonymous: GeoDatabase? {
        Self.unmanaged(mq_load_acquire(slots + 1))?.takeUnretainedValue()
    }

    /// Calls `body` with the current databases without touching their reference counts; the
    /// retirement delay is what keeps them alive. `body` must not keep them.
    public func withDatabases<Result>(_ body: (GeoDatabase, GeoDatabase?) -> Result) -> Result {
        let main = Self.unmanaged(mq_load_acquire(slots))!
        let anonymous = Self.unmanaged(mq_load_acquire(slots + 1))
        return main._withUnsafeGuaranteedRef { main in
            guard let anonymous else { return body(main, nil) }
            return anonymous._withUnsafeGuaranteedRef { body(main, $0) }
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
        guard mq_compare_exchange(slots + 2, &idle, 1) != 0 else {
            return GeoReloadReport(
                database: .unchanged, anonymousDatabase: anonymousPath == nil ? nil : .unchanged,
                databasePath: path, anonymousDatabasePath: anonymousPath)
        }
        defer { mq_store_release(slots + 2, 0) }

        let now = Self.monotonicNow()
        var report = GeoReloadReport(
            database: .unchanged, anonymousDatabase: nil, databasePath: path, anonymousDatabasePath: anonymousPath)
        report.database = reload(path: path, slot: slots, identity: &loaded, force: force, now: now)
        if let anonymousPath {
            report.anonymousDatabase = reload(path: anonymousPath, slot: slots + 1, identity: &anonymousLoaded, force: force, now: now)
        }
        releaseRetired(now: now)
        return report
    }

    /// How many replaced databases are still open (for tests and the admin page). Only
    /// meaningful on the reloading thread.
    var retiredCount: Int { retired.count }

    private func reload(
        path: String, slot: UnsafeMutablePointer<UInt64>, identity: inout FileIdentity?, force: Bool, now: Duration
    ) -> GeoReloadReport.Outcome {
        do throws(GeoError) {
            // Stat before opening: if the file is replaced again in between, the next call sees
            // a newer identity than the one recorded and reloads once more, never too few times.
            let fresh = try FileIdentity.of(path: path)
            guard force || fresh != identity else { return .unchanged }
            let database = try GeoDatabase(path: path)
            let old = Self.unmanaged(mq_load_acquire(slot))
            mq_store_release(slot, Self.word(Unmanaged.passRetained(database)))
            if let old { retired.append((old, now)) }
            identity = fresh
            return .reloaded
        } catch {
            return .failed(error)
        }
    }

    private func releaseRetired(now: Duration) {
        retired.removeAll { entry in
            guard now - entry.at >= retirementDelay else { return false }
            entry.database.release()
            return true
        }
    }

    private static func monotonicNow() -> Duration {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
    }

    @inline(__always) private static func word(_ database: Unmanaged<GeoDatabase>) -> UInt64 {
        UInt64(UInt(bitPattern: database.toOpaque()))
    }

    @inline(__always) private static func unmanaged(_ word: UInt64) -> Unmanaged<GeoDatabase>? {
        UnsafeRawPointer(bitPattern: UInt(word)).map { Unmanaged.fromOpaque($0) }
    }
}
