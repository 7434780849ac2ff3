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
}

/// The ring operations of a link, carried in the user data's step field.
enum UpstreamStep: UInt8 {
    case connect, send, receive, idlePoll
}
