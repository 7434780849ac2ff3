/// What a limiter decided for one request: a plain enum of integers, so returning it never
/// allocates and it crosses threads (Redis answers) by value.
public enum RateVerdict: Sendable, Hashable {
    /// Every key passed. `limitIndex` is the tightest key's limit (fewest remaining), whose
    /// `remaining` and `resetMicros` (a duration from now until that key is back to a full burst)
    /// feed the `RateLimit` header.
    case allowed(limitIndex: UInt8, remaining: Int, resetMicros: UInt64)
    /// At least one key refused and nothing was charged. `limitIndex` is the refusing limit that
    /// frees up last; the request would pass after `retryAfterMicros` (`Retry-After`, rounded up).
    case limited(limitIndex: UInt8, retryAfterMicros: UInt64)
    /// Every key passed and was charged, but a limit with a `delay` queued the request: it may be
    /// served only after `waitMicros`. `limitIndex` is the limit that makes it wait longest.
    case delayed(limitIndex: UInt8, waitMicros: UInt64)

    /// True for `.allowed` and `.delayed` (both were charged and will be served).
    public var isAllowed: Bool {
        switch self {
        case .allowed, .delayed: return true
        case .limited: return false
        }
    }
}
