import MarqueeBus
import MarqueeHTTP

/// Misses of the origin's read-through cache: the request, already admitted by the policy, parks
/// its connection slot while a fetch thread (or, on an edge, the loop's own fill) brings the object into the cache, then is parsed again
/// and served as a hit (or answered with the fetch's error). Hits never come here.
extension EventLoop {
    /// The file is not in the cache. `after` is the outcome of the fetch this request already
    /// waited for (then it does not wait again).
    mutating func fetchMissing(
        _ slot: Int32, _ head: RequestHead, _ buffer: UnsafeRawBufferPointer, _ relativePath: UnsafeRawBufferPointer,
        after fetched: FetchOutcome?, origin: UnsafeRawBufferPointer
    ) {
        media.cache = .miss
        if let fetched {
            // The body started arriving while this request waited: it streams from the fill.
            if fetched == .streaming, let fill = fills[Int(slot)] {
                fills[Int(slot)] = nil
                serveFill(slot, fill, head, buffer, origin: origin)
            } else {
                respondToFailedFetch(slot, fetched, origin: origin)
            }
            return
        }
        let waiter = FetchWaiter(loop: UInt16(id), slot: slot, generation: connections[Int(slot)].generation)
        switch readThrough!.request(relativePath, waiter: waiter) {
        case .waits(let coalesced):
            metrics.add(.readThroughMisses)
            if coalesced { metrics.add(.readThroughCoalesced) }
        case .fetches(let fetch):
            metrics.add(.readThroughMisses)
            park(slot)
            startFill(fetch)
            return
        case .streaming(let fill):
            metrics.add(.readThroughMisses)
            metrics.add(.readThroughCoalesced)
            serveFill(slot, fill, head, buffer, origin: origin)
            return
        case .busy:
            respondToFailedFetch(slot, .busy, origin: origin)
            return
        case .notFound:
            respondToFailedFetch(slot, .notFound, origin: origin)
            return
        }
        park(slot)
    }

    /// Parked like a request waiting for the shared rate limiter: `processInput` keeps the head,
    /// and `resumeParked` parses it again once the fetch ended.
    private mutating func park(_ slot: Int32) {
        stageRecord(slot)
        connections[Int(slot)].state.park()
        connections[Int(slot)].parking.park(.fetch)
        startTimer(slot, .send)
    }

    /// Short answers that say why (DESIGN.md status codes), naming the cache's source.
    mutating func respondToFailedFetch(_ slot: Int32, _ outcome: FetchOutcome, origin: UnsafeRawBufferPointer) {
        let upstream = readThrough?.settings.sourceIsUpstream == true
        let error: HTTPError
        switch outcome {
        case .notFound: error = HTTPError(.notFound, upstream ? "no such object upstream" : "no such object in the store")
        case .failed:
            error = HTTPError(.badGateway, upstream ? "the upstreams failed to deliver the object" : "the object store failed to deliver the object")
        case .timedOut:
            error = HTTPError(.gatewayTimeout, upstream ? "the upstreams did not answer in time" : "the object store did not answer in time")
        case .busy: error = HTTPError(.serviceUnavailable, "too many objects are being fetched; retry shortly")
        case .stored, .streaming: error = HTTPError(.serviceUnavailable, "the object left the cache before it was served; retry")
        }
        respondWithError(slot, error, close: false, origin: origin)
    }
}
