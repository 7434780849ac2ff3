import Glibc
import MarqueeHTTP

/// One request to an upstream and its response, as a value-type state machine. The loop tells it
/// what each ring operation did and performs the action it returns: connect, send, receive,
/// forward the response head, relay body bytes, finish, fail. Nothing here does I/O or touches a
/// link, a timer or a client connection; it decides, and it is tested on its own
/// (`UpstreamExchangeMachineTests`).
///
/// The response is read into one receive area in rounds: head bytes accumulate at its start until
/// a final head parses (1xx interim heads are skipped), then each receive's body bytes are framed
/// (Content-Length, chunked, or until close), de-chunked in place for an HTTP/1.0 client, and
/// relayed before the next receive.
struct UpstreamExchangeMachine {
    enum State: Equatable {
        case idle
        /// A fresh link's connect is in flight.
        case connecting
        /// `sent` bytes of the request are out.
        case sending(sent: Int)
        /// `received` bytes of the response head are at the start of the receive area.
        case awaitingHead(received: Int)
        /// The client's head was written (or is being sent); body rounds follow.
        case relaying
        case finished
        case failed
    }

    enum Action: Equatable {
        /// Open a fresh link to the upstream (closing the one it had, if any).
        case connect
        /// Send the request from its byte `from`.
        case send(from: Int)
        /// Receive into the area from `offset` (where the head bytes so far end; 0 for body rounds).
        case receive(offset: Int)
        /// A final head parsed at the start of the area: write the client's head from it, then
        /// call `headForwarded(area:)`.
        case forwardHead(ResponseHead)
        /// Send the client's head (after `forwardHead`) and `body` bytes from the area's start;
        /// call `relayed()` once the client took them.
        case relay(body: Int)
        /// The whole response is out: pool the link when `reusable`, else close it.
        case finish(reusable: Bool)
        /// Nothing reached the client: close the link and answer `status` with `detail`.
        case fail(HTTPStatus, StaticString, connectFailure: Bool)
        /// Part of the response reached the client: cut the connection, so a partial response is
        /// never taken for a whole one.
        case abort

        static func == (lhs: Action, rhs: Action) -> Bool {
            switch (lhs, rhs) {
            case (.connect, .connect), (.abort, .abort): true
            case (.send(let a), .send(let b)): a == b
            case (.receive(let a), .receive(let b)): a == b
            case (.forwardHead(let a), .forwardHead(let b)): a.status == b.status && a.headLength == b.headLength
            case (.relay(let a), .relay(let b)): a == b
            case (.finish(let a), .finish(let b)): a == b
            case (.fail(let s1, let d1, let c1), .fail(let s2, let d2, let c2)): s1 == s2 && "\(d1)" == "\(d2)" && c1 == c2
            default: false
            }
        }
    }

    let method: HTTPMethod
    let clientIsHTTP10: Bool
    let requestLength: Int
    /// The longest upstream head accepted (the rest of the area is for body rounds).
    let maxHeadBytes: Int

    private(set) var state = State.idle
    /// The link came from the keep-alive pool: a failure before any response byte may only mean
    /// the upstream closed it while idle.
    private(set) var linkReused = false
    private(set) var retried = false
    private(set) var sawResponseByte = false
    private(set) var framing = ResponseFraming(head: ResponseHead(), requestMethod: .head)
    /// Chunked from the upstream, but the client speaks HTTP/1.0: relay the data close-delimited.
    private(set) var dechunk = false
    /// The upstream may keep the link for another request once this response is whole.
    private(set) var reusable = false
    private(set) var status: Int16 = 0
    private(set) var bodyComplete = false
    /// Bytes in the area when the final head parsed: the head and the body bytes that came with it.
    private var headReceived = 0

    init(method: HTTPMethod, clientIsHTTP10: Bool, requestLength: Int, maxHeadBytes: Int) {
        self.method = method
        self.clientIsHTTP10 = clientIsHTTP10
        self.requestLength = requestLength
        self.maxHeadBytes = maxHeadBytes
    }

    /// Safe to send again on a fresh link when the first one broke before any answer.
    var isIdempotent: Bool {
        switch method {
        case .get, .head, .put, .delete, .options: true
        default: false
        }
    }

    /// The client's connection cannot be kept: the body ends when the connection does.
    var closesClient: Bool { framing.kind == .untilClose || dechunk }

    /// The head has been forwarded: a failure now can only cut the client's connection.
    var isRelaying: Bool { state == .relaying || state == .finished }

    // MARK: - Events

    /// The exchange begins on a pooled link, or needs a fresh one.
    mutating func start(onPooledLink pooled: Bool) -> Action {
        linkReused = pooled
        if pooled {
            state = .sending(sent: 0)
            return .send(from: 0)
        }
        state = .connecting
        return .connect
    }

    /// A fresh link's connect completed with `result` (0 or -errno).
    mutating func connected(_ result: Int32) -> Action {
        guard state == .connecting else { return .abort }
        guard result >= 0 else {
            state = .failed
            return .fail(
                .badGateway, result == -ECONNREFUSED ? "the upstream refused the connection" : "the upstream is unreachable",
                connectFailure: true)
        }
        state = .sending(sent: 0)
        return .send(from: 0)
    }

    /// A send completed with `result` bytes (or -errno).
    mutating func sent(_ result: Int32) -> Action {
        guard case .sending(let sent) = state else { return .abort }
        guard result > 0 else { return broke("the upstream connection failed while sending the request") }
        let total = sent + Int(result)
        if total < requestLength {
            state = .sending(sent: total)
            return .send(from: total)
        }
        state = .awaitingHead(received: 0)
        return .receive(offset: 0)
    }

