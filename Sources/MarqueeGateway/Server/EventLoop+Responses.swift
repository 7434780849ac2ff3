import CLinux
import CURing
import Glibc
import MarqueeBus
import MarqueeHTTP
import MarqueeRing
import MarqueeTokens

extension EventLoop {
    /// The memory of the slot's response (head, then record), lent from the pool at first use
    /// and given back by `responseDone` or the close.
    @inline(__always) mutating func responseMemory(_ slot: Int32) -> UnsafeMutableRawPointer {
        let s = Int(slot)
        if connections[s].response < 0 {
            connections[s].response = responses.take()
            precondition(connections[s].response >= 0, "a slot holds at most one response chunk")
        }
        return responses.pointer(connections[s].response)
    }

    @inline(__always) mutating func headWriter(_ slot: Int32) -> ResponseWriter {
        ResponseWriter(base: responseMemory(slot), capacity: Self.headBytes)
    }

    /// Answers one parsed request. `buffer` holds the head; it is not used after this returns.
    mutating func respond(_ slot: Int32, to head: RequestHead, in buffer: UnsafeRawBufferPointer) {
        // What a media request leaves for its record points into this call's buffers only.
        media.active = false
        defer { media.active = false }
        connections[Int(slot)].state.setKeepAlive(head.keepAlive && !head.hasBody && !draining)
        connections[Int(slot)].isHTTP10 = !head.isHTTP11
        if connections[Int(slot)].redirectsToHTTPS {
            redirectToHTTPS(slot, head, buffer)
            return
        }
        if let routes {
            switch routes.match(head.path.bytes(in: buffer)) {
            case .none: break
            case .upstream(let upstream):
                connections[Int(slot)].responseBytes = 0
                proxy(slot, head, buffer, upstream: upstream)
                return
            case .unknownService:
                respondProblem(slot, .notFound, "Not Found", "no such service", origin: head.origin.bytes(in: buffer))
                return
            }
        }
        switch head.method {
        case .get, .head:
            serveFile(slot, head, buffer)
        case .options:
            answerOptions(slot, head, buffer)
        default:
            respondWithError(
                slot, HTTPError(.methodNotAllowed, "only GET, HEAD and OPTIONS are served"), close: false,
                origin: head.origin.bytes(in: buffer))
        }
    }

    // MARK: - Files

