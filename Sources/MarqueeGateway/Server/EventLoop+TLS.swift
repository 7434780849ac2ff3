import CLinux
import CURing
import Glibc
import MarqueeHTTP
import MarqueeRing
import MarqueeTLS

/// HTTPS on the loop (`tls.*`). The ring moves ciphertext, OpenSSL works on the loop's buffers
/// (`TLSConnections`), and the HTTP code above sees plain bytes:
/// - Received ciphertext is decrypted a record at a time into `tlsPlaintext` and handed to
///   `consume`, as a plain receive is.
/// - Every send of a response (from memory, a relay) is encrypted into the slot's output buffer
///   and sent from there; its completion is reported to the same handler with the plaintext
///   count (`tlsDelivery`), so the response code does not know TLS is there.
/// - Files too large for memory are encrypted straight from their mapping (guarded against a
///   truncation, `MappedFileReads`), a fill still being written after `pread`, and sent a round of
///   up to 64 KB at a time: no splice (nothing for the kernel to do without kTLS).
/// - Records: a small response is one record; a large one's head has a record of its own, its
///   body's first 16 KB go in segment-sized records, the rest in 16 KB ones.
/// - The handshake's flights, session tickets and alerts go out the same way, with no delivery.
/// One send at a time per connection; what is produced meanwhile is appended and follows.
extension EventLoop {
    /// Plaintext encrypted per send of a response.
    static let tlsRoundBytes = 64 * 1024
    /// A slot's output buffer: a round's ciphertext, with room for what the protocol adds while
    /// it waits (tickets, alerts).
    static let tlsOutputBytes = TLSConnections.ciphertextBound(plaintext: tlsRoundBytes) + 16 * 1024
    /// One record's plaintext at most.
    static let tlsPlaintextBytes = 16 * 1024
    /// How much of a large response's body goes in segment-sized records
    /// (`TLSConnections.segmentRecordBytes`) before records grow to 16 KB: about a new TCP
    /// connection's first flight (an initial window of 10 segments and some), which the client
    /// can then decrypt as each segment arrives instead of waiting for a whole 16 KB record.
    static let tlsSegmentSizedBytes = 12 * TLSConnections.segmentRecordBytes

    /// Whether the slot's connection speaks TLS: the media listener's, when it has certificates
    /// (the redirect listener's speak plain HTTP).
    @inline(__always) func speaksTLS(_ slot: Int32) -> Bool { tls != nil && !connections[Int(slot)].redirectsToHTTPS }

    // MARK: - Output buffers

    /// Lends the slot an output buffer until everything in it is sent.
    @inline(__always) mutating func attachTLSOutput(_ slot: Int32) {
        let s = Int(slot)
        guard connections[s].tlsOutput < 0 else { return }
        let chunk = tlsOutputs.take()
        precondition(chunk >= 0, "a slot holds at most one TLS output chunk")
        connections[s].tlsOutput = chunk
        connections[s].tlsSent = 0
        tls!.setOutput(slot, tlsOutputs.pointer(chunk), capacity: Self.tlsOutputBytes, length: 0)
    }

    @inline(__always) mutating func releaseTLSOutput(_ slot: Int32) {
        let s = Int(slot)
        guard connections[s].tlsOutput >= 0 else { return }
        tlsOutputs.give(connections[s].tlsOutput)
        connections[s].tlsOutput = -1
        connections[s].tlsSent = 0
        tls!.setOutput(slot, nil, capacity: 0, length: 0)
    }

    /// Sends what the output buffer holds beyond what went out, unless a send is in the ring (its
    /// completion sends the rest). An empty buffer with nothing owed is given back.
    mutating func flushTLS(_ slot: Int32) {
        let s = Int(slot)
        guard !connections[s].tlsFlushing, connections[s].tlsOutput >= 0 else { return }
        let length = tls!.outputLength(slot)
        let sent = Int(connections[s].tlsSent)
        guard length > sent else {
            if connections[s].tlsDelivery == 0 { releaseTLSOutput(slot) }
            return
        }
        let sqe = ring.submissionEntry()
        io_uring_prep_send(sqe, connections[s].fd, tlsOutputs.pointer(connections[s].tlsOutput) + sent, length - sent, Int32(MSG_NOSIGNAL))
        io_uring_sqe_set_data64(sqe, UserData.make(.tls, slot: slot, generation: connections[s].generation))
        connections[s].tlsFlushing = true
        connections[s].state.sendSubmitted()
    }

