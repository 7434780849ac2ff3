/// The GCRA constants of one limit and the pure step function both limiters share; kept free of
/// tables and clocks so the arithmetic is tested on its own with hand-worked numbers.
struct GCRAParameters: Sendable, Hashable {
    /// T, microseconds.
    let interval: UInt64
    /// τ = T × burst, microseconds.
    let tolerance: UInt64
    let burst: Int
    /// D, microseconds: how long a request past the burst may wait for its turn instead of being
    /// refused (0: refused at once).
    var delay: UInt64 = 0

    enum Outcome: Equatable {
        /// Passes: the key's TAT becomes `newTAT`; `remaining` more requests would pass right now;
        /// the key is back to a full burst after `resetMicros`. With a delay, the request may be
        /// served only after `waitMicros` (0 when it conforms now).
        case allow(newTAT: UInt64, remaining: Int, resetMicros: UInt64, waitMicros: UInt64)
        /// Refused: the same request would pass after `retryAfterMicros`.
        case refuse(retryAfterMicros: UInt64)
    }

    /// One request at `now` against a key whose TAT is `tat` (any value ≤ now means idle).
    ///
    /// Without a delay a request passes when the new TAT is at most `now + τ`. With one it is
    /// scheduled like nginx's `limit_req` with a burst queue: it passes when the new TAT is at most
    /// `now + τ + D`, takes its place in the key's TAT at once (so later requests queue behind it),
    /// and waits until `newTAT - τ`, when it would have conformed.
    @inline(__always)
    func evaluate(tat: UInt64, now: UInt64) -> Outcome {
        let newTAT = max(tat, now) &+ interval
        let ahead = newTAT &- now
        if ahead > tolerance &+ delay {
            return .refuse(retryAfterMicros: ahead &- tolerance &- delay)
        }
        if ahead > tolerance {
            return .allow(newTAT: newTAT, remaining: 0, resetMicros: ahead, waitMicros: ahead &- tolerance)
        }
        return .allow(newTAT: newTAT, remaining: Int((tolerance &- ahead) / interval), resetMicros: ahead, waitMicros: 0)
    }
}
