import MarqueeBus
import MarqueeHTTP

/// Misses of the origin's read-through cache: the request, already admitted by the policy, parks
/// its connection slot while a fetch thread brings the object into the cache, then is parsed again
/// and served as a hit (or answered with the fetch's error). Hits never come here.
extension EventLoop {
    /// The file is not in the cache. `after` is the outcome of the fetch this request already
    /// waited for (then it does not wait again).
    mutating func fetchMissing(_ slot: Int32, _ relativePath: UnsafeRawBufferPointer, after fetched: FetchOutcome?, origin: UnsafeRawBufferPointer) {
        media.cache = .miss
        if let fetched {
            respondToFailedFetch(slot, fetched, origin: origin)
            return
        }
        let waiter = FetchWaiter(loop: UInt16(id), slot: slot, generation: connections[Int(slot)].generation)
        switch readThrough!.request(relativePath, waiter: waiter) {
        case .queued:
            metrics.add(.readThroughMisses)
        case .joined:
            metrics.add(.readThroughMisses)
            metrics.add(.readThroughCoalesced)
        case .busy:
            respondToFailedFetch(slot, .busy, origin: origin)
            return
        case .notFound:
            respondToFailedFetch(slot, .notFound, origin: origin)
            return
        }
        stageRecord(slot)
        // Parked like a request waiting for the shared rate limiter: `processInput` keeps the head.
        connections[Int(slot)].phase = .awaitingPolicy
        connections[Int(slot)].awaitingFetch = true
        startTimer(slot, .send)
    }

    /// A fetch this slot waited for has ended: parse the kept head again and serve it.
    mutating func resumeFetched(slot: Int32, generation: UInt16, outcome: FetchOutcome) {
        let s = Int(slot)
        guard slot >= 0, s < capacity, connections[s].generation == generation, connections[s].phase == .awaitingPolicy,
            connections[s].awaitingFetch
        else { return }
        stopTimer(slot)
        connections[s].awaitingFetch = false
        connections[s].fetchOutcome = outcome
        connections[s].phase = .awaitingHead
        startTimer(slot, .header)
        processInput(slot, inputBytes(slot), fromInput: true)
    }

    /// Short answers that say why (DESIGN.md status codes).
    mutating func respondToFailedFetch(_ slot: Int32, _ outcome: FetchOutcome, origin: UnsafeRawBufferPointer) {
        let error: HTTPError
        switch outcome {
        case .notFound: error = HTTPError(.notFound, "no such object in the store")
        case .failed: error = HTTPError(.badGateway, "the object store failed to deliver the object")
        case .timedOut: error = HTTPError(.gatewayTimeout, "the object store did not answer in time")
        case .busy: error = HTTPError(.serviceUnavailable, "too many objects are being fetched; retry shortly")
        case .stored: error = HTTPError(.serviceUnavailable, "the object left the cache before it was served; retry")
        }
        respondWithError(slot, error, close: false, origin: origin)
    }
}
