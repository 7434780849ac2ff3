import CLinux
import CURing
import Glibc
import MarqueeRing
import MarqueeTLS

/// Cache fills from `https://` upstreams: the same exchange as over plain HTTP
/// (`EventLoop+UpstreamFills`), with TLS between it and the ring. Each link to such an upstream
/// has an `SSL` (client side, verifying the upstream's certificate against `edge.upstream_ca_file`
/// or the system's CAs, for the name in its URL) and buffers from the loop's pool: ciphertext
/// received, and ciphertext to send.
/// - Connected: the handshake runs on the ring (flights out, answers in); once established the
///   exchange is told it connected, and its request leaves with the client's Finished.
/// - The exchange's sends are encrypted and sent whole; it hears of them with the plaintext count.
/// - Its receives decrypt straight into the fill's area, at the offset it asked for. Records
///   already received are decrypted without a ring operation.
/// - A pooled link keeps its session: the next fill on it sends at once.
extension EventLoop {
    static let linkTLSInputBytes = 32 * 1024
    static let linkTLSOutputBytes = 16 * 1024

    @inline(__always) func linkSpeaksTLS(_ link: Int32) -> Bool {
        upstreamTLSNames[Int(links[Int(link)].upstream)] != nil
    }

    @inline(__always) func linkTLSInput(_ link: Int32) -> UnsafeMutableRawPointer { linkTLSBuffers.pointer(links[Int(link)].tlsBuffer) }

    @inline(__always) func linkTLSOutput(_ link: Int32) -> UnsafeMutableRawPointer { linkTLSInput(link) + Self.linkTLSInputBytes }

    /// The TCP connection is up: a TLS session for it, and its handshake begins.
    mutating func startLinkHandshake(_ link: Int32, _ f: Int) {
        let l = Int(link)
        let name = upstreamTLSNames[Int(links[l].upstream)]!
        let buffer = linkTLSBuffers.take()
        guard buffer >= 0, let context = upstreamTLSContext, linkTLS!.open(link, with: context, serverName: name) else {
            if buffer >= 0 { linkTLSBuffers.give(buffer) }
            fillUpstreamFailed(f, "no TLS session could be started")
            return
        }
        links[l].tlsBuffer = buffer
        links[l].state = .active
        linkTLS!.setInput(link, UnsafeRawBufferPointer(start: nil, count: 0))
        linkTLS!.setOutput(link, linkTLSOutput(link), capacity: Self.linkTLSOutputBytes, length: 0)
        advanceLinkHandshake(link, f)
    }

    mutating func advanceLinkHandshake(_ link: Int32, _ f: Int) {
        let l = Int(link)
        let tls = linkTLS!
        switch tls.handshake(link) {
        case .established:
            // The client's Finished waits in the output and leaves with the request.
            metrics.add(.upstreamTLSHandshakes)
            performFill(fillExchanges[f].machine.connected(0), f)
        case .wantsInput, .wantsOutput:
            if tls.outputLength(link) > Int(links[l].tlsOutSent) {
                links[l].tlsPlainPending = -1
                submitLinkTLSSend(link, f)
            } else {
                submitLinkTLSReceive(link, f)
            }
        case .failed:
            let authority = String(decoding: links.authorities[Int(links[l].upstream)], as: UTF8.self)
            fillUpstreamFailed(f, "https://\(authority): \(tls.failureReason(link))")
        }
    }

    /// The exchange sends its request from `from`: encrypted into the output, after anything
    /// the handshake left there.
    mutating func sendEncryptedToLink(_ link: Int32, _ f: Int, from: Int) {
        let request = fillArea(f) + Self.fillReceiveBytes
        let count = fillExchanges[f].machine.requestLength - from
        guard linkTLS!.outputRoom(link) >= TLSConnections.ciphertextBound(plaintext: count),
            linkTLS!.write(link, UnsafeRawBufferPointer(start: request + from, count: count))
        else {
            fillUpstreamFailed(f, "the request could not be encrypted")
            return
        }
        links[Int(link)].state = .active
        links[Int(link)].tlsPlainPending = Int32(count)
        submitLinkTLSSend(link, f)
    }

