import MarqueeHTTP

/// The proxied request in progress on one client connection, in a per-slot table: the request
/// being assembled and sent, and the response being relayed (its decisions in `machine`).
struct ProxyExchange {
    enum RequestBody: UInt8 {
        case none, length, chunked
    }

    var upstream: Int16 = -1
    /// The client address the policy decided on (rate limits are checked once the body is read).
    var client = IPAddress(high: 0, low: 0)
    var link: Int32 = -1
    var method = HTTPMethod.get
    /// Request head and body in the loop's body pool: the head is assembled at offset 0, moved to
    /// end at `bodyOffset` once the body is complete, and sent from `requestStart` to `requestEnd`.
    var request: Int32 = -1
    var bodyOffset = 0
    var headCount = 0
    var requestStart = 0
    var requestEnd = 0
    var body = RequestBody.none
    var bodyLength = 0
    var bodyRemaining: Int64 = 0
    var bodyCapacity = 0
    var chunks = ChunkedDecoder()

    /// Relay memory (see `EventLoop.relayHeadBytes`): the client's response head, then what is received.
    var relay: Int32 = -1
    /// The exchange with the upstream: what was sent and received, and what to do next.
    var machine = UpstreamExchangeMachine(method: .get, clientIsHTTP10: false, requestLength: 0, maxHeadBytes: 0)
}
