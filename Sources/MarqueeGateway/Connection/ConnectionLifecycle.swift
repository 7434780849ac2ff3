/// What happens to a connection, by phase, without I/O: what received bytes, a FIN, the end of a
/// response, a drain and a close mean. The event loop asks these and performs the action on its
/// ring, so every lifecycle rule is in one place and tested alone (`ConnectionLifecycleTests`).
/// The waits inside a phase have their own machines: `RequestParking` (a parked request) and
/// `UpstreamExchangeMachine` (a proxied exchange).
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
