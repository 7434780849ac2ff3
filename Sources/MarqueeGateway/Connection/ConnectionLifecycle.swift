/// What happens to a connection, by phase, without I/O: what received bytes, a FIN, the end of a
/// response, a drain and a close mean. `ConnectionState` (below) applies these rules to the phase
/// and flags it holds; the event loop performs the action each transition returns on its ring, so
/// every lifecycle rule is in one place and tested alone (`ConnectionLifecycleTests`).
extension Connection.Phase {
    /// Whether a receive stays armed in this phase: to read the next request or body bytes, to
    /// notice a FIN while a response goes out or a request waits, and to drain a lingering close.
    var keepsReceiving: Bool {
        switch self {
        case .awaitingHead, .responding, .parked, .lingering, .receivingBody, .proxying: true
        case .closing, .free: false
        }
    }

    enum BytesAction: Equatable {
        /// Parse them as (part of) the next request head.
        case parseHead
        /// Keep them for after the response (pipelined requests).
        case keep
        /// They belong to the body of the request being proxied.
        case body
        /// Drop them: the connection ends after this response (so the client can still read its
        /// 414 or 431 before the lingering close instead of a reset), or is closing.
        case discard
    }

    /// What bytes received in this phase are for.
    func onBytes(keepAlive: Bool) -> BytesAction {
        switch self {
        case .awaitingHead: .parseHead
        case .responding where !keepAlive: .discard
        case .responding, .parked, .proxying: .keep
        case .receivingBody: .body
        case .lingering, .closing, .free: .discard
        }
    }

    enum FinAction: Equatable {
        /// The client half-closed after its request: it still gets the response in progress,
        /// and the connection closes after it.
        case finishResponse
        /// Nothing is owed to it (or its request is incomplete): close now.
        case close
    }

    /// The client sent FIN.
    var onFin: FinAction {
        switch self {
        case .responding, .proxying: .finishResponse
        case .awaitingHead, .parked, .receivingBody, .lingering, .closing, .free: .close
        }
    }

    enum DrainAction: Equatable {
        /// Idle between requests: close now.
        case close
        /// Let the request in progress finish, then close (no keep-alive).
        case lastResponse
        case nothing
    }

    /// The gateway is draining (SIGTERM). `hasInput`: part of a next request was received.
    func onDrain(hasInput: Bool) -> DrainAction {
        switch self {
        case .awaitingHead where !hasInput: .close
        case .awaitingHead, .responding, .parked, .receivingBody, .proxying: .lastResponse
        case .lingering, .closing, .free: .nothing
        }
    }
}

/// How a connection goes on once a response is out.
enum AfterResponse: Equatable {
    /// Shut our side down and discard what the client still sends until it closes.
    case closeGracefully
    /// A pipelined request is already in: parse it now.
    case parseNext
    /// Wait for the next request under the idle timeout.
    case awaitRequest

    static func decide(keepAlive: Bool, peerClosed: Bool, hasInput: Bool) -> AfterResponse {
        if !keepAlive || peerClosed { return .closeGracefully }
        return hasInput ? .parseNext : .awaitRequest
    }
}

extension Connection {
    /// A connection being closed may release its slot once nothing of it is in flight: no
    /// receive, no send or splice chain, no upstream operation of its exchange.
    static func mayRelease(_ phase: Phase, recvArmed: Bool, sendInFlight: Bool, upstreamBusy: Bool) -> Bool {
        phase == .closing && !recvArmed && !sendInFlight && !upstreamBusy
    }
}

/// A client connection's lifecycle as one value: its phase, and what of it is in flight or known
/// (a receive armed, a send or splice chain in flight, the client's FIN, keep-alive, a wait for a
/// pipe, a response streaming from a fill). The loop reports each event here and performs what the
/// transition returns; nothing else writes these, and nothing here does I/O, so every rule is
/// tested alone (`ConnectionLifecycleTests`). The waits inside a phase keep their own machines
/// (`RequestParking`, `UpstreamExchangeMachine`).
struct ConnectionState: Equatable {
    typealias Phase = Connection.Phase

    private(set) var phase = Phase.free
    /// A (multishot) receive is in the ring.
    private(set) var recvArmed = false
    /// A send or a splice chain is in the ring.
    private(set) var sendInFlight = false
    /// The client sent FIN.
    private(set) var peerClosed = false
    /// The connection may carry another request after this response.
    private(set) var keepAlive = true
    /// The response waits in the loop's queue for a pipe.
    private(set) var waitingForPipe = false
    /// The response streams from a fill whose body is still arriving.
    private(set) var streamsFill = false
    /// It sent every byte its fill has so far and waits (in the loop's list) for more.
    private(set) var awaitingFill = false

    // MARK: - Phases