    mutating func serveFile(_ slot: Int32, _ head: RequestHead, _ buffer: UnsafeRawBufferPointer) {
        let origin = head.origin.bytes(in: buffer)
        // A signed path (`/t/<token>/titles/...`) or a `token` query parameter.
        var raw = head.path.bytes(in: buffer)
        var token = UnsafeRawBufferPointer(start: nil, count: 0)
        var placement: URLToken.Placement?
        if raw.count > 3 && raw[0] == UInt8(ascii: "/") && raw[1] == UInt8(ascii: "t") && raw[2] == UInt8(ascii: "/") {
            var slash = 3
            while slash < raw.count && raw[slash] != UInt8(ascii: "/") { slash += 1 }
            guard slash < raw.count else {
                respondWithError(slot, HTTPError(.forbidden, "signed path names no file after the token"), close: false, origin: origin)
                return
            }
            token = UnsafeRawBufferPointer(rebasing: raw[3..<slash])
            raw = UnsafeRawBufferPointer(rebasing: raw[slash...])
            placement = .path
        } else if let found = Self.queryToken(head.query.bytes(in: buffer)) {
            token = found
            placement = .query
        }
        let scratch = UnsafeMutableRawBufferPointer(start: pathScratch + 1, count: configuration.maxPathBytes + 1)
        var length: Int
        switch RequestPath.decode(raw, into: scratch, maxLength: configuration.maxPathBytes) {
        case .refused(let error):
            respondWithError(slot, error, close: error.status == .badRequest, origin: origin)
            return
        case .relative(let decodedLength):
            length = decodedLength
        }
        // A folder's address (`/player/`) serves its index.html, as web servers do.
        if raw.last == UInt8(ascii: "/") {
            let index: StaticString = "index.html"
            let separator = length > 0 ? 1 : 0
            guard length + separator + index.utf8CodeUnitCount <= configuration.maxPathBytes else {
                respondWithError(slot, HTTPError(.uriTooLong, "path too long"), close: false, origin: origin)
                return
            }
            if separator == 1 { scratch[length] = UInt8(ascii: "/") }
            UnsafeMutableRawBufferPointer(rebasing: scratch[(length + separator)...]).copyMemory(
                from: UnsafeRawBufferPointer(start: index.utf8Start, count: index.utf8CodeUnitCount))
            length += separator + index.utf8CodeUnitCount
            scratch[length] = 0
        }
        noteMediaRequest(slot, head, buffer, path: UnsafeRawBufferPointer(start: pathScratch + 1, count: length))
        var credentials = Credentials(
            token: token, absolutePath: UnsafeRawBufferPointer(start: pathScratch, count: length + 1),
            relativePath: UnsafeRawBufferPointer(start: pathScratch + 1, count: length))
        // A request resumed after a fetch was admitted before it parked.
        let fetched = connections[Int(slot)].parking.takeFetchOutcome()
        if fetched == nil {
            switch admitEdge(slot, head, buffer, credentials.absolutePath, origin: origin) {
            case .trusted: break
            case .answered: return
            case .player:
                switch admit(slot, head, buffer, &credentials, origin: origin) {
                case .proceed: break
                case .answered, .parked: return
                }
            }
        } else {
            unstageRecord(slot)
        }
        if let readThrough, readThrough.purgeEpoch != purgeEpochSeen {
            // A purge removed files: every open one is checked on disk before it is served again.
            purgeEpochSeen = readThrough.purgeEpoch
            files.expireAll()
        }
        let e: Int32
        let relativePath = UnsafeRawBufferPointer(start: pathScratch + 1, count: length)
        switch files.acquire(relativePath, now: nowMilliseconds) {
        case .failed(let error):
            if error.status == .notFound, readThrough != nil {
                fetchMissing(slot, head, buffer, UnsafeRawBufferPointer(start: pathScratch + 1, count: length), after: fetched, origin: origin)
            } else {
                respondWithError(slot, error, close: false, origin: origin)
            }
            return
        case .entry(let found):
            e = found
            // A fill that ended between its answer and this parse: its file is in place.
            if fetched == .streaming { fills[Int(slot)] = nil }
            media.objectSize = files.entries[Int(e)].size
            if readThrough != nil { media.cache = fetched == nil ? .hit : .miss }
            if let readThrough, fetched == nil {
                metrics.add(.readThroughHits)
                if files.checkedDisk { readThrough.touch(loop: id, hash: files.entries[Int(e)].hash) }
                // An expiring copy (an edge's) past its freshness is refreshed before it is served;
                // within stale-while-revalidate it is served and refreshed behind. The answer is
                // remembered on the open file until it lapses: one compare per hit (a replaced
                // file is a new entry, which asks again).
                let now = wallMilliseconds
                if now >= files.entries[Int(e)].freshUntil {
                    let (decision, until, refresh) = readThrough.decision(relativePath, now: now)
                    files.entries[Int(e)].freshUntil = until
                    if let refresh { startFill(refresh) }
                    if decision == .refresh {
                        files.expire(e)
                        files.release(e)
                        metrics.add(.readThroughRefreshes)
                        fetchMissing(slot, head, buffer, relativePath, after: nil, origin: origin)
                        return
                    }
                }
            }
            if let readThrough, let fetched, fetched != .stored, fetched != .streaming,
                !readThrough.mayServeStale(relativePath, now: wallMilliseconds)
            {
                // The refresh of a stale copy failed, and stale-if-error does not cover it.
                files.release(e)
                respondToFailedFetch(slot, fetched, origin: origin)
                return
            }
        }
        if let placement, files.entries[Int(e)].mediaType.cacheClass == .manifest,
            serveRewrittenManifest(slot, head, buffer, entry: e, placement: placement, token: token, origin: origin)
        {
            return
        }
        let entry = files.entries[Int(e)]
        guard
            let planned = writeObjectHead(
                slot, head, buffer, size: entry.size, modifiedSeconds: entry.modifiedSeconds, etag: files.etag(e),
                mediaType: entry.mediaType, origin: origin)
        else {
            files.release(e)
            return
        }
        let first = planned.first
        let count = planned.count
        if head.method == .head || count == 0 {
            files.release(e)
            sendHead(slot, body: nil, bodyLength: 0)
        } else if let body = entry.body ?? (speaksTLS(slot) ? nil : entry.mapping) {
            // Pinned until the send completes (the body is sent from the cache's memory or mapping).
            connections[Int(slot)].entry = e
            sendHead(slot, body: body + Int(first), bodyLength: Int(count))
        } else {
            connections[Int(slot)].entry = e
            connections[Int(slot)].bodyOffset = first
            connections[Int(slot)].bodyEnd = first + count
            connections[Int(slot)].responseBytes = Int64(connections[Int(slot)].headCount) + count
            startStream(slot)
        }
    }

