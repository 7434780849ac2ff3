import CLinux
import CURing
import Glibc
import MarqueeHTTP
import MarqueeRing

/// Cache fills from an edge's upstreams, run by the loop that missed, on its own ring: connect,
/// send and receive go through the link table and keep-alive pools the API proxy uses, and the
/// exchange's decisions are the proxy's state machine (`UpstreamExchangeMachine`, de-chunking in
/// place). A miss's first byte therefore leaves on the loop that received the upstream's head,
/// with no thread hand-off in between.
///
/// - The source (`UpstreamFillSource`) says which upstreams to ask, in order, builds each GET,
///   and reads each answer. A refused connection, a 5xx, a broken answer or a stall asks the
///   next upstream within the fetch's one deadline; a 404/410 or another 4xx is the answer.
/// - A 200's body goes to the fetch's temporary file as each receive lands (a write to the page
///   cache, as nginx's cache writes are), and, when its length is known, streams to the players
///   through the fill (`ObjectFill`). Once it has streamed, a failure is final for this fetch.
/// - Every operation carries a linked timeout for what is left of the deadline.
/// - The outcome goes to the read-through cache (`conclude`), which places the file and answers
///   the requests waiting on every loop.
extension EventLoop {
    /// A fill's receive area (an upstream head of up to `relayMaxHeadBytes`, then body rounds),
    /// followed by room for its request.
    static let fillReceiveBytes = 64 * 1024
    static let fillRequestBytes = 8 * 1024
    static let fillAreaBytes = fillReceiveBytes + fillRequestBytes

    @inline(__always) func fillArea(_ f: Int) -> UnsafeMutableRawPointer { fillAreas.pointer(fillExchanges[f].area) }

    // MARK: - Starting

    /// Runs `fetch` on this loop; its requests wait for `ReadThroughCache.conclude` (or its fill).
    mutating func startFill(_ fetch: LoopFetch) {
        let f: Int
        if let free = freeFills.popLast() {
            f = Int(free)
        } else {
            f = fillExchanges.count
            fillExchanges.append(FillExchange())
        }
        let area = fillAreas.take()
        guard let source = fillSource, area >= 0 else {
            // The cache bounds fetches in flight by the pool's capacity: not reached.
            if area >= 0 { fillAreas.give(area) }
            freeFills.append(Int32(f))
            readThrough?.conclude(fetch, .failed("no room for another fill on this loop"))
            return
        }
        fillExchanges[f].fetch = fetch
        fillExchanges[f].generation &+= 1
        fillExchanges[f].order = source.order(for: fetch.key)
        fillExchanges[f].asked = 0
        fillExchanges[f].area = area
        fillExchanges[f].deadline = nowMilliseconds + (readThrough?.settings.timeoutMilliseconds ?? 10_000)
        fillExchanges[f].reasons = []
        askNextUpstream(f)
    }

