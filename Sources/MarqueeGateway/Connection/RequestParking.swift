import MarqueePolicy

/// Why a request waits instead of being answered, and what it resumes with: a value-type state
/// machine per connection slot. A request parks for the shared (Redis) rate limiter's verdict, for
/// its turn under a rate limit with a delay, or for the read-through cache's fetch. Its head stays
/// in the connection's input meanwhile (a proxied request already read whole stays in its
/// exchange instead). The answer that arrives decides how the request goes on, and what it
/// carries into its next parse is used once. Tested alone in `RequestParkingTests`.
struct RequestParking: Equatable {
    enum Awaiting: Equatable {
        /// The shared rate limiter's verdict.
        case verdict
        /// Its turn under a rate limit with a delay (it was charged already).
        case turn
        /// The read-through cache's fetch of the file it asked for.
        case fetch
    }

    /// What can arrive for a parked slot.
    enum Answer: Equatable {
        case verdict(RateVerdict)
        /// Redis could not answer: the fail mode decides on the next parse.
        case redisUnavailable
        case turn(limitIndex: UInt8)
        case fetched(FetchOutcome)
    }

    enum Action: Equatable {
        /// Parse the kept head again (the answer waits in `resumption`).
        case reparseHead
        /// Go on with the kept proxied exchange (the answer waits in `resumption`).
        case resumeExchange
        /// Not what this slot waits for (a late or stray answer): leave it as it is.
        case ignore
    }

    /// What the rate limits decide with on the next parse, instead of asking again.
    enum RateResumption: Equatable {
        case verdict(RateVerdict)
        case redisUnavailable
    }

    private(set) var awaiting: Awaiting?
    /// The parked request is a proxied exchange whose head and body were already read.
    private(set) var isExchange = false
    private var rate: RateResumption?
    private var fetched: FetchOutcome?

    var isParked: Bool { awaiting != nil }
    /// Whether the connection's input must keep the request's head to parse it again.
    var keepsHead: Bool { awaiting != nil && !isExchange }

    mutating func park(_ reason: Awaiting) {
        awaiting = reason
        isExchange = false
    }

    /// The request that just parked is a proxied exchange (`admitExchange`).
    mutating func parkedIsExchange() {
        isExchange = awaiting != nil
    }

    mutating func deliver(_ answer: Answer) -> Action {
        guard let awaiting else { return .ignore }
        switch (awaiting, answer) {
        case (.verdict, .verdict(let verdict)): rate = .verdict(verdict)
        case (.verdict, .redisUnavailable): rate = .redisUnavailable
        // Its turn came: it was charged when it was queued, so it goes on as admitted.
        case (.turn, .turn(let index)): rate = .verdict(.allowed(limitIndex: index, remaining: 0, resetMicros: 0))
        case (.fetch, .fetched(let outcome)): fetched = outcome
        default: return .ignore
        }
        let exchange = isExchange
        self.awaiting = nil
        isExchange = false
        return exchange ? .resumeExchange : .reparseHead
    }

    /// The verdict the rate limits use on this parse, once.
    mutating func takeRateResumption() -> RateResumption? {
        defer { rate = nil }
        return rate
    }

    /// How the fetch this request waited for ended, once (the policy admitted it before it parked).
    mutating func takeFetchOutcome() -> FetchOutcome? {
        defer { fetched = nil }
        return fetched
    }
}
