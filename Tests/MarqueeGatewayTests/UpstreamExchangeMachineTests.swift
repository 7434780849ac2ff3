import Glibc
import MarqueeHTTP
import Testing

@testable import MarqueeGateway

/// The upstream exchange's decisions, alone: bytes in, actions out, with no ring and no sockets.
@Suite("Upstream exchange state machine")
struct UpstreamExchangeMachineTests {
    /// A receive area and a driver that plays the loop's part: it copies what "arrived" to where the
    /// machine asked to receive, and moves on as the loop would.
    struct Driver {
        var machine: UpstreamExchangeMachine
        let area = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        /// What reached the client: the heads forwarded (by status) and the body bytes relayed.
        var heads: [Int] = []
        var relayed: [UInt8] = []
        var receiveOffset = 0

        init(_ method: HTTPMethod = .get, http10: Bool = false, requestLength: Int = 100) {
            machine = UpstreamExchangeMachine(method: method, clientIsHTTP10: http10, requestLength: requestLength, maxHeadBytes: 32 * 1024)
        }

        /// Brings a fresh (or pooled) link to the point where it waits for the response.
        mutating func sendRequest(pooled: Bool = false) {
            if !pooled {
                #expect(machine.start(onPooledLink: false) == .connect)
                #expect(machine.connected(0) == .send(from: 0))
            } else {
                #expect(machine.start(onPooledLink: true) == .send(from: 0))
            }
            #expect(machine.sent(40) == .send(from: 40))
            #expect(machine.sent(60) == .receive(offset: 0))
        }

        /// `text` arrives in one receive; returns the action the loop is left with after
        /// forwarding heads and relaying body bytes (each relay taken whole by the client).
        mutating func arrive(_ text: String) -> UpstreamExchangeMachine.Action { arrive(Array(text.utf8)) }

        mutating func arrive(_ bytes: [UInt8]) -> UpstreamExchangeMachine.Action {
            guard receiveOffset + bytes.count <= area.count else { return settle(machine.received(0, area: area)) }
            bytes.withUnsafeBytes { area.baseAddress!.advanced(by: receiveOffset).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            return settle(machine.received(Int32(bytes.count), area: area))
        }

        mutating func settle(_ first: UpstreamExchangeMachine.Action) -> UpstreamExchangeMachine.Action {
            var action = first
            while true {
                switch action {
                case .forwardHead(let head):
                    heads.append(head.status)
                    action = machine.headForwarded(area: area, headLength: head.headLength)
                case .relay(let n):
                    relayed += Array(UnsafeRawBufferPointer(start: area.baseAddress, count: n))
                    action = machine.relayed()
                case .receive(let offset):
                    receiveOffset = offset
                    return action
                default:
                    return action
                }
            }
        }

        var body: String { String(decoding: relayed, as: UTF8.self) }
    }

    @Test("a Content-Length response in pieces: the head split across receives, the body relayed, the link reusable")
    func contentLength() {
        var d = Driver()
        d.sendRequest()
        #expect(d.arrive("HTTP/1.1 200 OK\r\nContent-") == .receive(offset: 25))
        #expect(d.arrive("Length: 10\r\n\r\nhello") == .receive(offset: 0))
        #expect(d.heads == [200])
        #expect(d.arrive("world") == .finish(reusable: true))
        #expect(d.body == "helloworld")
        #expect(d.machine.status == 200)
    }

    @Test("bytes past the end of the body make the link unusable for another request")
    func extraBytes() {
        var d = Driver()
        d.sendRequest()
        #expect(d.arrive("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcXYZ") == .finish(reusable: false))
        #expect(d.body == "abc")
    }