    mutating func onTLSSent(_ slot: Int32, result: Int32) {
        let s = Int(slot)
        connections[s].tlsFlushing = false
        connections[s].state.sendCompleted()
        if result > 0 { connections[s].tlsSent += result }
        let delivery = connections[s].tlsDelivery
        let flushed = result > 0 && Int(connections[s].tlsSent) == tls!.outputLength(slot)
        if result > 0 && !flushed && connections[s].phase != .closing {
            // A short send: the rest follows. Progress restarts a response's send timeout.
            if delivery != 0 { startTimer(slot, .send) }
            flushTLS(slot)
            return
        }
        if flushed { releaseTLSOutput(slot) }
        if delivery != 0 {
            // The response's handler sees its plaintext go out whole, or a failure (a send cut
            // part-way counts none of its round).
            connections[s].tlsDelivery = 0
            let reported = flushed ? connections[s].tlsPlain : (result < 0 ? result : -ECONNABORTED)
            switch UserData.Kind(rawValue: delivery) {
            case .send: onSendComplete(slot, result: reported)
            case .relay: onRelaySent(slot, result: reported)
            case .stream: onTLSStreamSent(slot, result: reported)
            default: break
            }
            return
        }
        // The protocol's own output (a handshake flight, tickets, an alert).
        guard result > 0, connections[s].phase != .closing else {
            abort(slot)
            finishCloseIfQuiet(slot)
            return
        }
        if !tls!.isEstablished(slot) { advanceHandshake(slot) }
    }

    // MARK: - Receiving

    /// Ciphertext arrived: the handshake advances, or records are decrypted and handled as bytes.
    mutating func receiveTLS(_ slot: Int32, _ bytes: UnsafeRawBufferPointer) {
        let s = Int(slot)
        // A connection that is ending reads nothing more (as `consume` discards).
        guard connections[s].state.bytesAction != .discard else { return }
        let tls = tls!
        let generation = connections[s].generation
        tls.setInput(slot, bytes)
        defer { tls.setInput(slot, UnsafeRawBufferPointer(start: nil, count: 0)) }
        if !tls.isEstablished(slot) {
            if !connections[s].tlsHandshakeBegan {
                connections[s].tlsHandshakeBegan = true
                if Self.looksLikePlainHTTP(bytes) { return refusePlainHTTP(slot) }
            }
            guard advanceHandshake(slot) else { return }
        }
        attachTLSOutput(slot)
        // Consuming may answer, close or free the slot: each record checks it still belongs to
        // this connection.
        while connections[s].generation == generation, connections[s].phase != .closing, connections[s].phase != .free {
            switch tls.read(slot, into: UnsafeMutableRawBufferPointer(start: tlsPlaintext, count: Self.tlsPlaintextBytes)) {
            case .bytes(let count):
                consume(slot, UnsafeRawBufferPointer(start: tlsPlaintext, count: count))
                if connections[s].generation == generation, connections[s].phase != .free, !tls.hasMoreToRead(slot) {
                    flushTLS(slot)
                    return
                }
            case .wantsInput:
                flushTLS(slot)
                return
            case .closed:
                // close_notify: as a FIN. The rest of the response in progress still goes out.
                flushTLS(slot)
                if connections[s].state.finReceived() == .close { abort(slot) }
                return
            case .wantsOutput, .failed:
                // A peer that makes us write more than a buffer holds while it sends (KeyUpdate
                // floods), or a record that does not decrypt.
                metrics.add(.tlsFailures)
                abort(slot)
                return
            }
        }
    }

