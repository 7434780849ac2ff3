import CLinux
import CURing
import Glibc
import MarqueeRing

/// Large files go from the page cache to the socket without entering user space: each round is
/// one linked chain `send(head) → [poll] → splice(pipe→socket) → (splice(file→pipe) → splice(pipe→socket))×n`.
/// Every entry but the last skips its completion on success, so a round costs one completion:
/// either the last step's, or the first step that fell short, from which the round is replayed.
extension EventLoop {
    static let chunksPerRound = 4
    static let spliceNonBlock = MQ_SPLICE_F_NONBLOCK
    static let spliceMore = MQ_SPLICE_F_MORE

    enum StreamStep {
        case head, poll, drain, fileToPipe, pipeToSocket
    }

    mutating func startStream(_ slot: Int32) {
        beginRecord(slot, headBytes: connections[Int(slot)].headCount)
        connections[Int(slot)].state.respond()
        startTimer(slot, .send)
        if speaksTLS(slot) {
            submitTLSStreamRound(slot, head: true)
            return
        }
        let pipe = pipes.take()
        guard pipe >= 0 else {
            enqueuePipeWaiter(slot)
            return
        }
        connections[Int(slot)].pipe = pipe
        submitStreamRound(slot, head: true, poll: false)
    }

    mutating func submitStreamRound(_ slot: Int32, head: Bool, poll: Bool) {
        if speaksTLS(slot) {
            submitTLSStreamRound(slot, head: head)
            return
        }
        let s = Int(slot)
        let fd = connections[s].fd
        let pipe = connections[s].pipe
        let chunkBytes = Int64(pipes.capacity(pipe))
        let drain = connections[s].pipeFill
        // A fill's response sends only what has arrived.
        let end = connections[s].streamsFill ? min(connections[s].bodyEnd, fills[s]!.available) : connections[s].bodyEnd
        let remaining = max(0, end - connections[s].bodyOffset)
        let chunks = Int(min(Int64(Self.chunksPerRound), (remaining + chunkBytes - 1) / chunkBytes))
        let total = (head ? 1 : 0) + (poll ? 1 : 0) + (drain > 0 ? 1 : 0) + 2 * chunks
        guard total > 0 else {
            // Everything the fill had is out: wait for more.
            awaitFill(slot)
            return
        }
        ring.reserve(UInt32(total))

        let generation = connections[s].generation
        let headMemory = head ? responseMemory(slot) : nil
        var step = 0
        func finish(_ sqe: UnsafeMutablePointer<io_uring_sqe>) {
            io_uring_sqe_set_data64(sqe, UserData.make(.stream, slot: slot, generation: generation, step: UInt8(step)))
            if step < total - 1 { sqe.pointee.flags |= MQ_IOSQE_IO_LINK | MQ_IOSQE_CQE_SKIP_SUCCESS }
            step += 1
        }
        if head {
            let sqe = ring.submissionEntry()
            // MSG_MORE lets the head leave with the first body bytes. Not for a fill: its head
            // leaves at once (the time to first byte of a miss), whatever the body is doing.
            let more = chunks > 0 && !connections[s].streamsFill ? Int32(MSG_MORE) : 0
            io_uring_prep_send(sqe, fd, headMemory, Int(connections[s].headCount), Int32(MSG_NOSIGNAL | MSG_WAITALL) | more)
            finish(sqe)
        }
        if poll {
            let sqe = ring.submissionEntry()
            io_uring_prep_poll_add(sqe, fd, UInt32(POLLOUT))
            finish(sqe)
        }
        let readEnd = pipes.readEnd(pipe)
        let writeEnd = pipes.writeEnd(pipe)
        var offset = connections[s].bodyOffset
        if drain > 0 {
            let sqe = ring.submissionEntry()
            let more = offset < end ? Self.spliceMore : 0
            io_uring_prep_splice(sqe, readEnd, -1, fd, -1, UInt32(drain), Self.spliceNonBlock | more)
            finish(sqe)
        }
        let fileFD = connections[s].streamsFill ? fills[s]!.fd : files.entries[Int(connections[s].entry)].fd
        for _ in 0..<chunks {
            let length = min(chunkBytes, end - offset)
            var sqe = ring.submissionEntry()
            io_uring_prep_splice(sqe, fileFD, offset, writeEnd, -1, UInt32(length), Self.spliceNonBlock)
            finish(sqe)
            offset += length
            sqe = ring.submissionEntry()
            let more = offset < end ? Self.spliceMore : 0
            io_uring_prep_splice(sqe, readEnd, -1, fd, -1, UInt32(length), Self.spliceNonBlock | more)
            finish(sqe)
        }
        connections[s].planHead = head
        connections[s].planPoll = poll
        connections[s].planDrain = drain
        connections[s].planChunkBytes = Int32(chunkBytes)
        connections[s].planChunks = Int32(chunks)
        connections[s].planStart = connections[s].bodyOffset
        connections[s].planEnd = end
        connections[s].state.sendSubmitted()
    }