    /// The parts of an object a response sends: `count` bytes from `first`.
    struct ObjectSpan {
        var first: Int64
        var count: Int64
    }

    /// Evaluates a GET or HEAD of an object (conditionals, then a range) and writes its response
    /// head into the slot; the status is in the slot. Returns nil when a refusal (412, 416) was
    /// sent instead. Hits and streaming fills share it.
    @inline(__always)
    mutating func writeObjectHead(
        _ slot: Int32, _ head: RequestHead, _ buffer: UnsafeRawBufferPointer, size: Int64, modifiedSeconds: Int64,
        etag: UnsafeRawBufferPointer, mediaType: MediaType, origin: UnsafeRawBufferPointer
    ) -> ObjectSpan? {
        var first: Int64 = 0
        var count = size
        var status = HTTPStatus.ok
        switch Conditionals.evaluate(head, in: buffer, etag: etag, lastModified: modifiedSeconds) {
        case .preconditionFailed:
            respondWithError(slot, HTTPError(.preconditionFailed, "precondition failed"), close: false, origin: origin)
            return nil
        case .notModified:
            status = .notModified
            count = 0
        case .proceed(let honourRange):
            if honourRange {
                switch ByteRange.evaluate(head.range.bytes(in: buffer), length: size) {
                case .whole:
                    break
                case .partial(let from, let to):
                    status = .partialContent
                    first = from
                    count = to - from + 1
                    media.rangeFirst = from
                    media.rangeLast = to
                case .unsatisfiable:
                    respondWithError(
                        slot, HTTPError(.rangeNotSatisfiable, "range not satisfiable"), close: false, origin: origin,
                        unsatisfiedLength: size)
                    return nil
                }
            }
        }

        var w = headWriter(slot)
        w.append(status.statusLine)
        writeCommonHeaders(&w, slot, origin: origin, exposeHeaders: true)
        w.append("Content-Type: ")
        w.append(mediaType.contentType)
        w.appendCRLF()
        if status != .notModified {
            w.append("Content-Length: ")
            w.append(decimal: count)
            w.appendCRLF()
        }
        w.append("Last-Modified: ")
        HTTPDate.format(modifiedSeconds, into: w.base + w.count)
        w.count += HTTPDate.length
        w.appendCRLF()
        w.append("ETag: ")
        w.append(etag)
        w.appendCRLF()
        switch mediaType.cacheClass {
        case .manifest: headerLines.cacheControlManifest.withUnsafeBytes { w.append($0) }
        case .segment: headerLines.cacheControlSegment.withUnsafeBytes { w.append($0) }
        case .other: headerLines.cacheControlOther.withUnsafeBytes { w.append($0) }
        }
        w.append("Accept-Ranges: bytes\r\n")
        if status == .partialContent {
            w.append("Content-Range: bytes ")
            w.append(decimal: first)
            w.append(byte: 0x2D)
            w.append(decimal: first + count - 1)
            w.append(byte: 0x2F)
            w.append(decimal: size)
            w.appendCRLF()
        }
        w.appendCRLF()
        connections[Int(slot)].status = status
        connections[Int(slot)].headCount = Int32(w.count)

        return ObjectSpan(first: first, count: count)
    }