    /// Advances the handshake on what was received; true once it is established (application
    /// data may follow in the same input).
    @discardableResult
    mutating func advanceHandshake(_ slot: Int32) -> Bool {
        attachTLSOutput(slot)
        switch tls!.handshake(slot) {
        case .established:
            metrics.add(.tlsHandshakes)
            if tls!.wasResumed(slot) { metrics.add(.tlsResumptions) }
            return true
        case .wantsInput, .wantsOutput:
            // Our flight goes out; a full buffer resumes the handshake once it is sent.
            flushTLS(slot)
            return false
        case .failed:
            // A hello we refuse (an old version, no shared cipher), garbage, plain HTTP: the alert
            // OpenSSL wrote goes out if nothing else is in the ring, then the connection ends.
            metrics.add(.tlsHandshakeFailures)
            if !connections[Int(slot)].tlsFlushing { sendOutputNow(slot) }
            abort(slot)
            return false
        }
    }

    /// A request line's start (`GET /`, `OPTIONS *`): uppercase letters, then a space. A TLS
    /// connection starts with a handshake record (0x16) instead.
    static func looksLikePlainHTTP(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var letters = 0
        for byte in bytes.prefix(8) {
            if byte == UInt8(ascii: " ") { return letters >= 3 }
            guard byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") else { return false }
            letters += 1
        }
        return false
    }

