/// HTTP upstreams (an edge's origins or parent edges) that a read-through cache fills from. The
/// loops run the fetches themselves, on their own rings (`EventLoop+UpstreamFills`): connect,
/// send, receive with the links and keep-alive pools the API proxy uses, so a miss's first byte
/// leaves on the loop that received the upstream's head, with no thread in between. The source
/// only decides: which upstream to ask, what to send, what an answer means, and which upstreams
/// are down. It is shared by every loop, so it locks what it keeps.
public protocol UpstreamFillSource: AnyObject, Sendable {
    var upstreams: [ServiceUpstream] { get }
    /// The upstreams to ask for `key`, in order (the first that answers wins).
    func order(for key: String) -> [Int]
    /// The whole GET for `key` to `upstream`, ending with the blank line: conditional when
    /// `revalidating` has validators.
    func request(for key: String, upstream: Int, revalidating: ObjectFreshness?) -> [UInt8]
    /// What a final response head (`head`: its bytes, `status`) means for the fill.
    func answer(head: UnsafeRawBufferPointer, status: Int, revalidating: ObjectFreshness?) -> UpstreamAnswer
    /// The upstream answered (or refused), or failed to: it moves in or out of the down list.
    func succeeded(_ upstream: Int)
    func failed(_ upstream: Int)
}

/// An upstream's final answer to a fill's GET, as the source reads it.
public enum UpstreamAnswer: Sendable, Equatable {
    /// A 200: its body is the object, whose file gets `modifiedSeconds` (the upstream's
    /// Last-Modified, else now) and is served while `freshness` says so.
    case body(modifiedSeconds: Int64, freshness: ObjectFreshness)
    /// A 304 to a conditional refresh: the cached copy stays, with this freshness.
    case notModified(ObjectFreshness)
    /// 404 or 410: no such object.
    case notFound
    /// Another 4xx: every upstream would say the same; the fetch fails without asking another.
    case refused(String)
    /// A 5xx or an unexpected status: ask the next upstream.
    case unavailable(String)
}
