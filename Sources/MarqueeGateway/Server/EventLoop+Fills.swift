import MarqueeBus
import MarqueeHTTP

/// Misses served while the object's body arrives (`ObjectFill`): the head goes out as soon as
/// the upstream's head is in, then the body is spliced from the fill's temporary file as fast as
/// it is written, the same splice rounds as a hit's. A response that has sent everything its fill
/// has so far waits in `fillWaiters` until the filling thread or loop wakes this loop with more.
extension EventLoop {
    /// Answers a request for an object whose body is arriving: conditionals and ranges as for a
    /// hit (the ETag and Last-Modified are the file's once whole), then the body as it lands.
    mutating func serveFill(
        _ slot: Int32, _ fill: ObjectFill, _ head: RequestHead, _ buffer: UnsafeRawBufferPointer, origin: UnsafeRawBufferPointer
    ) {
        media.cache = .miss
        media.objectSize = fill.length
        guard fill.progress != .failed else {
            // Nothing was promised yet: say the fetch failed rather than send a head and cut.
            respondToFailedFetch(slot, .failed, origin: origin)
            return
        }
        guard
            let span = writeObjectHead(
                slot, head, buffer, size: fill.length, modifiedSeconds: fill.modifiedSeconds, etag: fill.etag,
                mediaType: fill.mediaType, origin: origin)
        else { return }
        metrics.add(.readThroughStreamed)
        if head.method == .head || span.count == 0 {
            sendHead(slot, body: nil, bodyLength: 0)
            return
        }
        let s = Int(slot)
        fills[s] = fill
        connections[s].state.streamFromFill()
        connections[s].bodyOffset = span.first
        connections[s].bodyEnd = span.first + span.count
        connections[s].responseBytes = Int64(connections[s].headCount) + span.count
        startStream(slot)
    }

    /// The response has sent all its fill has: send more if it arrived meanwhile, cut it if the
    /// fill failed, or wait for the filler's wake-up.
    mutating func awaitFill(_ slot: Int32) {
        let s = Int(slot)
        let fill = fills[s]!
        fill.watch(loop: id)
        // Read after asking to be woken: bytes written before the ask are seen here, later ones wake the loop.
        if fill.available > connections[s].bodyOffset {
            submitStreamRound(slot, head: false, poll: false)
            return
        }
        if fill.progress == .failed {
            metrics.add(.readThroughStreamsCut)
            abort(slot)
            return
        }
        connections[s].state.waitForFill()
        fillWaiters.append(UInt64(connections[s].generation) << 32 | UInt64(UInt32(bitPattern: slot)))
    }

    /// On a wake-up: responses whose fills may have grown go on (or wait again).
    mutating func resumeFillWaiters() {
        guard !fillWaiters.isEmpty else { return }
        swap(&fillWaiters, &fillWaitersTaken)
        for waiter in fillWaitersTaken {
            let slot = Int32(bitPattern: UInt32(truncatingIfNeeded: waiter))
            let s = Int(slot)
            guard connections[s].generation == UInt16(truncatingIfNeeded: waiter >> 32), connections[s].state.fillGrew() else { continue }
            submitStreamRound(slot, head: false, poll: false)
        }
        fillWaitersTaken.removeAll(keepingCapacity: true)
    }

    /// The response no longer streams from its fill (it ended or was cut).
    @inline(__always) mutating func releaseFill(_ slot: Int32) {
        let s = Int(slot)
        fills[s] = nil
        connections[s].state.fillReleased()
    }
}