    /// Plain HTTP sent to the HTTPS port: a 400 in plain HTTP saying so, then a graceful close.
    mutating func refusePlainHTTP(_ slot: Int32) {
        metrics.add(.tlsHandshakeFailures)
        let message: StaticString =
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 48\r\nConnection: close\r\n\r\nthis port speaks HTTPS: use an https:// address\n"
        _ = Glibc.send(connections[Int(slot)].fd, message.utf8Start, message.utf8CodeUnitCount, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
        closeGracefully(slot)
    }

    // MARK: - Sending

    /// Encrypts the next part of the slot's message (its head and body iovecs, at most a round)
    /// and sends it; `kind`'s handler gets the completion with the plaintext count.
    mutating func sendEncrypted(_ slot: Int32, as kind: UserData.Kind) {
        let s = Int(slot)
        attachTLSOutput(slot)
        let budget = Int(min(connections[s].sendRemaining, Int64(Self.tlsRoundBytes)))
        var taken = 0
        let head = iovecs[2 * s], body = iovecs[2 * s + 1]
        if let headBase = head.iov_base, let bodyBase = body.iov_base, head.iov_len > 0, body.iov_len > 0,
            head.iov_len + body.iov_len <= min(budget, Self.tlsPlaintextBytes)
        {
            // A small response whole (a playlist, an error, an answer from /api): one record,
            // as nginx's buffered writes make, instead of one for the head and one for the body.
            tlsPlainScratch.copyMemory(from: headBase, byteCount: head.iov_len)
            (tlsPlainScratch + head.iov_len).copyMemory(from: bodyBase, byteCount: body.iov_len)
            taken = head.iov_len + body.iov_len
            guard tls!.write(slot, UnsafeRawBufferPointer(start: tlsPlainScratch, count: taken)) else {
                metrics.add(.tlsFailures)
                abort(slot)
                return
            }
        } else {
            // A response's start (its head still to go): the head in a record of its own, then
            // the body's first records segment-sized.
            let starts = head.iov_len > 0
            for k in 0..<2 where taken < budget {
                let part = iovecs[2 * s + k]
                guard let base = part.iov_base, part.iov_len > 0 else { continue }
                let count = min(part.iov_len, budget - taken)
                let segmentSized = starts && k == 1 ? Self.tlsSegmentSizedBytes : 0
                guard tls!.write(slot, UnsafeRawBufferPointer(start: base, count: count), segmentSized: segmentSized) else {
                    metrics.add(.tlsFailures)
                    abort(slot)
                    return
                }
                taken += count
            }
        }
        if kind == .send && Int64(taken) == connections[s].sendRemaining { closeNotifyAfterLastResponse(slot) }
        connections[s].tlsDelivery = kind.rawValue
        connections[s].tlsPlain = Int32(taken)
        flushTLS(slot)
    }

    /// Bytes sent outside any response (`100 Continue`): encrypted and queued.
    mutating func sendEncryptedInterim(_ slot: Int32, _ bytes: UnsafeRawBufferPointer) {
        attachTLSOutput(slot)
        guard tls!.write(slot, bytes) else {
            abort(slot)
            return
        }
        flushTLS(slot)
    }

    /// A round of a file's response: the head (first round only), then up to a round of the
    /// file read at the response's offset. A fill's head leaves alone, at once (the time to
    /// first byte of a miss); a fill with nothing new waits for it.
    mutating func submitTLSStreamRound(_ slot: Int32, head: Bool) {
        let s = Int(slot)
        let end = connections[s].streamsFill ? min(connections[s].bodyEnd, fills[s]!.available) : connections[s].bodyEnd
        if !head && connections[s].bodyOffset >= end {
            awaitFill(slot)
            return
        }
        attachTLSOutput(slot)
        var plain = 0
        if head {
            let headCount = Int(connections[s].headCount)
            guard tls!.write(slot, UnsafeRawBufferPointer(start: responseMemory(slot), count: headCount)) else {
                metrics.add(.tlsFailures)
                return abort(slot)
            }
            plain = headCount
        }
        if !(head && connections[s].streamsFill) && connections[s].bodyOffset < end {
            let wanted = Int(min(end - connections[s].bodyOffset, Int64(Self.tlsRoundBytes - plain)))
            let entry = connections[s].entry
            // The body's first bytes (after the head's round, for a fill) in segment-sized records.
            let bodyStarts = head || connections[s].sentBytes == Int64(connections[s].headCount)
            let segmentSized = bodyStarts ? Self.tlsSegmentSizedBytes : 0
            let written: Bool
            let count: Int
            if !connections[s].streamsFill, let mapping = files.entries[Int(entry)].mapping {
                // One copy: OpenSSL encrypts from the file's page-cache pages into the output.
                let range = UnsafeRawBufferPointer(start: mapping + Int(connections[s].bodyOffset), count: wanted)
                let guarded = MappedFileReads.guarding(range) { tls!.write(slot, range, segmentSized: segmentSized) }
                // A page past the file's end: it shrank under the Content-Length it was promised
                // with, and the records made from zeros are not sent.
                if guarded.faulted {
                    files.dropMapping(entry)
                    return abort(slot)
                }
                (written, count) = (guarded.result, wanted)
            } else {
                let fd = connections[s].streamsFill ? fills[s]!.fd : files.entries[Int(entry)].fd
                count = pread(fd, tlsPlainScratch, wanted, off_t(connections[s].bodyOffset))
                // Nothing read: the file shrank under the Content-Length it was promised with.
                guard count > 0 else { return abort(slot) }
                written = tls!.write(slot, UnsafeRawBufferPointer(start: tlsPlainScratch, count: count), segmentSized: segmentSized)
            }
            guard written else {
                metrics.add(.tlsFailures)
                return abort(slot)
            }
            connections[s].bodyOffset += Int64(count)
            plain += count
        }
        if connections[s].bodyOffset == connections[s].bodyEnd { closeNotifyAfterLastResponse(slot) }
        connections[s].tlsDelivery = UserData.Kind.stream.rawValue
        connections[s].tlsPlain = Int32(plain)
        flushTLS(slot)
    }

    mutating func onTLSStreamSent(_ slot: Int32, result: Int32) {
        let s = Int(slot)
        connections[s].state.sendCompleted()
        guard connections[s].phase == .responding else {
            finishCloseIfQuiet(slot)
            return
        }
        guard result > 0 else { return abort(slot) }
        connections[s].sentBytes += Int64(result)
        if connections[s].bodyOffset == connections[s].bodyEnd {
            responseDone(slot)
        } else {
            startTimer(slot, .send)  // progress made: the send timeout starts over
            submitTLSStreamRound(slot, head: false)
        }
    }

    // MARK: - The redirect listener

    /// A request on the plain listener (`tls.redirect_listen`): `308 Permanent Redirect` to the
    /// same target over HTTPS, on the host the client named and the HTTPS listener's port.
    mutating func redirectToHTTPS(_ slot: Int32, _ head: RequestHead, _ buffer: UnsafeRawBufferPointer) {
        let target = head.target.bytes(in: buffer)
        var host = head.host.bytes(in: buffer)
        // The name without its port (`[::1]:80` keeps `[::1]`).
        if let colon = host.lastIndex(of: UInt8(ascii: ":")), !host[colon...].contains(UInt8(ascii: "]")) {
            host = UnsafeRawBufferPointer(rebasing: host[..<colon])
        }
        let hostIsClean = host.allSatisfy { byte in
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]")
                || byte == UInt8(ascii: ":")
        }
        guard !host.isEmpty, hostIsClean else {
            respondWithError(slot, HTTPError(.badRequest, "a Host field naming the server is needed to redirect to HTTPS"), close: true)
            return
        }
        guard target.first == UInt8(ascii: "/") else {
            respondWithError(slot, HTTPError(.badRequest, "only origin-form targets (/path) are redirected to HTTPS"), close: true)
            return
        }
        // Room for the status line, the common fields and the Location around host and target.
        guard host.count + target.count <= Self.headBytes - 1024 else {
            respondWithError(slot, HTTPError(.uriTooLong, "target too long to redirect"), close: false)
            return
        }
        var w = headWriter(slot)
        w.append(HTTPStatus.permanentRedirect.statusLine)
        w.append("Location: https://")
        w.append(host)
        if httpsPort != 443 {
            w.append(byte: UInt8(ascii: ":"))
            w.append(decimal: Int64(httpsPort))
        }
        w.append(target)
        w.appendCRLF()
        writeCommonHeaders(&w, slot, origin: UnsafeRawBufferPointer(start: nil, count: 0), exposeHeaders: false)
        w.append("Content-Length: 0\r\n\r\n")
        connections[Int(slot)].status = .permanentRedirect
        connections[Int(slot)].headCount = Int32(w.count)
        sendHead(slot, body: nil, bodyLength: 0)
    }

