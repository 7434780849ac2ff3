/// One TCP connection from a loop to a service upstream, in the loop's preallocated link table.
/// A link is active for one client exchange at a time, or idle in its upstream's keep-alive pool.
struct UpstreamLink {
    enum State: UInt8 {
        case free
        case connecting
        /// Carrying an exchange for `owner`.
        case active
        /// In the keep-alive pool, watched by a poll that fires if the upstream closes it.
        case idle
    }

    var fd: Int32 = -1
    var upstream: Int16 = -1
    /// Bumped whenever the link changes hands, so completions of earlier uses are recognised.
    var generation: UInt16 = 0
    var state = State.free
    var owner: Int32 = -1
    var ownerGeneration: UInt16 = 0
    /// The next idle link of the same upstream (a LIFO list: the warmest connection is reused first).
    var nextIdle: Int32 = -1
    /// A connect, send or receive is in the ring (its buffers must stay put until it completes).
    var inFlight = false
    /// Taken from the pool: a failure before any response byte may be a stale connection.
    var reused = false

    // An https upstream's link (`EventLoop+UpstreamTLS`): its buffers in the loop's pool (-1 when
    // plain), the ciphertext written and sent, the plaintext the send in flight reports to the
    // exchange (-1: a handshake flight), and where the receive in flight decrypts into.
    var tlsBuffer: Int32 = -1
    var tlsOutLength: Int32 = 0
    var tlsOutSent: Int32 = 0
    var tlsPlainPending: Int32 = -1
    var tlsReceiveOffset: Int32 = 0
}

/// The ring operations of a link, carried in the user data's step field.
enum UpstreamStep: UInt8 {
    case connect, send, receive, idlePoll
    /// Ciphertext to or from an https upstream (`EventLoop+UpstreamTLS`).
    case tlsSend, tlsReceive
}