    /// Date, Server, CORS and Connection lines shared by every response.
    func writeCommonHeaders(_ w: inout ResponseWriter, _ slot: Int32, origin: UnsafeRawBufferPointer, exposeHeaders: Bool) {
        w.append(UnsafeRawBufferPointer(start: dateLine, count: Self.dateLineBytes))
        w.append("Server: marquee\r\n")
        if !headerLines.strictTransportSecurity.isEmpty && speaksTLS(slot) { headerLines.strictTransportSecurity.withUnsafeBytes { w.append($0) } }
        if !origin.isEmpty && writeAllowOrigin(&w, origin) && exposeHeaders {
            w.append("Access-Control-Expose-Headers: Content-Length, Content-Range, Accept-Ranges, ETag, Date\r\n")
        }
        if connections[Int(slot)].reportedLimit >= 0, let policy {
            let c = connections[Int(slot)]
            Self.writeRateLimitHeaders(&w, policy, limit: Int(c.reportedLimit), remaining: Int(c.reportedRemaining), resetMicros: c.reportedResetMicros)
            connections[Int(slot)].reportedLimit = -1
        }
        if !connections[Int(slot)].keepAlive {
            w.append("Connection: close\r\n")
        } else if connections[Int(slot)].isHTTP10 {
            w.append("Connection: keep-alive\r\n")
        }
    }

    /// Writes Access-Control-Allow-Origin when `origin` may read the response.
    func writeAllowOrigin(_ w: inout ResponseWriter, _ origin: UnsafeRawBufferPointer) -> Bool {
        switch headerLines.cors {
        case .disabled:
            return false
        case .anyOrigin:
            w.append("Access-Control-Allow-Origin: *\r\n")
            return true
        case .origins(let allowed):
            for candidate in allowed where candidate.elementsEqual(origin) {
                w.append("Access-Control-Allow-Origin: ")
                w.append(origin)
                w.append("\r\nVary: Origin\r\n")
                return true
            }
            w.append("Vary: Origin\r\n")
            return false
        }
    }

    // MARK: - OPTIONS

    mutating func answerOptions(_ slot: Int32, _ head: RequestHead, _ buffer: UnsafeRawBufferPointer) {
        var w = headWriter(slot)
        w.append(HTTPStatus.noContent.statusLine)
        let origin = head.origin.bytes(in: buffer)
        if !origin.isEmpty && head.accessControlRequestMethod.isPresent {
            // CORS preflight
            writeCommonHeaders(&w, slot, origin: origin, exposeHeaders: false)
            w.append("Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n")
            let requested = head.accessControlRequestHeaders.bytes(in: buffer)
            if !requested.isEmpty && requested.count <= 512 {
                w.append("Access-Control-Allow-Headers: ")
                w.append(requested)
                w.appendCRLF()
            }
            headerLines.corsMaxAge.withUnsafeBytes { w.append($0) }
        } else {
            writeCommonHeaders(&w, slot, origin: origin, exposeHeaders: false)
            w.append("Allow: GET, HEAD, OPTIONS\r\n")
        }
        w.append("Content-Length: 0\r\n\r\n")
        connections[Int(slot)].status = .noContent
        connections[Int(slot)].headCount = Int32(w.count)
        sendHead(slot, body: nil, bodyLength: 0)
    }

    // MARK: - Errors

