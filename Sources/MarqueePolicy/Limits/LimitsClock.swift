import Glibc

/// The clocks the Redis threads use: monotonic for timeouts and backoff, wall time for
/// revocation expiry (expiry instants are Unix seconds shared between machines).
enum LimitsClock {
    /// CLOCK_MONOTONIC in microseconds.
    static func monotonicMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }

    /// Unix time in seconds.
    static func wallSeconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }

    /// Sleeps for `micros` (returns early only on signals).
    static func sleep(micros: Int64) {
        guard micros > 0 else { return }
        var ts = timespec(tv_sec: Int(micros / 1_000_000), tv_nsec: Int(micros % 1_000_000) * 1000)
        nanosleep(&ts, nil)
    }
}
