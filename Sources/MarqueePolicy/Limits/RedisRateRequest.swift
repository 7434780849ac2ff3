/// One request for the shared (Redis) limiter. Plain integers only, so queueing it copies a few
/// words and never allocates; the routing fields are opaque to the limiter and come back in the
/// answer so the submitting loop can find the waiting connection (and notice it was reused).
public struct RedisRateRequest: Sendable, Hashable {
    /// The submitting event loop.
    public var loop: UInt16
    /// The connection slot in that loop.
    public var slot: Int32
    /// The slot's generation when submitted; a mismatch on answer means the connection is gone.
    public var generation: UInt16
    /// The keys to charge, all or nothing.
    public var keys: RateKeys

    public init(loop: UInt16, slot: Int32, generation: UInt16, keys: RateKeys) {
        self.loop = loop
        self.slot = slot
        self.generation = generation
        self.keys = keys
    }
}

/// The one answer every submitted ``RedisRateRequest`` receives.
public struct RedisRateAnswer: Sendable, Hashable {
    /// What the shared limiter said.
    public enum Result: Sendable, Hashable {
        /// Redis evaluated the keys.
        case verdict(RateVerdict)
        /// Redis is down, timed out, or answered with an error; the gateway falls back to its
        /// local limiter (or its configured fail-open/closed rule).
        case unavailable
    }

    public var loop: UInt16
    public var slot: Int32
    public var generation: UInt16
    public var result: Result

    public init(loop: UInt16, slot: Int32, generation: UInt16, result: Result) {
        self.loop = loop
        self.slot = slot
        self.generation = generation
        self.result = result
    }

    init(_ request: RedisRateRequest, _ result: Result) {
        self.init(loop: request.loop, slot: request.slot, generation: request.generation, result: result)
    }
}