    /// A short plain-text error that says what was wrong. With `close`, the connection ends after it
    /// (the request's framing can no longer be trusted).
    mutating func respondWithError(
        _ slot: Int32, _ error: HTTPError, close: Bool, origin: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        unsatisfiedLength: Int64 = -1
    ) {
        if close { connections[Int(slot)].state.closeAfterResponse() }
        let body = UnsafeRawBufferPointer(start: error.reason.utf8Start, count: error.reason.utf8CodeUnitCount)
        respondRefusal(slot, error.status, body: body, newline: true, origin: origin) { w in
            switch error.status {
            case .methodNotAllowed: w.append("Allow: GET, HEAD, OPTIONS\r\n")
            case .rangeNotSatisfiable:
                w.append("Content-Range: bytes */")
                w.append(decimal: unsatisfiedLength)
                w.appendCRLF()
            case .serviceUnavailable: w.append("Retry-After: 1\r\n")
            default: break
            }
        }
    }

    /// A refusal with a short plain-text body (at most the head buffer's room) and any extra
    /// header lines `extra` writes.
    mutating func respondRefusal(
        _ slot: Int32, _ status: HTTPStatus, body: UnsafeRawBufferPointer, newline: Bool = false, origin: UnsafeRawBufferPointer,
        extra: (inout ResponseWriter) -> Void = { _ in }
    ) {
        var w = headWriter(slot)
        w.append(status.statusLine)
        writeCommonHeaders(&w, slot, origin: origin, exposeHeaders: true)
        w.append("Content-Type: text/plain; charset=utf-8\r\nContent-Length: ")
        w.append(decimal: Int64(body.count + (newline ? 1 : 0)))
        w.appendCRLF()
        extra(&w)
        w.appendCRLF()
        let headBytes = Int32(w.count)
        w.append(body)
        if newline { w.append(byte: 0x0A) }
        connections[Int(slot)].status = status
        connections[Int(slot)].headCount = Int32(w.count)
        sendHead(slot, body: nil, bodyLength: 0, headBytes: headBytes)
    }

    // MARK: - Sending from memory

    static let firstSendBodyBytes = 64 * 1024

