import CLinux
import Glibc

/// An object every loop reads and one reloader thread replaces (a key ring, a geo database):
/// readers pay one acquire load and no reference counting; a replaced object stays alive for a
/// grace period, far longer than any loop holds it (one request), before it is released.
final class SwappableReference<Object: AnyObject>: @unchecked Sendable {
    private let word: UnsafeMutablePointer<UInt64>
    /// Replaced objects and when they may be released; touched only by the writer.
    private var retired: [(object: Object, releaseAt: Int64)] = []
    static var graceSeconds: Int64 { 30 }

    init(_ object: Object) {
        word = .allocate(capacity: 1)
        word.initialize(to: UInt64(UInt(bitPattern: Unmanaged.passRetained(object).toOpaque())))
    }

    deinit {
        Unmanaged<Object>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(mq_load_acquire(word)))!).release()
        word.deallocate()
    }

    /// Runs `body` with the current object, without retaining it.
    @inline(__always) func withCurrent<R>(_ body: (Object) -> R) -> R {
        let bits = mq_load_acquire(word)
        return Unmanaged<Object>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(bits))!)._withUnsafeGuaranteedRef(body)
    }

    /// A retained reference to the current object (reloader and admin use; not the request path).
    var current: Object { withCurrent { $0 } }

    /// Publishes `object` (writer only).
    func replace(with object: Object) {
        let now = Self.monotonicSeconds()
        let old = mq_load_acquire(word)
        mq_store_release(word, UInt64(UInt(bitPattern: Unmanaged.passRetained(object).toOpaque())))
        let previous = Unmanaged<Object>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(old))!)
        retired.append((previous.takeUnretainedValue(), now + Self.graceSeconds))
        previous.release()
        retired.removeAll { $0.releaseAt <= now }
    }

    static func monotonicSeconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec)
    }
}