    /// A receive completed with `result` bytes (0 when the upstream closed, or -errno) into `area`.
    mutating func received(_ result: Int32, area: UnsafeMutableRawBufferPointer) -> Action {
        switch state {
        case .awaitingHead(let before):
            guard result > 0 else { return ended(error: result < 0) }
            sawResponseByte = true
            return readHead(area: area, received: before + Int(result))
        case .relaying:
            guard result > 0 else { return ended(error: result < 0) }
            return relayBody(area: area, count: Int(result))
        default:
            return .abort
        }
    }

    /// The client's head was written from the head at the area's start (`forwardHead`): move the
    /// body bytes that came with it to the start and relay them with the head.
    mutating func headForwarded(area: UnsafeMutableRawBufferPointer, headLength: Int) -> Action {
        let following = headReceived - headLength
        if following > 0 { memmove(area.baseAddress!, area.baseAddress! + headLength, following) }
        if framing.isCompleteWithoutBody {
            bodyComplete = true
            if following > 0 { reusable = false }
            return .relay(body: 0)
        }
        switch frame(area: area, count: following) {
        case .failed:
            state = .failed
            return .fail(.badGateway, "the upstream sent a malformed chunked body", connectFailure: false)
        case .relay(let count):
            return .relay(body: count)
        }
    }

    /// The client took everything relayed so far.
    mutating func relayed() -> Action {
        guard state == .relaying else { return .abort }
        if bodyComplete {
            state = .finished
            return .finish(reusable: reusable)
        }
        return .receive(offset: 0)
    }

    /// The upstream did not answer (or send the next body bytes) in time.
    mutating func timedOut() -> Action {
        if isRelaying {
            state = .failed
            return .abort
        }
        state = .failed
        return .fail(.gatewayTimeout, "the upstream did not answer within services.timeout_ms", connectFailure: false)
    }

    // MARK: - Steps

    private mutating func readHead(area: UnsafeMutableRawBufferPointer, received start: Int) -> Action {
        var received = start
        while true {
            let head: ResponseHead
            switch ResponseParser.parse(UnsafeRawBufferPointer(rebasing: area[0..<received]), maxHeadBytes: maxHeadBytes) {
            case .incomplete:
                state = .awaitingHead(received: received)
                return .receive(offset: received)
            case .failed:
                state = .failed
                return .fail(.badGateway, "the upstream sent a malformed response head", connectFailure: false)
            case .complete(let parsed):
                head = parsed
            }
            if head.isInterim {
                // 1xx (103 Early Hints...): not relayed; the final response follows.
                let rest = received - head.headLength
                memmove(area.baseAddress!, area.baseAddress! + head.headLength, rest)
                received = rest
                if rest > 0 { continue }
                state = .awaitingHead(received: 0)
                return .receive(offset: 0)
            }
            if head.status == 101 || head.status > 599 {
                state = .failed
                return .fail(.badGateway, "the upstream answered with an unsupported status", connectFailure: false)
            }
            framing = ResponseFraming(head: head, requestMethod: method)
            status = Int16(head.status)
            reusable = !head.closes && framing.kind != .untilClose
            dechunk = framing.kind == .chunked && clientIsHTTP10
            state = .relaying
            headReceived = received
            return .forwardHead(head)
        }
    }

    private mutating func relayBody(area: UnsafeMutableRawBufferPointer, count: Int) -> Action {
        switch frame(area: area, count: count) {
        case .failed:
            state = .failed
            return .abort
        case .relay(let relayable):
            if relayable > 0 { return .relay(body: relayable) }
            if bodyComplete {
                state = .finished
                return .finish(reusable: reusable)
            }
            return .receive(offset: 0)
        }
    }

    private enum Framed {
        case relay(Int)
        case failed
    }

    /// Frames `count` body bytes at the area's start: how many belong to this response (after
    /// de-chunking in place, for an HTTP/1.0 client), and whether the body is now complete.
    private mutating func frame(area: UnsafeMutableRawBufferPointer, count: Int) -> Framed {
        let base = area.baseAddress!
        let bytes = UnsafeRawBufferPointer(start: base, count: count)
        var relayable = count
        let verdict: ResponseFraming.Verdict
        if dechunk {
            var written = 0
            verdict = framing.consume(bytes) { data in
                memmove(base + written, data.baseAddress!, data.count)
                written += data.count
            }
            relayable = written
        } else {
            verdict = framing.consume(bytes)
        }
        switch verdict {
        case .more:
            break
        case .complete(let consumed):
            if !dechunk { relayable = consumed }
            bodyComplete = true
            if consumed < count { reusable = false }
        case .failed:
            return .failed
        }
        return .relay(relayable)
    }

    /// The upstream closed (or the receive failed).
    private mutating func ended(error: Bool) -> Action {
        if !sawResponseByte { return broke("the upstream closed the connection without answering") }
        if state != .relaying { return broke("the upstream closed the connection in the middle of its response head") }
        if !error && framing.closeCompletes {
            bodyComplete = true
            state = .finished
            return .finish(reusable: false)
        }
        state = .failed
        return .abort
    }

    /// A send or receive failed. Before any response byte, on a pooled link, an idempotent request
    /// is sent again once on a fresh link (the upstream may have closed the pooled one while idle).
    private mutating func broke(_ detail: StaticString) -> Action {
        if linkReused && !retried && !sawResponseByte && isIdempotent {
            retried = true
            linkReused = false
            state = .connecting
            return .connect
        }
        state = .failed
        return .fail(.badGateway, detail, connectFailure: false)
    }
}