    @Test("interim 1xx heads are skipped; the final head is forwarded")
    func interim() {
        var d = Driver()
        d.sendRequest()
        let action = d.arrive("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
        #expect(action == .finish(reusable: true))
        #expect(d.heads == [204])
        #expect(d.body.isEmpty)
    }

    @Test("chunked to an HTTP/1.1 client is relayed as is; to an HTTP/1.0 client de-chunked and the client connection closed")
    func chunked() {
        let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nalpha\r\n5\r\n beta\r\n0\r\n\r\n"
        var d11 = Driver()
        d11.sendRequest()
        #expect(d11.arrive(response) == .finish(reusable: true))
        #expect(d11.body == "5\r\nalpha\r\n5\r\n beta\r\n0\r\n\r\n")
        #expect(!d11.machine.closesClient)

        var d10 = Driver(http10: true)
        d10.sendRequest()
        #expect(d10.arrive(response) == .finish(reusable: true))
        #expect(d10.body == "alpha beta")
        #expect(d10.machine.closesClient)
    }

    @Test("a close-delimited body completes when the upstream closes; a cut Content-Length body aborts the client")
    func closeDelimited() {
        var d = Driver()
        d.sendRequest()
        #expect(d.arrive("HTTP/1.1 200 OK\r\n\r\nsome") == .receive(offset: 0))
        #expect(d.machine.closesClient)
        #expect(d.arrive("thing") == .receive(offset: 0))
        #expect(d.settle(d.machine.received(0, area: d.area)) == .finish(reusable: false))
        #expect(d.body == "something")

        var cut = Driver()
        cut.sendRequest()
        #expect(cut.arrive("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial") == .receive(offset: 0))
        #expect(cut.machine.received(0, area: cut.area) == .abort)
        // An error on a close-delimited body is a cut too.
        var broken = Driver()
        broken.sendRequest()
        #expect(broken.arrive("HTTP/1.1 200 OK\r\n\r\nsome") == .receive(offset: 0))
        #expect(broken.machine.received(-ECONNRESET, area: broken.area) == .abort)
    }

    @Test("a HEAD response declares a length but has no body")
    func head() {
        var d = Driver(.head)
        d.sendRequest()
        #expect(d.arrive("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n") == .finish(reusable: true))
        #expect(d.body.isEmpty)
    }

    @Test("a pooled link that breaks before any answer is retried once on a fresh link for an idempotent request, never for a POST or twice")
    func retry() {
        var d = Driver()
        d.sendRequest(pooled: true)
        #expect(d.machine.received(0, area: d.area) == .connect)
        #expect(d.machine.connected(0) == .send(from: 0))
        #expect(d.machine.sent(100) == .receive(offset: 0))
        #expect(d.machine.received(0, area: d.area) == .fail(.badGateway, "the upstream closed the connection without answering", connectFailure: false))

        var post = Driver(.post)
        post.sendRequest(pooled: true)
        #expect(post.machine.received(0, area: post.area) == .fail(.badGateway, "the upstream closed the connection without answering", connectFailure: false))

        var sendFailure = Driver()
        #expect(sendFailure.machine.start(onPooledLink: true) == .send(from: 0))
        #expect(sendFailure.machine.sent(-EPIPE) == .connect)

        // A fresh link that breaks is not retried.
        var fresh = Driver()
        fresh.sendRequest()
        #expect(fresh.machine.received(-ECONNRESET, area: fresh.area) == .fail(.badGateway, "the upstream closed the connection without answering", connectFailure: false))
    }

    @Test("refused and unreachable connects, malformed heads and unsupported statuses are 502s that say why")
    func failures() {
        var refused = Driver()
        #expect(refused.machine.start(onPooledLink: false) == .connect)
        #expect(refused.machine.connected(-ECONNREFUSED) == .fail(.badGateway, "the upstream refused the connection", connectFailure: true))
        var unreachable = Driver()
        _ = unreachable.machine.start(onPooledLink: false)
        #expect(unreachable.machine.connected(-EHOSTUNREACH) == .fail(.badGateway, "the upstream is unreachable", connectFailure: true))

        var malformed = Driver()
        malformed.sendRequest()
        #expect(malformed.arrive("HTTQ/1.1 200\r\n\r\n") == .fail(.badGateway, "the upstream sent a malformed response head", connectFailure: false))
        var switching = Driver()
        switching.sendRequest()
        #expect(switching.arrive("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
            == .fail(.badGateway, "the upstream answered with an unsupported status", connectFailure: false))
        var cutHead = Driver()
        cutHead.sendRequest()
        #expect(cutHead.arrive("HTTP/1.1 200 OK\r\nContent-Le") == .receive(offset: 27))
        #expect(cutHead.machine.received(0, area: cutHead.area)
            == .fail(.badGateway, "the upstream closed the connection in the middle of its response head", connectFailure: false))
        var badChunk = Driver()
        badChunk.sendRequest()
        #expect(badChunk.arrive("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            == .fail(.badGateway, "the upstream sent a malformed chunked body", connectFailure: false))
    }

    @Test("a timeout before the head is a 504; once the head went out it cuts the client")
    func timeouts() {
        var waiting = Driver()
        waiting.sendRequest()
        #expect(waiting.machine.timedOut() == .fail(.gatewayTimeout, "the upstream did not answer within services.timeout_ms", connectFailure: false))
        var relaying = Driver()
        relaying.sendRequest()
        #expect(relaying.arrive("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") == .receive(offset: 0))
        #expect(relaying.machine.timedOut() == .abort)
    }

    @Test("hostile responses, in random pieces, never trap and always end in a decision", arguments: 0..<4)
    func hostilePieces(seed: Int) {
        var generator = SeededGenerator(seed: UInt64(seed + 1))
        let shapes = [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 999 What\r\n\r\n",
            "\r\n\r\n\r\n",
        ]
        for _ in 0..<200 {
            var text = Array(shapes.randomElement(using: &generator)!.utf8)
            for _ in 0..<Int.random(in: 0...3, using: &generator) where !text.isEmpty {
                text[Int.random(in: 0..<text.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            var d = Driver(http10: Bool.random(using: &generator))
            d.sendRequest()
            var rest = text[...]
            var last = UpstreamExchangeMachine.Action.receive(offset: 0)
            while !rest.isEmpty, case .receive = last {
                let n = Int.random(in: 1...max(1, rest.count), using: &generator)
                last = d.arrive(Array(rest.prefix(n)))
                rest = rest.dropFirst(n)
            }
            if case .receive = last { last = d.settle(d.machine.received(0, area: d.area)) }
            switch last {
            case .finish, .fail, .abort: break
            default: Issue.record("no decision at the end: \(last)")
            }
        }
    }
}

/// A small deterministic generator (SplitMix64) for reproducible hostile inputs.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
