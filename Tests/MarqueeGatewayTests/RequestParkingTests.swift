import MarqueePolicy
import Testing

@testable import MarqueeGateway

/// How a parked request goes on, alone: what it waits for, which answers wake it, and what it
/// carries into its next parse.
@Suite("Request parking state machine")
struct RequestParkingTests {
    static let allowed = RateVerdict.allowed(limitIndex: 1, remaining: 3, resetMicros: 500)

    @Test("a request parked for the shared limiter is parsed again with its verdict, used once")
    func verdict() {
        var p = RequestParking()
        #expect(!p.isParked)
        p.park(.verdict)
        #expect(p.isParked && p.keepsHead)
        #expect(p.deliver(.verdict(Self.allowed)) == .reparseHead)
        #expect(!p.isParked)
        #expect(p.takeRateResumption() == .verdict(Self.allowed))
        #expect(p.takeRateResumption() == nil, "a verdict is used once")
    }

    @Test("Redis unavailable: the next parse lets the fail mode decide")
    func unavailable() {
        var p = RequestParking()
        p.park(.verdict)
        #expect(p.deliver(.redisUnavailable) == .reparseHead)
        #expect(p.takeRateResumption() == .redisUnavailable)
    }

    @Test("a paced request's turn: it goes on as admitted by the limit that queued it")
    func turn() {
        var p = RequestParking()
        p.park(.turn)
        #expect(p.deliver(.turn(limitIndex: 2)) == .reparseHead)
        #expect(p.takeRateResumption() == .verdict(.allowed(limitIndex: 2, remaining: 0, resetMicros: 0)))
    }

    @Test("a fetch's outcome is carried to the next parse; no rate verdict comes with it")
    func fetch() {
        var p = RequestParking()
        p.park(.fetch)
        #expect(p.deliver(.fetched(.stored)) == .reparseHead)
        #expect(p.takeRateResumption() == nil)
        #expect(p.takeFetchOutcome() == .stored)
        #expect(p.takeFetchOutcome() == nil)
    }

    @Test("a proxied exchange parked for a verdict resumes from the exchange and keeps no head")
    func exchange() {
        var p = RequestParking()
        p.park(.verdict)
        p.parkedIsExchange()
        #expect(p.isParked && !p.keepsHead)
        #expect(p.deliver(.verdict(Self.allowed)) == .resumeExchange)
        #expect(p.takeRateResumption() == .verdict(Self.allowed))
        // A later park is a plain request again.
        p.park(.turn)
        #expect(p.keepsHead)
    }

    @Test("answers a slot does not wait for are ignored and change nothing", arguments: [
        (RequestParking.Awaiting.verdict, RequestParking.Answer.fetched(.stored)),
        (.verdict, .turn(limitIndex: 0)),
        (.turn, .verdict(allowed)),
        (.turn, .redisUnavailable),
        (.fetch, .verdict(allowed)),
        (.fetch, .turn(limitIndex: 0)),
    ])
    func strayAnswers(awaiting: RequestParking.Awaiting, answer: RequestParking.Answer) {
        var p = RequestParking()
        p.park(awaiting)
        let before = p
        #expect(p.deliver(answer) == .ignore)
        #expect(p == before)
        var idle = RequestParking()
        #expect(idle.deliver(answer) == .ignore)
        #expect(!idle.isParked)
    }
}