    /// The exchange waits for response bytes at `offset` of the fill's area: from records
    /// already received, or from the next ciphertext to arrive.
    mutating func receiveDecryptedFromLink(_ link: Int32, _ f: Int, offset: Int) {
        let area = UnsafeMutableRawBufferPointer(start: fillArea(f), count: Self.fillReceiveBytes)
        switch linkTLS!.read(link, into: UnsafeMutableRawBufferPointer(rebasing: area[offset...])) {
        case .bytes(let count):
            performFill(fillExchanges[f].machine.received(Int32(count), area: area), f)
        case .wantsInput:
            links[Int(link)].tlsReceiveOffset = Int32(offset)
            submitLinkTLSReceive(link, f)
        case .closed:
            performFill(fillExchanges[f].machine.received(0, area: area), f)
        case .wantsOutput, .failed:
            performFill(fillExchanges[f].machine.received(-EPROTO, area: area), f)
        }
    }

    mutating func submitLinkTLSSend(_ link: Int32, _ f: Int) {
        let l = Int(link)
        let sent = Int(links[l].tlsOutSent)
        links[l].tlsOutLength = Int32(linkTLS!.outputLength(link))
        ring.reserve(2)
        let sqe = ring.submissionEntry()
        io_uring_prep_send(sqe, links[l].fd, linkTLSOutput(link) + sent, Int(links[l].tlsOutLength) - sent, Int32(MSG_NOSIGNAL))
        submitFillStep(sqe, link, .tlsSend, f)
    }

    mutating func submitLinkTLSReceive(_ link: Int32, _ f: Int) {
        ring.reserve(2)
        let sqe = ring.submissionEntry()
        io_uring_prep_recv(sqe, links[Int(link)].fd, linkTLSInput(link), Self.linkTLSInputBytes, 0)
        submitFillStep(sqe, link, .tlsReceive, f)
    }

    /// A ciphertext send or receive of the link completed.
    mutating func onLinkTLSComplete(_ link: Int32, _ f: Int, step: UpstreamStep, result: Int32) {
        let l = Int(link)
        let tls = linkTLS!
        let established = tls.isEstablished(link)
        let area = UnsafeMutableRawBufferPointer(start: fillArea(f), count: Self.fillReceiveBytes)
        switch step {
        case .tlsSend:
            let plain = links[l].tlsPlainPending
            guard result > 0 else {
                if plain >= 0 { performFill(fillExchanges[f].machine.sent(result), f) } else { fillUpstreamFailed(f, "the connection broke during the TLS handshake") }
                return
            }
            links[l].tlsOutSent += result
            if links[l].tlsOutSent < links[l].tlsOutLength {
                submitLinkTLSSend(link, f)
                return
            }
            // All out: the buffer starts over.
            links[l].tlsOutSent = 0
            links[l].tlsOutLength = 0
            tls.setOutput(link, linkTLSOutput(link), capacity: Self.linkTLSOutputBytes, length: 0)
            links[l].tlsPlainPending = -1
            if plain >= 0 { performFill(fillExchanges[f].machine.sent(plain), f) } else { advanceLinkHandshake(link, f) }
        case .tlsReceive:
            guard result > 0 else {
                if established { performFill(fillExchanges[f].machine.received(result, area: area), f) } else {
                    fillUpstreamFailed(f, "the upstream closed the connection during the TLS handshake (is it https?)")
                }
                return
            }
            tls.setInput(link, UnsafeRawBufferPointer(start: linkTLSInput(link), count: Int(result)))
            if established {
                receiveDecryptedFromLink(link, f, offset: Int(links[l].tlsReceiveOffset))
            } else {
                advanceLinkHandshake(link, f)
            }
        default:
            break
        }
    }

    /// The link closes: its TLS session and buffers go too.
    @inline(__always) mutating func releaseLinkTLS(_ link: Int32) {
        let l = Int(link)
        guard links[l].tlsBuffer >= 0 else { return }
        linkTLS?.close(link)
        linkTLSBuffers.give(links[l].tlsBuffer)
        links[l].tlsBuffer = -1
    }
}
