import CLinux
import CURing
import Glibc
import MarqueeHTTP
import MarqueeRing

/// `/api/<service>/...` forwarded to the service upstreams on the loop's own ring. One exchange per
/// client connection at a time: the request head is rewritten (hop-by-hop fields dropped,
/// X-Forwarded-* added) and sent with the whole body, which is read first (bounded by
/// `services.max_request_body_bytes`; chunked bodies are de-chunked and sent with Content-Length),
/// so a stale pooled connection can be retried. The response is relayed in rounds of one receive
/// and one send, so memory per exchange is fixed and a slow client slows the upstream down.
extension EventLoop {
    /// Room for the client's response head at the start of a relay buffer (an upstream head of up
    /// to `relayMaxHeadBytes` plus the lines the gateway adds), then the receive area.
    static let relayHeadBytes = 34 * 1024
    static let relayReceiveBytes = 64 * 1024
    static let relayMaxHeadBytes = 32 * 1024
    /// Added to a request head: X-Forwarded-For/-Proto, X-Request-ID, Content-Length, Host.
    static let requestHeadRoom = 512

    @inline(__always) func relayHead(_ slot: Int32) -> UnsafeMutableRawPointer { relays.pointer(exchanges[Int(slot)].relay) }
    @inline(__always) func relayReceive(_ slot: Int32) -> UnsafeMutableRawPointer { relayHead(slot) + Self.relayHeadBytes }

    // MARK: - Accepting a request

