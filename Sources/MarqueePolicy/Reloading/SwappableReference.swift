import CLinux
import Glibc

/// An object every event loop reads and one reloading thread replaces (a key ring, a geo
/// database), with no lock and no reference counting on the reading side.
///
/// The object sits in a 64-bit word as an `Unmanaged` pointer: readers take one acquire load, the
/// writer publishes with a release store. Instead of readers holding counts the writer would wait
/// for, the writer keeps each replaced object alive for `retirementDelay` (30 s by default), far
/// longer than a loop holds what it read (microseconds, within one request); later `replace` or
/// `releaseRetired` calls release it.
public final class SwappableReference<Object: AnyObject>: @unchecked Sendable {
    // @unchecked: `word` is only accessed through atomics; `retired` only by the single writer.
    public let retirementDelay: Duration
    private let word: UnsafeMutablePointer<UInt64>
    private var retired: [(object: Unmanaged<Object>, at: Duration)] = []

    public init(_ object: Object, retirementDelay: Duration = .seconds(30)) {
        self.retirementDelay = retirementDelay
        word = .allocate(capacity: 1)
        word.initialize(to: UInt64(UInt(bitPattern: Unmanaged.passRetained(object).toOpaque())))
    }

    deinit {
        Self.unmanaged(mq_load_acquire(word)).release()
        for entry in retired { entry.object.release() }
        word.deallocate()
    }

    /// Calls `body` with the current object without touching its reference count; `body` must
    /// not keep it.
    @inline(__always) public func withCurrent<Result>(_ body: (Object) -> Result) -> Result {
        Self.unmanaged(mq_load_acquire(word))._withUnsafeGuaranteedRef(body)
    }

    /// The current object, retained (for code off the request path).
    public var current: Object { Self.unmanaged(mq_load_acquire(word)).takeUnretainedValue() }

    /// Publishes `object`; the one it replaces is retired. Writer only.
    public func replace(with object: Object) {
        let old = Self.unmanaged(mq_load_acquire(word))
        mq_store_release(word, UInt64(UInt(bitPattern: Unmanaged.passRetained(object).toOpaque())))
        let now = Self.monotonicNow()
        retired.append((old, now))
        releaseRetired(now: now)
    }

    /// Releases objects retired longer than `retirementDelay` ago. Writer only.
    public func releaseRetired() { releaseRetired(now: Self.monotonicNow()) }

    /// Replaced objects still alive. Writer only (tests, diagnostics).
    public var retiredCount: Int { retired.count }

    private func releaseRetired(now: Duration) {
        retired.removeAll { entry in
            guard now - entry.at >= retirementDelay else { return false }
            entry.object.release()
            return true
        }
    }

    private static func monotonicNow() -> Duration {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
    }

    @inline(__always) private static func unmanaged(_ word: UInt64) -> Unmanaged<Object> {
        Unmanaged.fromOpaque(UnsafeRawPointer(bitPattern: UInt(word))!)
    }
}