    /// Which step `index` of the round in flight was, and how many bytes it was asked to move.
    func streamStep(_ slot: Int32, _ index: Int) -> (StreamStep, Int64) {
        let c = connections[Int(slot)]
        var i = index
        if c.planHead {
            if i == 0 { return (.head, Int64(c.headCount)) }
            i -= 1
        }
        if c.planPoll {
            if i == 0 { return (.poll, 0) }
            i -= 1
        }
        if c.planDrain > 0 {
            if i == 0 { return (.drain, Int64(c.planDrain)) }
            i -= 1
        }
        let chunkStart = c.planStart + Int64(i / 2) * Int64(c.planChunkBytes)
        let length = min(Int64(c.planChunkBytes), c.planEnd - chunkStart)
        return (i % 2 == 0 ? .fileToPipe : .pipeToSocket, length)
    }

    /// Applies `moved` bytes of a step to the transfer state.
    mutating func apply(_ slot: Int32, _ step: StreamStep, moved: Int64) {
        let s = Int(slot)
        switch step {
        case .head:
            connections[s].sentBytes += moved
        case .poll:
            break
        case .drain, .pipeToSocket:
            connections[s].sentBytes += moved
            connections[s].pipeFill -= Int32(moved)
            metrics.add(.splicedBytes, UInt64(moved))
        case .fileToPipe:
            connections[s].bodyOffset += moved
            connections[s].pipeFill += Int32(moved)
        }
    }

    mutating func onStreamStepComplete(_ slot: Int32, step index: Int, result: Int32) {
        let s = Int(slot)
        connections[s].state.sendCompleted()
        guard connections[s].phase == .responding else {
            if connections[s].recording { countCutRound(slot, index, result) }
            finishCloseIfQuiet(slot)
            return
        }
        // Every step before the one that completed succeeded in full.
        for k in 0..<index {
            let (step, length) = streamStep(slot, k)
            apply(slot, step, moved: length)
        }
        let (step, length) = streamStep(slot, index)
        var needsPoll = false
        if result >= 0 {
            switch step {
            case .head:
                guard Int64(result) == length else { return abort(slot) }
                apply(slot, .head, moved: length)
            case .poll:
                guard Int32(result) & Int32(POLLERR | POLLHUP) == 0 else { return abort(slot) }
            case .drain, .pipeToSocket, .fileToPipe:
                // Zero bytes: the client is gone, or the file shrank under a promised Content-Length.
                guard result > 0 || length == 0 else { return abort(slot) }
                apply(slot, step, moved: Int64(result))
            }
        } else if result == -EAGAIN && (step == .drain || step == .pipeToSocket) {
            needsPoll = true  // socket buffer full: wait for room
        } else {
            return abort(slot)
        }
        if connections[s].bodyOffset == connections[s].bodyEnd && connections[s].pipeFill == 0 {
            responseDone(slot)
        } else {
            startTimer(slot, .send)  // progress made: the send timeout starts over
            submitStreamRound(slot, head: false, poll: needsPoll)
        }
    }

    /// A round that completed after its connection was cut: what its steps put on the socket,
    /// for the record (the transfer state no longer matters).
    mutating func countCutRound(_ slot: Int32, _ index: Int, _ result: Int32) {
        for k in 0...index {
            let (step, length) = streamStep(slot, k)
            let moved = k < index ? length : Int64(max(0, result))
            switch step {
            case .head, .drain, .pipeToSocket: connections[Int(slot)].sentBytes += moved
            case .poll, .fileToPipe: break
            }
        }
    }

    // MARK: - Waiting for a pipe

    mutating func enqueuePipeWaiter(_ slot: Int32) {
        metrics.add(.pipeWaits)
        if pipeQueueCount == capacity { compactPipeQueue() }
        pipeQueue[(pipeQueueHead + pipeQueueCount) % capacity] =
            UInt64(connections[Int(slot)].generation) << 32 | UInt64(UInt32(bitPattern: slot))
        pipeQueueCount += 1
        connections[Int(slot)].state.waitForPipe()
    }

    /// Hands freed pipes to waiting connections, oldest first, skipping ones that went away.
    mutating func servePipeWaiters() {
        while pipeQueueCount > 0 {
            let waiter = pipeQueue[pipeQueueHead]
            let slot = Int32(bitPattern: UInt32(truncatingIfNeeded: waiter))
            let generation = UInt16(truncatingIfNeeded: waiter >> 32)
            let c = connections[Int(slot)]
            guard c.generation == generation, c.state.waitsForPipe else {
                pipeQueueHead = (pipeQueueHead + 1) % capacity
                pipeQueueCount -= 1
                continue
            }
            let pipe = pipes.take()
            guard pipe >= 0 else { return }
            pipeQueueHead = (pipeQueueHead + 1) % capacity
            pipeQueueCount -= 1
            connections[Int(slot)].state.pipeGranted()
            connections[Int(slot)].pipe = pipe
            submitStreamRound(slot, head: true, poll: false)
        }
    }

    /// Drops queue entries of connections that no longer wait.
    mutating func compactPipeQueue() {
        var kept = 0
        for k in 0..<pipeQueueCount {
            let waiter = pipeQueue[(pipeQueueHead + k) % capacity]
            let slot = Int32(bitPattern: UInt32(truncatingIfNeeded: waiter))
            let c = connections[Int(slot)]
            if c.generation == UInt16(truncatingIfNeeded: waiter >> 32) && c.waitingForPipe {
                pipeQueue[(pipeQueueHead + kept) % capacity] = waiter
                kept += 1
            }
        }
        pipeQueueCount = kept
    }
}