    /// Accepted: the first request head is awaited.
    @inline(__always) mutating func accepted() {
        self = ConnectionState()
        phase = .awaitingHead
    }

    /// A response starts going out (or waits for a pipe to).
    @inline(__always) mutating func respond() { phase = .responding }

    /// The request waits for an answer (`RequestParking` says which).
    @inline(__always) mutating func park() { phase = .parked }

    /// A proxied request's body is being read.
    @inline(__always) mutating func readBody() { phase = .receivingBody }

    /// A service upstream has the request.
    @inline(__always) mutating func proxy() { phase = .proxying }

    /// A parked request's head is parsed again.
    @inline(__always) mutating func resumeHead() { phase = .awaitingHead }

    /// Whether the request allows another after it (its version, Connection field, body, a drain).
    @inline(__always) mutating func setKeepAlive(_ wanted: Bool) { keepAlive = wanted }

    /// This response is the connection's last (an error that closes, a body of unknown end, a drain).
    @inline(__always) mutating func closeAfterResponse() { keepAlive = false }

    // MARK: - Receives and sends

    @inline(__always) mutating func receiveArmed() { recvArmed = true }

    /// A receive completed; `more`: the multishot receive stays armed.
    @inline(__always) mutating func receiveCompleted(more: Bool) {
        if !more { recvArmed = false }
    }

    /// The client sent FIN.
    @inline(__always) mutating func finReceived() -> Phase.FinAction {
        peerClosed = true
        return phase.onFin
    }

    /// What received bytes are for now.
    @inline(__always) var bytesAction: Phase.BytesAction { phase.onBytes(keepAlive: keepAlive) }

    /// A receive must be armed again (the multishot one ended, and the phase still reads).
    @inline(__always) var rearmsReceive: Bool { !recvArmed && !peerClosed && phase.keepsReceiving }

    @inline(__always) mutating func sendSubmitted() { sendInFlight = true }

    @inline(__always) mutating func sendCompleted() { sendInFlight = false }

    // MARK: - Pipes and fills

    @inline(__always) mutating func waitForPipe() { waitingForPipe = true }

    /// Still waiting in the pipe queue (not cut or moved on meanwhile).
    @inline(__always) var waitsForPipe: Bool { waitingForPipe && phase == .responding }

    /// A queued response got its pipe.
    @inline(__always) mutating func pipeGranted() { waitingForPipe = false }

    @inline(__always) mutating func streamFromFill() { streamsFill = true }

    @inline(__always) mutating func waitForFill() { awaitingFill = true }

    /// The fills grew: whether this response waited for that and goes on now.
    @inline(__always) mutating func fillGrew() -> Bool {
        guard awaitingFill && phase == .responding else { return false }
        awaitingFill = false
        return true
    }

    @inline(__always) mutating func fillReleased() {
        streamsFill = false
        awaitingFill = false
    }

    // MARK: - Ending

    /// The response is out: close, parse the pipelined request, or wait for the next. The last
    /// two make the connection await a head again.
    @inline(__always) mutating func responseEnded(hasInput: Bool) -> AfterResponse {
        let next = AfterResponse.decide(keepAlive: keepAlive, peerClosed: peerClosed, hasInput: hasInput)
        if next != .closeGracefully { phase = .awaitingHead }
        return next
    }

    enum LingerAction: Equatable {
        /// Shut our side down and discard the client's bytes until it closes.
        case shutDownWrite
        /// Nothing to wait for (no receive armed, or the client closed already): close now.
        case close
    }

    /// After a final response, a graceful close.
    mutating func linger() -> LingerAction {
        guard recvArmed && !peerClosed else { return .close }
        phase = .lingering
        return .shutDownWrite
    }

    enum CloseAction: Equatable {
        /// Closing already (or free): nothing more to do.
        case none
        /// Operations are in the ring: shut the socket down so they complete soon.
        case shutDown
        /// Nothing of it is in the ring.
        case quiet
    }

    /// The connection ends now; its slot is released once `mayRelease` says so.
    mutating func close() -> CloseAction {
        guard phase != .free && phase != .closing else { return .none }
        phase = .closing
        return recvArmed || sendInFlight ? .shutDown : .quiet
    }

    /// Closing, and nothing of it in flight (the exchange's upstream operation included).
    @inline(__always) func mayRelease(upstreamBusy: Bool) -> Bool {
        Connection.mayRelease(phase, recvArmed: recvArmed, sendInFlight: sendInFlight, upstreamBusy: upstreamBusy)
    }

    /// The gateway drains: what this connection does. A request in progress becomes the last.
    mutating func drain(hasInput: Bool) -> Phase.DrainAction {
        let action = phase.onDrain(hasInput: hasInput)
        if action == .lastResponse { keepAlive = false }
        return action
    }
}