    /// Sends the fetch to the next upstream in its order, or ends it when none is left or its
    /// time ran out.
    mutating func askNextUpstream(_ f: Int) {
        guard let source = fillSource, let fetch = fillExchanges[f].fetch else { return }
        let order = fillExchanges[f].order
        guard fillExchanges[f].asked < order.count, nowMilliseconds < fillExchanges[f].deadline else {
            endFill(f, failure: true)
            return
        }
        let upstream = order[fillExchanges[f].asked]
        fillExchanges[f].asked += 1
        fillExchanges[f].upstream = upstream
        fillExchanges[f].answer = nil
        let request = source.request(for: fetch.key, upstream: upstream, revalidating: fetch.revalidating)
        guard request.count <= Self.fillRequestBytes else {
            fillExchanges[f].reasons.append("the request for \(fetch.key) is longer than \(Self.fillRequestBytes) bytes")
            endFill(f, failure: true)
            return
        }
        request.withUnsafeBytes { fillArea(f).advanced(by: Self.fillReceiveBytes).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        fillExchanges[f].machine = UpstreamExchangeMachine(
            method: .get, clientIsHTTP10: true, requestLength: request.count, maxHeadBytes: Self.relayMaxHeadBytes)
        let pooled = links.takeIdle(fillUpstreamBase + upstream)
        if pooled >= 0 { attachFill(pooled, f) }
        performFill(fillExchanges[f].machine.start(onPooledLink: pooled >= 0), f)
    }

    mutating func attachFill(_ link: Int32, _ f: Int) {
        links[Int(link)].owner = Int32(f)
        links[Int(link)].ownerGeneration = fillExchanges[f].generation
        fillExchanges[f].link = link
    }

    // MARK: - The exchange

    /// Carries out what the fill's state machine decided.
    mutating func performFill(_ action: UpstreamExchangeMachine.Action, _ f: Int) {
        switch action {
        case .connect:
            dropFillLink(f)
            connectFill(f)
        case .send(let from) where linkSpeaksTLS(fillExchanges[f].link):
            sendEncryptedToLink(fillExchanges[f].link, f, from: from)
        case .receive(let offset) where linkSpeaksTLS(fillExchanges[f].link):
            receiveDecryptedFromLink(fillExchanges[f].link, f, offset: offset)
        case .send(let from):
            let link = fillExchanges[f].link
            links[Int(link)].state = .active
            let request = fillArea(f) + Self.fillReceiveBytes
            ring.reserve(2)
            let sqe = ring.submissionEntry()
            io_uring_prep_send(sqe, links[Int(link)].fd, request + from, fillExchanges[f].machine.requestLength - from, Int32(MSG_NOSIGNAL))
            submitFillStep(sqe, link, .send, f)
        case .receive(let offset):
            let link = fillExchanges[f].link
            ring.reserve(2)
            let sqe = ring.submissionEntry()
            io_uring_prep_recv(sqe, links[Int(link)].fd, fillArea(f) + offset, Self.fillReceiveBytes - offset, 0)
            submitFillStep(sqe, link, .receive, f)
        case .forwardHead(let head):
            fillHeadArrived(f, head)
        case .relay(let count):
            keepFillBytes(f, count)
        case .finish(let reusable):
            let link = fillExchanges[f].link
            fillExchanges[f].link = -1
            if reusable { poolLink(link) } else { closeLink(link) }
            endFill(f, failure: false)
        case .fail(let status, let detail, _):
            fillUpstreamFailed(f, status == .gatewayTimeout ? "no answer in time" : "\(detail)")
        case .abort:
            fillUpstreamFailed(f, nowMilliseconds >= fillExchanges[f].deadline ? "no answer in time" : "broke off its response")
        }
    }

    /// A fresh connection to the upstream being asked.
    mutating func connectFill(_ f: Int) {
        let upstream = fillUpstreamBase + fillExchanges[f].upstream
        let address = links.addresses[upstream]
        let fd = socket(Int32(address.family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0, let link = links.open(fd: fd, upstream: upstream) else {
            if fd >= 0 { Glibc.close(fd) }
            fillUpstreamFailed(f, "no connection could be opened")
            return
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        attachFill(link, f)
        ring.reserve(2)
            let sqe = ring.submissionEntry()
        links.sockets.advanced(by: upstream).withMemoryRebound(to: sockaddr.self, capacity: 1) {
            io_uring_prep_connect(sqe, fd, $0, address.length)
        }
        submitFillStep(sqe, link, .connect, f)
    }

    /// Tags the operation and links a timeout for what is left of the fetch's deadline to it
    /// (the operation then completes with -ECANCELED).
    mutating func submitFillStep(_ sqe: UnsafeMutablePointer<io_uring_sqe>, _ link: Int32, _ step: UpstreamStep, _ f: Int) {
        io_uring_sqe_set_data64(sqe, UserData.make(.upstream, slot: link, generation: links[Int(link)].generation, step: step.rawValue))
        sqe.pointee.flags |= MQ_IOSQE_IO_LINK
        let left = max(1, fillExchanges[f].deadline - nowMilliseconds)
        fillTimeouts[f] = __kernel_timespec(tv_sec: left / 1000, tv_nsec: left % 1000 * 1_000_000)
        let timeout = ring.submissionEntry()
        io_uring_prep_link_timeout(timeout, fillTimeouts + f, 0)
        io_uring_sqe_set_data64(timeout, UserData.make(.ignored))
        links[Int(link)].inFlight = true
    }

    /// A fill link's connect, send or receive completed.
    mutating func onFillLinkComplete(_ link: Int32, step: UpstreamStep, result: Int32) {
        let l = Int(link)
        links[l].inFlight = false
        let f = Int(links[l].owner)
        guard f >= 0, f < fillExchanges.count, fillExchanges[f].fetch != nil, fillExchanges[f].link == link,
            fillExchanges[f].generation == links[l].ownerGeneration
        else {
            closeLink(link)
            return
        }
        // Cancelled by its linked timeout: the fetch's time is up, whatever the clock of this turn says.
        if result == -ECANCELED { fillExchanges[f].deadline = min(fillExchanges[f].deadline, nowMilliseconds) }
        if nowMilliseconds >= fillExchanges[f].deadline {
            performFill(fillExchanges[f].machine.timedOut(), f)
            return
        }
        let action: UpstreamExchangeMachine.Action
        switch step {
        case .connect where result >= 0 && linkSpeaksTLS(link):
            startLinkHandshake(link, f)
            return
        case .tlsSend, .tlsReceive:
            onLinkTLSComplete(link, f, step: step, result: result)
            return
        case .connect: action = fillExchanges[f].machine.connected(result)
        case .send: action = fillExchanges[f].machine.sent(result)
        case .receive:
            action = fillExchanges[f].machine.received(result, area: UnsafeMutableRawBufferPointer(start: fillArea(f), count: Self.fillReceiveBytes))
        case .idlePoll: return
        }
        performFill(action, f)
    }

    // MARK: - The answer

    /// The upstream's final head is at the start of the area: the source reads it.
    mutating func fillHeadArrived(_ f: Int, _ head: ResponseHead) {
        guard let source = fillSource, let fetch = fillExchanges[f].fetch else { return }
        let upstream = fillExchanges[f].upstream
        let area = UnsafeMutableRawBufferPointer(start: fillArea(f), count: Self.fillReceiveBytes)
        let answer = source.answer(head: UnsafeRawBufferPointer(start: area.baseAddress, count: head.headLength), status: head.status, revalidating: fetch.revalidating)
        fillExchanges[f].answer = answer
        switch answer {
        case .body(let modifiedSeconds, _):
            source.succeeded(upstream)
            let file = open(fetch.fill.temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard file >= 0 else {
                fillExchanges[f].reasons.append("cannot create the cache file: \(String(cString: strerror(errno)))")
                dropFillLink(f)
                endFill(f, failure: true)
                return
            }
            fillExchanges[f].file = file
            fillExchanges[f].written = 0
            var streams = false
            if case .length(let length) = fillExchanges[f].machine.framing.kind {
                streams = fetch.fill.begin(length: length, modifiedSeconds: modifiedSeconds)
                fillExchanges[f].streams = streams
            }
            performFill(fillExchanges[f].machine.headForwarded(area: area, headLength: head.headLength), f)
            // This loop's requests waiting for it go out now, with the body bytes that came with
            // the head, rather than after the wake-up `begin` sent.
            if streams { takeFetchAnswers() }
        case .notModified:
            source.succeeded(upstream)
            // No body: the machine finishes, and the link may be kept.
            performFill(fillExchanges[f].machine.headForwarded(area: area, headLength: head.headLength), f)
        case .notFound:
            source.succeeded(upstream)
            dropFillLink(f)
            endFill(f, failure: false)
        case .refused(let reason):
            fillExchanges[f].reasons.append(reason)
            dropFillLink(f)
            endFill(f, failure: true)
        case .unavailable(let reason):
            fillUpstreamFailed(f, reason)
        }
    }

    /// `count` body bytes (de-chunked) are at the area's start: into the file, then the next round.
    mutating func keepFillBytes(_ f: Int, _ count: Int) {
        let file = fillExchanges[f].file
        if file >= 0 && count > 0 {
            var done = 0
            while done < count {
                let n = write(file, fillArea(f) + done, count - done)
                if n > 0 {
                    done += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    fillExchanges[f].reasons.append("cannot write the cache file: \(String(cString: strerror(errno)))")
                    dropFillLink(f)
                    endFill(f, failure: true)
                    return
                }
            }
            fillExchanges[f].written += Int64(count)
            if fillExchanges[f].streams {
                fillExchanges[f].fetch!.fill.advance(to: fillExchanges[f].written)
                // This loop's responses that sent all there was go on now (other loops are woken).
                resumeFillWaiters()
            }
        }
        performFill(fillExchanges[f].machine.relayed(), f)
    }

    /// The upstream being asked failed (refused, 5xx, broken, silent): it is marked down, and the
    /// next one is asked, unless this body already streamed to players.
    mutating func fillUpstreamFailed(_ f: Int, _ reason: String) {
        guard let source = fillSource else { return }
        let upstream = fillExchanges[f].upstream
        source.failed(upstream)
        fillExchanges[f].reasons.append("\(source.upstreams[upstream].authority): \(reason)")
        dropFillLink(f)
        discardFillFile(f)
        if fillExchanges[f].streams {
            endFill(f, failure: true)
        } else {
            askNextUpstream(f)
        }
    }

    // MARK: - Ending

    /// The fetch is over: its outcome goes to the cache, which answers every waiting request.
    mutating func endFill(_ f: Int, failure: Bool) {
        guard let fetch = fillExchanges[f].fetch else { return }
        dropFillLink(f)
        let download: ReadThroughDownload
        if failure {
            discardFillFile(f)
            download = nowMilliseconds >= fillExchanges[f].deadline ? .timedOut : .failed(fillExchanges[f].reasons.joined(separator: "; "))
        } else {
            switch fillExchanges[f].answer {
            case .body(let modifiedSeconds, let freshness)?:
                // The access time is left alone (UTIME_OMIT, (1 << 30) - 2, which Glibc does not import).
                var times = [timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2), timespec(tv_sec: Int(modifiedSeconds), tv_nsec: 0)]
                futimens(fillExchanges[f].file, &times)
                Glibc.close(fillExchanges[f].file)
                fillExchanges[f].file = -1
                download = .storedExpiring(freshness)
            case .notModified(let freshness)?:
                download = .notModified(freshness)
            default:
                download = .notFound
            }
        }
        fillAreas.give(fillExchanges[f].area)
        fillExchanges[f].area = -1
        fillExchanges[f].fetch = nil
        fillExchanges[f].streams = false
        fillExchanges[f].answer = nil
        fillExchanges[f].generation &+= 1
        freeFills.append(Int32(f))
        readThrough?.conclude(fetch, download)
    }

    /// Closes the link being used, if any (no operation of it is in the ring when this runs).
    mutating func dropFillLink(_ f: Int) {
        let link = fillExchanges[f].link
        guard link >= 0 else { return }
        fillExchanges[f].link = -1
        closeLink(link)
    }

    /// Closes and removes a body file that will not be kept.
    mutating func discardFillFile(_ f: Int) {
        guard fillExchanges[f].file >= 0 else { return }
        Glibc.close(fillExchanges[f].file)
        fillExchanges[f].file = -1
        if let fetch = fillExchanges[f].fetch { unlink(fetch.fill.temporaryPath) }
    }
}