    // MARK: - Closing

    /// The connection's last response (`Connection: close`) was just encrypted whole: its
    /// close_notify follows in the same send, saving the close its own.
    @inline(__always) mutating func closeNotifyAfterLastResponse(_ slot: Int32) {
        let s = Int(slot)
        // The rule the response's end follows (`AfterResponse`): this response closes the connection.
        guard AfterResponse.decide(keepAlive: connections[s].keepAlive, peerClosed: connections[s].peerClosed, hasInput: false) == .closeGracefully
        else { return }
        tls!.shutdown(slot)
        connections[s].tlsCloseNotified = true
    }

    /// Before our side shuts down after a final response: a close_notify, sent at once if the
    /// socket takes it (nothing else is in flight then; a full socket just goes without).
    mutating func sendCloseNotify(_ slot: Int32) {
        let s = Int(slot)
        guard let tls, tls.isOpen(slot), tls.isEstablished(slot), !connections[s].tlsFlushing, !connections[s].tlsCloseNotified else { return }
        attachTLSOutput(slot)
        tls.shutdown(slot)
        sendOutputNow(slot)
        releaseTLSOutput(slot)
    }

    /// What the output buffer holds beyond what went out, sent at once without the ring (an
    /// alert or a close_notify just before the connection ends; a full socket goes without).
    /// Only when no send of the slot is in the ring.
    mutating func sendOutputNow(_ slot: Int32) {
        let s = Int(slot)
        guard connections[s].tlsOutput >= 0 else { return }
        let sent = Int(connections[s].tlsSent)
        let pending = tls!.outputLength(slot) - sent
        guard pending > 0 else { return }
        _ = Glibc.send(connections[s].fd, tlsOutputs.pointer(connections[s].tlsOutput) + sent, pending, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
    }

    /// The slot is released: its TLS connection and buffer go too.
    @inline(__always) mutating func releaseTLS(_ slot: Int32) {
        guard let tls else { return }
        releaseTLSOutput(slot)
        tls.close(slot)
    }
}