    /// Sends the head written for `slot` and an optional body from memory in one sendmsg.
    /// `headBytes`: how much of the slot's head buffer is head when a short body was written
    /// after it (refusals); -1 when all of it is.
    mutating func sendHead(_ slot: Int32, body: UnsafeRawPointer?, bodyLength: Int, headBytes: Int32 = -1) {
        let s = Int(slot)
        let head = responseMemory(slot)
        let headCount = Int(connections[s].headCount)
        beginRecord(slot, headBytes: headBytes >= 0 ? headBytes : Int32(headCount))
        connections[s].sendRemaining = Int64(headCount) + Int64(bodyLength)
        connections[s].responseBytes = connections[s].sendRemaining
        connections[s].state.respond()
        startTimer(slot, .send)
        if let body, headCount + bodyLength > Self.headBytes {
            iovecs[2 * s] = iovec(iov_base: head, iov_len: headCount)
            // The first send takes the head and at most `firstSendBodyBytes`: the kernel pushes a
            // send's bytes to the wire when it ends, and one sendmsg of a whole segment over a
            // keep-alive connection (whose window has grown) held the first byte back by ~1 ms.
            // The rest follows as after a short send.
            iovecs[2 * s + 1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: body), iov_len: min(bodyLength, Self.firstSendBodyBytes))
            messages[s].msg_iovlen = 2
            submitSend(slot)
            return
        }
        // Head and body fit in the slot's buffer (playlists, manifests, errors): one plain send,
        // which the kernel takes without copying in a message header and iovec array.
        if let body { (head + headCount).copyMemory(from: body, byteCount: bodyLength) }
        let total = headCount + bodyLength
        iovecs[2 * s] = iovec(iov_base: head, iov_len: total)
        iovecs[2 * s + 1] = iovec(iov_base: nil, iov_len: 0)
        messages[s].msg_iovlen = 1
        if speaksTLS(slot) {
            sendEncrypted(slot, as: .send)
            return
        }
        let sqe = ring.submissionEntry()
        io_uring_prep_send(sqe, connections[s].fd, head, total, Int32(MSG_NOSIGNAL | MSG_WAITALL))
        io_uring_sqe_set_data64(sqe, UserData.make(.send, slot: slot, generation: connections[s].generation))
        connections[s].state.sendSubmitted()
    }

    /// Without MSG_WAITALL: a large body to a slow reader comes back in parts, and each part
    /// restarts the send timeout, so only a client that stops reading is cut off.
    /// Sends the slot's message (head and body iovecs); `kind` says whose completion it is
    /// (a response of ours, or a relayed upstream answer).
    mutating func submitSend(_ slot: Int32, as kind: UserData.Kind = .send) {
        if speaksTLS(slot) {
            sendEncrypted(slot, as: kind)
            return
        }
        let sqe = ring.submissionEntry()
        io_uring_prep_sendmsg(sqe, connections[Int(slot)].fd, messages + Int(slot), UInt32(MSG_NOSIGNAL))
        io_uring_sqe_set_data64(sqe, UserData.make(kind, slot: slot, generation: connections[Int(slot)].generation))
        connections[Int(slot)].state.sendSubmitted()
    }

    /// After a short send: skips the `sent` bytes that went out in the slot's two iovecs.
    @inline(__always) func skipSent(_ slot: Int32, _ sent: Int32) {
        let s = Int(slot)
        var left = Int(sent)
        for k in 0..<2 {
            let consumed = min(left, iovecs[2 * s + k].iov_len)
            iovecs[2 * s + k].iov_base = iovecs[2 * s + k].iov_base.map { $0 + consumed }
            iovecs[2 * s + k].iov_len -= consumed
            left -= consumed
        }
    }

    mutating func onSendComplete(_ slot: Int32, result: Int32) {
        let s = Int(slot)
        connections[s].state.sendCompleted()
        // Counted even when the connection is being cut: the record says what went out.
        if result > 0 { connections[s].sentBytes += Int64(result) }
        guard connections[s].phase == .responding else {
            finishCloseIfQuiet(slot)
            return
        }
        guard result > 0 else {
            abort(slot)
            return
        }
        connections[s].sendRemaining -= Int64(result)
        if connections[s].sendRemaining > 0 {
            // A short send, or the first part of a large body: skip what went out and send the rest.
            skipSent(slot, result)
            iovecs[2 * s + 1].iov_len = Int(connections[s].sendRemaining) - iovecs[2 * s].iov_len
            startTimer(slot, .send)
            submitSend(slot)
            return
        }
        responseDone(slot)
    }

    /// The response is out: count it, release what it held, and go on with the connection.
    mutating func responseDone(_ slot: Int32, countStatus: Bool = true) {
        let s = Int(slot)
        endRecord(slot, aborted: false)
        if connections[s].response >= 0 {
            responses.give(connections[s].response)
            connections[s].response = -1
        }
        if countStatus { metrics.count(connections[s].status) }
        metrics.add(.bytesSent, UInt64(connections[s].responseBytes))
        metrics.observeLatency(microseconds: (nowNanoseconds &- connections[s].requestStartNanoseconds) / 1000)
        if connections[s].entry >= 0 {
            files.release(connections[s].entry)
            connections[s].entry = -1
        }
        if connections[s].streamsFill { releaseFill(slot) }
        if connections[s].body >= 0 {
            bodies.give(connections[s].body)
            connections[s].body = -1
        }
        if connections[s].pipe >= 0 {
            pipes.give(connections[s].pipe)
            connections[s].pipe = -1
            servePipeWaiters()
        }
        stopTimer(slot)
        switch connections[s].state.responseEnded(hasInput: connections[s].inputCount > 0) {
        case .closeGracefully:
            closeGracefully(slot)
        case .parseNext:
            startTimer(slot, .header)
            processInput(slot, inputBytes(slot), fromInput: true)
        case .awaitRequest:
            startTimer(slot, .idle)
        }
    }
}
