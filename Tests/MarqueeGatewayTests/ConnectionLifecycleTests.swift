import Testing

@testable import MarqueeGateway

@Suite("Connection lifecycle decisions")
struct ConnectionLifecycleTests {
    typealias Phase = Connection.Phase
    static let all: [Phase] = [.free, .awaitingHead, .responding, .parked, .receivingBody, .proxying, .lingering, .closing]

    @Test("Received bytes: a head is parsed only between requests, body bytes go to the exchange, pipelined ones wait, and a response that ends the connection discards the rest")
    func bytes() {
        #expect(Phase.awaitingHead.onBytes(keepAlive: true) == .parseHead)
        #expect(Phase.awaitingHead.onBytes(keepAlive: false) == .parseHead)
        for phase in [Phase.responding, .parked, .proxying] { #expect(phase.onBytes(keepAlive: true) == .keep, "\(phase)") }
        #expect(Phase.responding.onBytes(keepAlive: false) == .discard, "a 414/431 must be readable before the close")
        #expect(Phase.receivingBody.onBytes(keepAlive: true) == .body)
        for phase in [Phase.lingering, .closing, .free] { #expect(phase.onBytes(keepAlive: true) == .discard, "\(phase)") }
    }

    @Test("A FIN: a response in progress (ours or an upstream's) still goes out; anything else closes")
    func fin() {
        for phase in Self.all {
            let expected: Phase.FinAction = phase == .responding || phase == .proxying ? .finishResponse : .close
            #expect(phase.onFin == expected, "\(phase)")
        }
    }

    @Test("A drain closes idle connections at once and lets every request in progress finish as the last one")
    func drain() {
        #expect(Phase.awaitingHead.onDrain(hasInput: false) == .close)
        #expect(Phase.awaitingHead.onDrain(hasInput: true) == .lastResponse, "a request half received is answered")
        for phase in [Phase.responding, .parked, .receivingBody, .proxying] { #expect(phase.onDrain(hasInput: false) == .lastResponse, "\(phase)") }
        for phase in [Phase.lingering, .closing, .free] { #expect(phase.onDrain(hasInput: true) == .nothing, "\(phase)") }
    }

    @Test("After a response: close unless kept alive and the client is still there; a pipelined request is parsed at once")
    func afterResponse() {
        for peerClosed in [false, true] {
            for hasInput in [false, true] {
                #expect(AfterResponse.decide(keepAlive: false, peerClosed: peerClosed, hasInput: hasInput) == .closeGracefully)
            }
            #expect(AfterResponse.decide(keepAlive: true, peerClosed: true, hasInput: true) == .closeGracefully)
        }
        #expect(AfterResponse.decide(keepAlive: true, peerClosed: false, hasInput: true) == .parseNext)
        #expect(AfterResponse.decide(keepAlive: true, peerClosed: false, hasInput: false) == .awaitRequest)
    }

    @Test("Receives stay armed in every live phase; a slot is released only when closing and nothing is in flight")
    func receivingAndRelease() {
        for phase in Self.all { #expect(phase.keepsReceiving == !(phase == .closing || phase == .free), "\(phase)") }
        #expect(Connection.mayRelease(.closing, recvArmed: false, sendInFlight: false, upstreamBusy: false))
        #expect(!Connection.mayRelease(.closing, recvArmed: true, sendInFlight: false, upstreamBusy: false))
        #expect(!Connection.mayRelease(.closing, recvArmed: false, sendInFlight: true, upstreamBusy: false))
        #expect(!Connection.mayRelease(.closing, recvArmed: false, sendInFlight: false, upstreamBusy: true))
        for phase in Self.all where phase != .closing { #expect(!Connection.mayRelease(phase, recvArmed: false, sendInFlight: false, upstreamBusy: false)) }
    }
}

@Suite("Connection state: transitions and the actions they return")
struct ConnectionStateTests {
    /// A connection accepted, its receive armed, a request read and a response being sent.
    static func responding(keepAlive: Bool = true) -> ConnectionState {
        var state = ConnectionState()
        state.accepted()
        state.receiveArmed()
        state.setKeepAlive(keepAlive)
        state.respond()
        state.sendSubmitted()
        return state
    }

    @Test("Accepting starts afresh: the first head is awaited, nothing in flight, keep-alive until a request says otherwise")
    func accepted() {
        var state = Self.responding(keepAlive: false)
        _ = state.finReceived()
        state.accepted()
        #expect(state.phase == .awaitingHead && !state.recvArmed && !state.sendInFlight && !state.peerClosed && state.keepAlive)
        #expect(state.rearmsReceive, "a fresh connection needs its receive armed")
    }

    @Test("A FIN during a response lets it finish, and then the connection closes instead of awaiting another request")
    func finDuringResponse() {
        var state = Self.responding()
        // The FIN arrives as a receive of 0 bytes, which ends the multishot receive.
        state.receiveCompleted(more: false)
        let fin = state.finReceived()
        #expect(fin == .finishResponse)
        #expect(!state.rearmsReceive, "nothing more to read from a client that closed")
        state.sendCompleted()
        let next = state.responseEnded(hasInput: true)
        #expect(next == .closeGracefully)
        let lingering = state.linger()
        #expect(lingering == .close, "the client closed already: nothing to linger for")
        let closing = state.close()
        #expect(closing == .quiet && state.mayRelease(upstreamBusy: false))
    }

    @Test("A FIN while waiting for a head or a parked answer closes at once")
    func finWhileWaiting() {
        var waiting = ConnectionState()
        waiting.accepted()
        let fin = waiting.finReceived()
        #expect(fin == .close)
        var parked = Self.responding()
        parked.sendCompleted()
        _ = parked.responseEnded(hasInput: false)
        parked.park()
        let fin2 = parked.finReceived()
        #expect(fin2 == .close)
    }

    @Test("After a kept-alive response a head is awaited again (a pipelined one parsed at once); after a last one the connection lingers")
    func afterResponse() {
        var kept = Self.responding()
        kept.sendCompleted()
        let next = kept.responseEnded(hasInput: false)
        #expect(next == .awaitRequest && kept.phase == .awaitingHead)
        kept.respond()
        let next2 = kept.responseEnded(hasInput: true)
        #expect(next2 == .parseNext && kept.phase == .awaitingHead)

        var last = Self.responding(keepAlive: false)
        last.sendCompleted()
        let next3 = last.responseEnded(hasInput: false)
        #expect(next3 == .closeGracefully && last.phase == .responding)
        let lingering = last.linger()
        #expect(lingering == .shutDownWrite && last.phase == .lingering)
        #expect(last.bytesAction == .discard, "what a lingering client sends is dropped")
    }

    @Test("Closing shuts the socket down while operations are in the ring, and the slot is released only once they completed")
    func closing() {
        var state = Self.responding()
        let closing = state.close()
        #expect(closing == .shutDown && state.phase == .closing)
        let closing2 = state.close()
        #expect(closing2 == .none, "closing twice does nothing")
        #expect(!state.mayRelease(upstreamBusy: false))
        state.sendCompleted()
        #expect(!state.mayRelease(upstreamBusy: false), "the receive is still armed")
        state.receiveCompleted(more: false)
        #expect(!state.mayRelease(upstreamBusy: true), "the exchange's upstream operation is still in the ring")
        #expect(state.mayRelease(upstreamBusy: false))
        #expect(!state.rearmsReceive)
        var free = ConnectionState()
        let closing3 = free.close()
        #expect(closing3 == .none)
    }

    @Test("A multishot receive stays armed until a completion says it ended; then it is re-armed while the phase reads")
    func receives() {
        var state = ConnectionState()
        state.accepted()
        state.receiveArmed()
        state.receiveCompleted(more: true)
        #expect(state.recvArmed && !state.rearmsReceive)
        state.receiveCompleted(more: false)
        #expect(!state.recvArmed && state.rearmsReceive)
        state.readBody()
        #expect(state.bytesAction == .body)
        state.proxy()
        #expect(state.bytesAction == .keep && state.rearmsReceive)
    }

    @Test("A drain closes an idle connection, and makes a request in progress the last one")
    func drain() {
        var idle = ConnectionState()
        idle.accepted()
        let drained = idle.drain(hasInput: false)
        #expect(drained == .close)
        var busy = Self.responding()
        let drained2 = busy.drain(hasInput: false)
        #expect(drained2 == .lastResponse && !busy.keepAlive)
        busy.sendCompleted()
        let next = busy.responseEnded(hasInput: true)
        #expect(next == .closeGracefully)
    }

    @Test("A response waiting for a pipe gets one only while it still waits; one streaming a fill waits for it to grow, and stops waiting when released")
    func pipesAndFills() {
        var state = Self.responding()
        state.waitForPipe()
        #expect(state.waitsForPipe)
        state.pipeGranted()
        #expect(!state.waitsForPipe)
        state.waitForPipe()
        _ = state.close()
        #expect(!state.waitsForPipe, "a cut response no longer takes a pipe")

        var streaming = Self.responding()
        streaming.streamFromFill()
        let grew = streaming.fillGrew()
        #expect(!grew, "not waiting yet")
        streaming.waitForFill()
        let grew2 = streaming.fillGrew()
        #expect(grew2 && !streaming.awaitingFill)
        streaming.waitForFill()
        streaming.fillReleased()
        let grew3 = streaming.fillGrew()
        #expect(!streaming.streamsFill && !streaming.awaitingFill && !grew3)
    }
}
