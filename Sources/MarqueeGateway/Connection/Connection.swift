import MarqueeHTTP
import MarqueePolicy

/// The state of one client connection, kept in a preallocated table indexed by slot.
struct Connection {
    enum Phase: UInt8 {
        case free
        /// Waiting for (the rest of) a request head.
        case awaitingHead
        /// A response is being written (or waits for a pipe).
        case responding
        /// The request waits for the shared rate limiter, its turn under a limit with a delay, or
        /// a read-through fetch (`parking` says which); it goes on when the answer arrives.
        case parked
        /// Reading the body of a request for a service (`ProxyExchange`).
        case receivingBody
        /// A service upstream has the request; its response is awaited or being relayed.
        case proxying
        /// The final response was sent and our side shut down; the client's bytes are discarded
        /// until it closes, so it reads the response instead of a reset.
        case lingering
        /// Shut down; waiting for operations in flight to complete before the descriptor closes.
        case closing
    }

    var fd: Int32 = -1
    /// The peer's address (a trusted proxy's, when one fronts the client).
    var peer = IPAddress(high: 0, low: 0)
    /// Where this connection is counted against its address's cap; -1 when it is not.
    var addressSlot: Int32 = -1
    /// What a parked request waits for, and what it resumes with.
    var parking = RequestParking()
    /// A limit to report in `RateLimit` headers on this response (rate_limits.headers: always).
    var reportedLimit: Int16 = -1
    var reportedRemaining: Int32 = 0
    var reportedResetMicros: UInt64 = 0
    var generation: UInt16 = 0
    /// The phase and what is in flight: changed only through its transitions (`ConnectionState`).
    var state = ConnectionState()
    @inline(__always) var phase: Phase { state.phase }
    @inline(__always) var recvArmed: Bool { state.recvArmed }
    @inline(__always) var sendInFlight: Bool { state.sendInFlight }
    @inline(__always) var peerClosed: Bool { state.peerClosed }
    @inline(__always) var keepAlive: Bool { state.keepAlive }
    @inline(__always) var waitingForPipe: Bool { state.waitingForPipe }
    @inline(__always) var streamsFill: Bool { state.streamsFill }
    @inline(__always) var awaitingFill: Bool { state.awaitingFill }
    /// The request was HTTP/1.0, so keeping the connection open must be said explicitly.
    var isHTTP10 = false

    // Bytes received but not yet consumed (a partial head, or pipelined requests).
    var input: Int32 = -1
    var inputCount: Int32 = 0
    var boundary = HeadBoundary()
    /// Bytes after the head that the request's body took (a proxied request), set by `respond`.
    var bodyConsumed: Int32 = 0

    // The response in progress.
    /// Its memory in the loop's `responses` pool (head, then record); -1 between responses.
    var response: Int32 = -1
    var status = HTTPStatus.ok
    var headCount: Int32 = 0
    var entry: Int32 = -1
    /// A body built for this response (a rewritten playlist) in the loop's body pool.
    var body: Int32 = -1
    var sendRemaining: Int64 = 0
    var bodyOffset: Int64 = 0
    var bodyEnd: Int64 = 0
    var pipe: Int32 = -1
    var pipeFill: Int32 = 0
    var requestStartNanoseconds: UInt64 = 0
    var responseBytes: Int64 = 0

    // The delivery record of the response in progress (`EventLoop+Records`): started in the loop's
    // per-slot record memory when the response began, completed when it ends or is cut.
    var recording = false
    var recordStartNanoseconds: UInt64 = 0
    /// Bytes of this response the socket took so far, head included; `headBytes` of them are head.
    var sentBytes: Int64 = 0
    var headBytes: Int32 = 0
    /// What the policy learned before the request parked for a fetch (it is not checked again
    /// when it resumes): the session's length (its bytes wait in the slot's record memory), the
    /// country and the client.
    var stagedSessionLength: UInt8 = 0
    var stagedCountry: UInt16 = 0
    var stagedClient = IPAddress(high: 0, low: 0)

    // The splice chain in flight, enough to replay which step did what.
    var planHead = false
    var planPoll = false
    var planDrain: Int32 = 0
    var planChunkBytes: Int32 = 0
    var planChunks: Int32 = 0
    var planStart: Int64 = 0
    /// Where the round's chunks stop: the body's end, or what a fill has so far.
    var planEnd: Int64 = 0

    // HTTPS (`EventLoop+TLS`): the output buffer lent to the slot (-1 when none), how much of it
    // went out, whether a send of it is in the ring, and the response send it carries: the
    // handler's kind (0 for none) and the plaintext it reports.
    var tlsOutput: Int32 = -1
    var tlsSent: Int32 = 0
    var tlsFlushing = false
    var tlsDelivery: UInt8 = 0
    var tlsPlain: Int32 = 0
    /// The first bytes arrived (they are checked for plain HTTP sent to the HTTPS port).
    var tlsHandshakeBegan = false
    /// The close_notify went out with the last response.
    var tlsCloseNotified = false
    /// Accepted on the plain listener that only redirects to HTTPS (`tls.redirect_listen`).
    var redirectsToHTTPS = false

    // Membership in one timeout list.
    var timerList: Int8 = -1
    var timerPrev: Int32 = -1
    var timerNext: Int32 = -1
    var deadline: Int64 = 0
}

/// What a completion belongs to, packed into the 64-bit user data: kind, chain step, generation, slot.
struct UserData {
    enum Kind: UInt8 {
        case accept = 1, recv, send, stream, tick, wake, ignored
        /// A service upstream connection's operation (slot = link index, step = `UpstreamStep`).
        case upstream
        /// A relayed response part sent to a client.
        case relay
        /// A request queued by a rate limit with a delay may go on (step = the limit's index).
        case paced
        /// Ciphertext sent to a client over TLS (`EventLoop+TLS`).
        case tls
    }

    @inline(__always) static func make(_ kind: Kind, slot: Int32 = 0, generation: UInt16 = 0, step: UInt8 = 0) -> UInt64 {
        UInt64(kind.rawValue) << 56 | UInt64(step) << 48 | UInt64(generation) << 32 | UInt64(UInt32(bitPattern: slot))
    }

    let value: UInt64
    @inline(__always) var kind: Kind? { Kind(rawValue: UInt8(truncatingIfNeeded: value >> 56)) }
    @inline(__always) var step: Int { Int(UInt8(truncatingIfNeeded: value >> 48)) }
    @inline(__always) var generation: UInt16 { UInt16(truncatingIfNeeded: value >> 32) }
    @inline(__always) var slot: Int32 { Int32(bitPattern: UInt32(truncatingIfNeeded: value)) }
}

/// Connections ordered by deadline, one list per timeout kind: every member of a list got the same
/// timeout, so appending at the tail keeps each list sorted and expiry only looks at heads.
enum TimeoutKind: Int8, CaseIterable {
    case header, idle, send, linger
    /// Waiting for a service upstream's response head or its next body bytes.
    case upstream
    /// Reading a request body for a service: one deadline for the whole body, never restarted, so
    /// a client trickling a byte at a time cannot hold its connection and buffer for good.
    case body
}
