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