    mutating func proxy(_ slot: Int32, _ head: RequestHead, _ buffer: UnsafeRawBufferPointer, upstream: Int) {
        let s = Int(slot)
        let origin = head.origin.bytes(in: buffer)
        let headBytes = UnsafeRawBufferPointer(rebasing: buffer[0..<head.headLength])
        let fields = HeaderFields(head: headBytes)
        var methodName: StaticString
        switch head.method {
        case .get: methodName = "GET"
        case .head: methodName = "HEAD"
        case .post: methodName = "POST"
        case .put: methodName = "PUT"
        case .patch: methodName = "PATCH"
        case .delete: methodName = "DELETE"
        case .options: methodName = "OPTIONS"
        case .other:
            respondProblem(slot, .methodNotAllowed, "Method Not Allowed", "this method is not forwarded to services", origin: origin)
            return
        }
        // Framing: the parser already refused Content-Length with Transfer-Encoding, duplicate
        // lengths, and any Transfer-Encoding but one `chunked` (501).
        var expectContinue = false
        fields.forEach { field in
            if field.name.equalsLowercase("expect") { expectContinue = field.value.equalsLowercase("100-continue") }
            return true
        }
        let limit = configuration.services.maxRequestBodyBytes
        if head.contentLength > Int64(limit) {
            connections[s].state.closeAfterResponse()
            respondProblem(slot, .payloadTooLarge, "Content Too Large", "request body over services.max_request_body_bytes", origin: origin)
            return
        }
        // Dot segments, encoded slashes and control bytes are refused as for files: a service must
        // not see a path that another parser would route elsewhere.
        let scratch = UnsafeMutableRawBufferPointer(start: pathScratch + 1, count: configuration.maxPathBytes + 1)
        let decodedLength: Int
        switch RequestPath.decode(head.path.bytes(in: buffer), into: scratch, maxLength: configuration.maxPathBytes) {
        case .refused(let error):
            if error.status == .notFound {
                decodedLength = 0  // a dot-file segment (/.well-known/...): the service decides
            } else {
                respondWithError(slot, error, close: error.status == .badRequest, origin: origin)
                return
            }
        case .relative(let length):
            decodedLength = length
        }
        var credentials = Credentials(
            token: UnsafeRawBufferPointer(start: nil, count: 0),
            absolutePath: UnsafeRawBufferPointer(start: pathScratch, count: decodedLength + 1),
            relativePath: UnsafeRawBufferPointer(start: pathScratch + 1, count: decodedLength), route: .api)
        switch admit(slot, head, buffer, &credentials, origin: origin) {
        case .proceed: break
        case .answered, .parked: return
        }
        metrics.countProxied(upstream: upstream, .request)

        // The body is read, so the connection may go on after it.
        connections[s].state.setKeepAlive(head.keepAlive && !draining)
        var e = ProxyExchange()
        e.upstream = Int16(upstream)
        e.client = credentials.client
        e.method = head.method
        if head.hasTransferEncoding {
            e.body = .chunked
            e.bodyCapacity = limit
        } else if head.contentLength >= 0 {
            e.body = .length
            e.bodyRemaining = head.contentLength
            e.bodyCapacity = Int(head.contentLength)
        }
        e.bodyOffset = head.headLength + Self.requestHeadRoom
        // Bodies held by this loop are bounded: past the budget, a request is turned away rather
        // than let many slow uploads pin the memory.
        if e.bodyCapacity > 0
            && bodies.takenBytes + BodyBufferPool.reservation(e.bodyOffset + e.bodyCapacity) > configuration.services.maxBodyBufferBytesPerLoop
        {
            connections[s].state.closeAfterResponse()
            metrics.countProxied(upstream: upstream, .bodyBudgetRefusal)
            respondProblem(slot, .serviceUnavailable, "Service Unavailable", "too many request bodies in flight; retry shortly", origin: origin)
            return
        }
        e.request = bodies.take(atLeast: e.bodyOffset + e.bodyCapacity)
        exchanges[s] = e

        // Request line and the end-to-end fields.
        let out = bodies.buffer(e.request)
        var w = ResponseWriter(base: out.baseAddress!, capacity: e.bodyOffset)
        w.append(methodName)
        w.append(byte: 0x20)
        w.append(UnsafeRawBufferPointer(rebasing: buffer[Int(head.path.start)..<head.target.end]))
        w.append(" HTTP/1.1\r\n")
        var forwardedFor = UnsafeRawBufferPointer(start: nil, count: 0)
        var requestID = UnsafeRawBufferPointer(start: nil, count: 0)
        fields.forEach { field in
            let name = field.name
            if HopByHop.isHopByHop(name, in: fields) || name.equalsLowercase("content-length") || name.equalsLowercase("expect")
                || name.equalsLowercase("x-forwarded-proto")
            {
                return true
            }
            if name.equalsLowercase("x-forwarded-for") {
                forwardedFor = field.value  // the last line, as the policy reads it
                return true
            }
            if name.equalsLowercase("x-request-id") {
                if Self.isAcceptableRequestID(field.value) { requestID = field.value }
                return true
            }
            w.append(field.line)
            return true
        }
        if !head.host.isPresent {
            links.authorities[upstream].withUnsafeBytes { a in
                w.append("Host: ")
                w.append(a)
                w.appendCRLF()
            }
        }
        w.append("X-Forwarded-For: ")
        if !forwardedFor.isEmpty {
            w.append(forwardedFor)
            w.append(", ")
        }
        Self.writeAddress(credentials.client, into: &w)
        // The scheme the client used: a service that writes URLs (playback's signed URLs) keeps it.
        w.append(speaksTLS(slot) ? "\r\nX-Forwarded-Proto: https\r\nX-Request-ID: " : "\r\nX-Forwarded-Proto: http\r\nX-Request-ID: ")
        if requestID.isEmpty {
            w.append(hex: requestIDPrefix)
            w.append(byte: 0x2D)
            requestCounter &+= 1
            w.append(hex: requestCounter)
        } else {
            w.append(requestID)
        }
        w.appendCRLF()
        exchanges[s].headCount = w.count

        // The body: what followed the head in this buffer, then what arrives.
        if e.body == .none || (e.body == .length && e.bodyRemaining == 0) {
            admitExchange(slot)
            return
        }
        if expectContinue && head.isHTTP11 && buffer.count == head.headLength {
            // The client waits for this before sending the body; nothing else is in flight on this
            // connection, and a fresh socket's buffer takes 25 bytes at once.
            let interim: StaticString = "HTTP/1.1 100 Continue\r\n\r\n"
            if speaksTLS(slot) {
                sendEncryptedInterim(slot, UnsafeRawBufferPointer(start: interim.utf8Start, count: interim.utf8CodeUnitCount))
            } else {
                _ = Glibc.send(connections[s].fd, interim.utf8Start, interim.utf8CodeUnitCount, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
        }
        connections[s].state.readBody()
        startTimer(slot, .body)
        let following = UnsafeRawBufferPointer(rebasing: buffer[head.headLength...])
        connections[s].bodyConsumed = Int32(receiveBody(slot, following))
    }

    /// Takes request body bytes; returns how many belonged to the body (the rest is the next request).
    @discardableResult
    mutating func receiveBody(_ slot: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
        let s = Int(slot)
        guard connections[s].phase == .receivingBody, !bytes.isEmpty else { return 0 }
        let out = bodies.buffer(exchanges[s].request).baseAddress! + exchanges[s].bodyOffset
        var taken = 0
        var complete = false
        switch exchanges[s].body {
        case .none:
            complete = true
        case .length:
            let n = Int(min(exchanges[s].bodyRemaining, Int64(bytes.count)))
            (out + exchanges[s].bodyLength).copyMemory(from: bytes.baseAddress!, byteCount: n)
            exchanges[s].bodyLength += n
            exchanges[s].bodyRemaining -= Int64(n)
            taken = n
            complete = exchanges[s].bodyRemaining == 0
        case .chunked:
            var length = exchanges[s].bodyLength
            let capacity = exchanges[s].bodyCapacity
            var overflow = false
            let outcome = exchanges[s].chunks.decode(bytes) { data in
                guard length + data.count <= capacity else {
                    overflow = true
                    return
                }
                (out + length).copyMemory(from: data.baseAddress!, byteCount: data.count)
                length += data.count
            }
            exchanges[s].bodyLength = length
            if overflow {
                connections[s].state.closeAfterResponse()
                releaseExchange(slot)
                respondProblem(slot, .payloadTooLarge, "Content Too Large", "request body over services.max_request_body_bytes")
                return bytes.count
            }
            switch outcome {
            case .needMore:
                taken = bytes.count
            case .complete(let consumed):
                taken = consumed
                complete = true
            case .failed:
                releaseExchange(slot)
                respondWithError(slot, HTTPError(.badRequest, "malformed chunked request body"), close: true)
                return bytes.count
            }
        }
        // Not complete: the body's one deadline keeps running (a trickle must not restart it).
        if complete { admitExchange(slot) }
        return taken
    }

    /// The body did not arrive within `http.body_timeout_ms`: 408, and the connection closes
    /// (where the body would have ended is unknown).
    mutating func bodyTimedOut(_ slot: Int32) {
        guard connections[Int(slot)].phase == .receivingBody else { return abort(slot) }
        releaseExchange(slot)
        respondWithError(slot, HTTPError(.requestTimeout, "the request body did not arrive in time"), close: true)
    }

    /// Client bytes while its body is read: the body's, then (after it) the next request's.
    mutating func consumeBody(_ slot: Int32, _ bytes: UnsafeRawBufferPointer) {
        let taken = receiveBody(slot, bytes)
        if taken < bytes.count && connections[Int(slot)].phase != .closing {
            _ = appendInput(slot, UnsafeRawBufferPointer(rebasing: bytes[taken...]))
        }
    }

    // MARK: - The exchange

    /// The request is read whole: the `route=api` rate limits decide now, so a request parked for
    /// a shared (Redis) verdict keeps its body in the exchange rather than in the input buffer.
    mutating func admitExchange(_ slot: Int32) {
        let s = Int(slot)
        guard let policy, !policy.descriptors.isEmpty else { return startExchange(slot) }
        var credentials = Credentials(
            token: UnsafeRawBufferPointer(start: nil, count: 0), absolutePath: UnsafeRawBufferPointer(start: nil, count: 0),
            relativePath: UnsafeRawBufferPointer(start: nil, count: 0), route: .api)
        credentials.client = exchanges[s].client
        switch admitRate(slot, policy, client: exchanges[s].client, credentials, origin: UnsafeRawBufferPointer(start: nil, count: 0)) {
        case .proceed: startExchange(slot)
        case .answered: releaseExchange(slot)
        case .parked: connections[s].parking.parkedIsExchange()
        }
    }

    /// The body is complete: finish the head and send both upstream.
    mutating func startExchange(_ slot: Int32) {
        let s = Int(slot)
        let base = bodies.buffer(exchanges[s].request).baseAddress!
        var w = ResponseWriter(base: base, capacity: exchanges[s].bodyOffset, count: exchanges[s].headCount)
        if exchanges[s].body != .none {
            w.append("Content-Length: ")
            w.append(decimal: Int64(exchanges[s].bodyLength))
            w.appendCRLF()
        }
        w.appendCRLF()
        // Move the head to end where the body starts, so both go out in one send.
        let start = exchanges[s].bodyOffset - w.count
        memmove(base + start, base, w.count)
        exchanges[s].requestStart = start
        exchanges[s].requestEnd = exchanges[s].bodyOffset + exchanges[s].bodyLength
        exchanges[s].machine = UpstreamExchangeMachine(
            method: exchanges[s].method, clientIsHTTP10: connections[s].isHTTP10, requestLength: exchanges[s].requestEnd - start,
            maxHeadBytes: Self.relayMaxHeadBytes)
        connections[s].state.proxy()
        let relay = relays.take()
        guard relay >= 0 else {
            releaseExchange(slot)
            respondWithError(slot, HTTPError(.serviceUnavailable, "too many requests to services in flight, retry"), close: false)
            return
        }
        exchanges[s].relay = relay
        startTimer(slot, .upstream)
        let pooled = links.takeIdle(Int(exchanges[s].upstream))
        if pooled >= 0 { attach(pooled, to: slot) }
        perform(exchanges[s].machine.start(onPooledLink: pooled >= 0), slot)
    }

    /// Carries out what the exchange's state machine decided.
    mutating func perform(_ action: UpstreamExchangeMachine.Action, _ slot: Int32) {
        let s = Int(slot)
        switch action {
        case .connect:
            if exchanges[s].link >= 0 {
                closeLink(exchanges[s].link)
                exchanges[s].link = -1
            }
            connectLink(for: slot)
        case .send(let from):
            sendRequest(exchanges[s].link, from: from)
        case .receive(let offset):
            receiveFromUpstream(exchanges[s].link, offset: offset)
        case .forwardHead(let head):
            forwardHead(slot, head)
        case .relay(let body):
            relay(slot, headCount: 0, bodyCount: body)
        case .finish(let reusable):
            finishExchange(slot, reusable: reusable)
        case .fail(let status, let detail, let connectFailure):
            if connectFailure { metrics.countProxied(upstream: Int(exchanges[s].upstream), .connectFailure) }
            // A link with an operation in the ring is interrupted by `proxyFailed`; one without is closed now.
            let link = exchanges[s].link
            if link >= 0 && !links[Int(link)].inFlight {
                exchanges[s].link = -1
                closeLink(link)
            }
            proxyFailed(slot, status, detail)
        case .abort:
            abort(slot)
        }
    }

    mutating func attach(_ link: Int32, to slot: Int32) {
        links[Int(link)].owner = slot
        links[Int(link)].ownerGeneration = connections[Int(slot)].generation
        exchanges[Int(slot)].link = link
    }

    /// A new connection to the exchange's upstream.
    mutating func connectLink(for slot: Int32) {
        let s = Int(slot)
        let upstream = Int(exchanges[s].upstream)
        let address = links.addresses[upstream]
        let fd = socket(Int32(address.family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0, let link = links.open(fd: fd, upstream: upstream) else {
            if fd >= 0 { Glibc.close(fd) }
            metrics.countProxied(upstream: upstream, .connectFailure)
            proxyFailed(slot, .badGateway, "no connection to the upstream could be opened")
            return
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let generation = links[Int(link)].generation
        attach(link, to: slot)
        let sqe = ring.submissionEntry()
        links.sockets.advanced(by: upstream).withMemoryRebound(to: sockaddr.self, capacity: 1) {
            io_uring_prep_connect(sqe, fd, $0, address.length)
        }
        io_uring_sqe_set_data64(sqe, UserData.make(.upstream, slot: link, generation: generation, step: UpstreamStep.connect.rawValue))
        links[Int(link)].inFlight = true
    }

    mutating func sendRequest(_ link: Int32, from sent: Int) {
        let l = Int(link)
        let s = Int(links[l].owner)
        links[l].state = .active
        let base = bodies.buffer(exchanges[s].request).baseAddress!
        let from = exchanges[s].requestStart + sent
        let sqe = ring.submissionEntry()
        io_uring_prep_send(sqe, links[l].fd, base + from, exchanges[s].requestEnd - from, Int32(MSG_NOSIGNAL))
        io_uring_sqe_set_data64(sqe, UserData.make(.upstream, slot: link, generation: links[l].generation, step: UpstreamStep.send.rawValue))
        links[l].inFlight = true
    }

    mutating func receiveFromUpstream(_ link: Int32, offset: Int) {
        let l = Int(link)
        let slot = links[l].owner
        let sqe = ring.submissionEntry()
        io_uring_prep_recv(sqe, links[l].fd, relayReceive(slot) + offset, Self.relayReceiveBytes - offset, 0)
        io_uring_sqe_set_data64(sqe, UserData.make(.upstream, slot: link, generation: links[l].generation, step: UpstreamStep.receive.rawValue))
        links[l].inFlight = true
        startTimer(slot, .upstream)
    }

    // MARK: - Upstream completions

    mutating func onUpstreamComplete(_ link: Int32, generation: UInt16, step rawStep: Int, result: Int32) {
        let l = Int(link)
        guard link >= 0, l < links.capacity, links[l].generation == generation, let step = UpstreamStep(rawValue: UInt8(rawStep)) else { return }
        if step == .idlePoll {
            // An idle connection became readable: the upstream closed it (or spoke out of turn).
            if links[l].state == .idle {
                links.removeIdle(link)
                closeLink(link)
            }
            return
        }
        if Int(links[l].upstream) >= fillUpstreamBase {
            onFillLinkComplete(link, step: step, result: result)
            return
        }
        links[l].inFlight = false
        let slot = links[l].owner
        let s = Int(slot)
        guard slot >= 0, connections[s].generation == links[l].ownerGeneration, exchanges[s].link == link,
            connections[s].phase == .proxying
        else {
            // The exchange ended without this link (timeout, client gone): drop the connection.
            if slot >= 0 && exchanges[s].link == link {
                exchanges[s].link = -1
                closeLink(link)
                if connections[s].phase != .proxying { releaseExchange(slot) }
                finishCloseIfQuiet(slot)
            } else {
                closeLink(link)
            }
            return
        }
        let action: UpstreamExchangeMachine.Action
        switch step {
        case .connect: action = exchanges[s].machine.connected(result)
        case .send: action = exchanges[s].machine.sent(result)
        case .receive:
            let area = UnsafeMutableRawBufferPointer(start: relayReceive(slot), count: Self.relayReceiveBytes)
            action = exchanges[s].machine.received(result, area: area)
        case .idlePoll, .tlsSend, .tlsReceive: return  // services are plain HTTP
        }
        perform(action, slot)
    }

    // MARK: - Relaying the response

    /// The upstream's final head is at the start of the receive area: write the client's head
    /// (hop-by-hop fields dropped), then relay it with the body bytes that came along.
    mutating func forwardHead(_ slot: Int32, _ head: ResponseHead) {
        let s = Int(slot)
        stopTimer(slot)
        if exchanges[s].machine.closesClient { connections[s].state.closeAfterResponse() }
        let isHTTP10 = connections[s].isHTTP10
        let area = UnsafeRawBufferPointer(start: relayReceive(slot), count: head.headLength)
        var w = ResponseWriter(base: relayHead(slot), capacity: Self.relayHeadBytes)
        w.append("HTTP/1.1 ")
        w.append(decimal: Int64(head.status))
        w.append(byte: 0x20)
        w.append(UnsafeRawBufferPointer(rebasing: area[head.reasonStart..<(head.reasonStart + head.reasonCount)]))
        w.appendCRLF()
        let fields = HeaderFields(head: area)
        fields.forEach { field in
            if !HopByHop.isHopByHop(field.name, in: fields) { w.append(field.line) }
            return true
        }
        if exchanges[s].machine.framing.kind == .chunked && !exchanges[s].machine.dechunk { w.append("Transfer-Encoding: chunked\r\n") }
        if !connections[s].keepAlive {
            w.append("Connection: close\r\n")
        } else if isHTTP10 {
            w.append("Connection: keep-alive\r\n")
        }
        w.appendCRLF()
        let receive = UnsafeMutableRawBufferPointer(start: relayReceive(slot), count: Self.relayReceiveBytes)
        switch exchanges[s].machine.headForwarded(area: receive, headLength: head.headLength) {
        case .relay(let body):
            relay(slot, headCount: w.count, bodyCount: body)
        case let other:
            perform(other, slot)
        }
    }

    /// Sends `headCount` bytes of client head (if any) and `bodyCount` body bytes from the receive area.
    mutating func relay(_ slot: Int32, headCount: Int, bodyCount: Int) {
        let s = Int(slot)
        iovecs[2 * s] = iovec(iov_base: relayHead(slot), iov_len: headCount)
        iovecs[2 * s + 1] = iovec(iov_base: relayReceive(slot), iov_len: bodyCount)
        messages[s].msg_iovlen = 2
        connections[s].sendRemaining = Int64(headCount + bodyCount)
        connections[s].responseBytes += Int64(headCount + bodyCount)
        startTimer(slot, .send)
        submitSend(slot, as: .relay)
    }

    mutating func onRelaySent(_ slot: Int32, result: Int32) {
        let s = Int(slot)
        connections[s].state.sendCompleted()
        guard connections[s].phase == .proxying else {
            finishCloseIfQuiet(slot)
            return
        }
        guard result > 0 else {
            abort(slot)
            return
        }
        connections[s].sendRemaining -= Int64(result)
        if connections[s].sendRemaining > 0 {
            skipSent(slot, result)
            startTimer(slot, .send)
            submitSend(slot, as: .relay)
            return
        }
        if exchanges[s].link < 0 && !exchanges[s].machine.bodyComplete {
            abort(slot)
            return
        }
        perform(exchanges[s].machine.relayed(), slot)
    }

    /// The whole response is out: pool the upstream connection (when it can carry another
    /// request) and go on with the client's.
    mutating func finishExchange(_ slot: Int32, reusable: Bool) {
        let s = Int(slot)
        let link = exchanges[s].link
        let upstream = Int(exchanges[s].upstream)
        if link >= 0 {
            exchanges[s].link = -1
            if reusable { poolLink(link) } else { closeLink(link) }
        }
        metrics.countProxied(upstream: upstream, statusClass: Int(exchanges[s].machine.status))
        releaseExchange(slot)
        responseDone(slot, countStatus: false)
    }

    // MARK: - Failures

    /// 502 or 504 before any response byte reached the client; after that, the connection is cut.
    mutating func proxyFailed(_ slot: Int32, _ status: HTTPStatus, _ detail: StaticString) {
        let s = Int(slot)
        if exchanges[s].machine.isRelaying {
            abort(slot)
            return
        }
        let upstream = Int(exchanges[s].upstream)
        let link = exchanges[s].link
        if link >= 0 {
            // Its operation completes with an error once interrupted; the buffers wait for it.
            interrupt(link)
            connections[s].state.closeAfterResponse()
        } else {
            releaseExchange(slot)
        }
        metrics.countProxied(upstream: upstream, statusClass: Int(status.rawValue))
        respondProblem(slot, status, status == .gatewayTimeout ? "Gateway Timeout" : "Bad Gateway", detail)
    }

    /// The upstream timer expired for `slot`.
    mutating func upstreamTimedOut(_ slot: Int32) {
        let s = Int(slot)
        guard connections[s].phase == .proxying else { return abort(slot) }
        metrics.countProxied(upstream: Int(exchanges[s].upstream), .timeout)
        perform(exchanges[s].machine.timedOut(), slot)
    }

    /// Gives back the exchange's buffers once no upstream operation can touch them.
    mutating func releaseExchange(_ slot: Int32) {
        let s = Int(slot)
        if exchanges[s].link >= 0 && links[Int(exchanges[s].link)].inFlight { return }
        if exchanges[s].link >= 0 {
            closeLink(exchanges[s].link)
            exchanges[s].link = -1
        }
        if exchanges[s].request >= 0 {
            bodies.give(exchanges[s].request)
            exchanges[s].request = -1
        }
        if exchanges[s].relay >= 0 {
            relays.give(exchanges[s].relay)
            exchanges[s].relay = -1
        }
    }

    /// Whether an upstream operation of `slot`'s exchange is still in the ring.
    @inline(__always) func upstreamBusy(_ slot: Int32) -> Bool {
        let link = exchanges[Int(slot)].link
        return link >= 0 && links[Int(link)].inFlight
    }

    /// RFC 9457 problem details with a short `detail`.
    mutating func respondProblem(
        _ slot: Int32, _ status: HTTPStatus, _ title: StaticString, _ detail: StaticString,
        origin: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) {
        var w = headWriter(slot)
        w.append(status.statusLine)
        writeCommonHeaders(&w, slot, origin: origin, exposeHeaders: false)
        // The fixed JSON text is 56 bytes, the status 3.
        let length = 59 + title.utf8CodeUnitCount + detail.utf8CodeUnitCount
        w.append("Content-Type: application/problem+json\r\nContent-Length: ")
        w.append(decimal: Int64(length))
        w.appendCRLF()
        if status == .serviceUnavailable { w.append("Retry-After: 1\r\n") }
        w.appendCRLF()
        let bodyStart = w.count
        w.append("{\"type\":\"about:blank\",\"title\":\"")
        w.append(title)
        w.append("\",\"status\":")
        w.append(decimal: Int64(status.rawValue))
        w.append(",\"detail\":\"")
        w.append(detail)
        w.append("\"}\n")
        assert(w.count - bodyStart == length)
        connections[Int(slot)].status = status
        connections[Int(slot)].headCount = Int32(w.count)
        sendHead(slot, body: nil, bodyLength: 0)
    }

    // MARK: - Links and the keep-alive pool

    /// Keeps a link whose exchange ended whole for the next request to its upstream, watched by a
    /// poll that fires if the upstream closes it; closes it when draining or the pool is full.
    mutating func poolLink(_ link: Int32) {
        guard !draining, links.pool(link) else {
            closeLink(link)
            return
        }
        let l = Int(link)
        let sqe = ring.submissionEntry()
        io_uring_prep_poll_add(sqe, links[l].fd, UInt32(POLLIN) | 0x2000 /* POLLRDHUP */)
        io_uring_sqe_set_data64(sqe, UserData.make(.upstream, slot: link, generation: links[l].generation, step: UpstreamStep.idlePoll.rawValue))
    }

    /// Makes the link's operation in flight complete soon: a shutdown ends a send or receive; a
    /// connect to an address that does not answer is cancelled instead of waiting for TCP to give up.
    mutating func interrupt(_ link: Int32) {
        let l = Int(link)
        shutdown(links[l].fd, Int32(SHUT_RDWR))
        if links[l].state == .connecting && links[l].inFlight {
            let sqe = ring.submissionEntry()
            io_uring_prep_cancel64(sqe, UserData.make(.upstream, slot: link, generation: links[l].generation, step: UpstreamStep.connect.rawValue), 0)
            io_uring_sqe_set_data64(sqe, UserData.make(.ignored))
        }
    }

    /// Closes the connection and frees its entry. Only called when no operation of the link is in
    /// the ring, or one that holds no buffer (the idle poll, which the shutdown completes).
    mutating func closeLink(_ link: Int32) {
        let l = Int(link)
        guard links[l].state != .free else { return }
        releaseLinkTLS(link)
        shutdown(links[l].fd, Int32(SHUT_RDWR))
        Glibc.close(links[l].fd)
        _ = links.release(link)
    }

    // MARK: - Small writers

    /// A client-sent X-Request-ID is kept when it is short and plain (it lands in services' logs).
    static func isAcceptableRequestID(_ value: UnsafeRawBufferPointer) -> Bool {
        guard !value.isEmpty, value.count <= 128 else { return false }
        for b in value where !(b > 0x20 && b < 0x7F) || b == 0x22 || b == 0x2C { return false }
        return true
    }

    /// Writes an address as text without allocating (IPv4 dotted, IPv6 by inet_ntop).
    static func writeAddress(_ address: IPAddress, into w: inout ResponseWriter) {
        if let v4 = address.ipv4 {
            w.append(decimal: Int64(v4 >> 24))
            w.append(byte: 0x2E)
            w.append(decimal: Int64(v4 >> 16 & 0xFF))
            w.append(byte: 0x2E)
            w.append(decimal: Int64(v4 >> 8 & 0xFF))
            w.append(byte: 0x2E)
            w.append(decimal: Int64(v4 & 0xFF))
            return
        }
        var text: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        address.withNetworkOrder16 { raw in
            withUnsafeMutableBytes(of: &text) { out in
                let p = out.baseAddress!.assumingMemoryBound(to: CChar.self)
                if inet_ntop(AF_INET6, raw.baseAddress, p, 64) != nil {
                    w.append(UnsafeRawBufferPointer(start: out.baseAddress, count: strlen(p)))
                }
            }
        }
    }
}
