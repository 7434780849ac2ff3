/// The GCRA constants of one limit and the pure step function both limiters share; kept free of
/// tables and clocks so the arithmetic is tested on its own with hand-worked numbers.
struct GCRAParameters: Sendable, Hashable {
    /// T, microseconds.
    let interval: UInt64
    /// τ = T × burst, microseconds.
    let tolerance: UInt64
    let burst: Int

    enum Outcome: Equatable {
        /// Passes: the key's TAT becomes `newTAT`; `remaining` more requests would pass right now;
        /// the key is back to a full burst after `resetMicros`.
        case allow(newTAT: UInt64, remaining: Int, resetMicros: UInt64)
        /// Refused: the same request would pass after `retryAfterMicros`.
        case refuse(retryAfterMicros: UInt64)
    }

    /// One request at `now` against a key whose TAT is `tat` (any value ≤ now means idle).
    @inline(__always)
    func evaluate(tat: UInt64, now: UInt64) -> Outcome {
        let newTAT = max(tat, now) &+ interval
        let ahead = newTAT &- now
        if ahead > tolerance {
            return .refuse(retryAfterMicros: ahead &- tolerance)
        }
        return .allow(newTAT: newTAT, remaining: Int((tolerance &- ahead) / interval), resetMicros: ahead)
    }
}
