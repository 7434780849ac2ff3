import Glibc
import MarqueeHTTP

/// A cache fill a loop runs on its own ring (`EventLoop+UpstreamFills`): the fetch it serves, the
/// upstreams to ask in order, and the exchange with the one being asked (its decisions in
/// `machine`, the same state machine as the API proxy's). In a per-loop table, reused.
struct FillExchange {
    /// nil: the entry is free.
    var fetch: LoopFetch?
    /// Bumped whenever the entry is reused, so a link's late completion is recognised.
    var generation: UInt16 = 0
    /// Upstreams to ask (indices into the source's), and how many were asked.
    var order: [Int] = []
    var asked = 0
    /// The upstream being asked, and the link to it (-1 when none).
    var upstream = 0
    var link: Int32 = -1
    /// Receive area and request bytes (`EventLoop.fillAreaBytes`), from the loop's pool.
    var area: Int32 = -1
    var machine = UpstreamExchangeMachine(method: .get, clientIsHTTP10: true, requestLength: 0, maxHeadBytes: 0)
    /// The upstream's answer once its head is in.
    var answer: UpstreamAnswer?
    /// The temporary file the body goes to, and how much of it is written.
    var file: Int32 = -1
    var written: Int64 = 0
    /// The body streams to players as it arrives (`ObjectFill.begin` said so).
    var streams = false
    /// Monotonic ms by which the fetch ends (`cache.fetch_timeout_ms`), across upstreams.
    var deadline: Int64 = 0
    /// Why each upstream asked so far failed, for the log.
    var reasons: [String] = []
}
