import MarqueeHTTP

/// The proxied request in progress on one client connection, in a per-slot table: the request
/// being assembled and sent, and the response being relayed.
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
    var requestSent = 0
    var body = RequestBody.none
    var bodyLength = 0
    var bodyRemaining: Int64 = 0
    var bodyCapacity = 0
    var chunks = ChunkedDecoder()

    /// Relay memory (see `EventLoop.relayHeadBytes`): the client's response head, then what is received.
    var relay: Int32 = -1
    /// Bytes of the upstream's head received so far (before it is complete).
    var received = 0
    var sawResponseByte = false
    var relayingBody = false
    var bodyComplete = false
    var framing = ResponseFraming(head: ResponseHead(), requestMethod: .head)
    /// Chunked from the upstream, but the client speaks HTTP/1.0: relay the data close-delimited.
    var dechunk = false
    var upstreamReusable = false
    var retried = false
    var status: Int16 = 0

    var isIdempotent: Bool {
        switch method {
        case .get, .head, .put, .delete, .options: true
        default: false
        }
    }
}
