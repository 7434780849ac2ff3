/// Where a read-through cache gets objects it does not hold: an object store (S3) adapter that
/// the role supplies, so the engine needs no store client.
public protocol ReadThroughSource: Sendable {
    /// Downloads the object `key` (a validated relative path) into a new file at `path`, which
    /// appears whole or not at all, with the object's modification time. Blocks the calling fetch
    /// thread (never an event loop) for at most `timeoutMilliseconds`. `revalidating` is the
    /// freshness of the copy already cached, when there is one with validators: the source may
    /// answer `.notModified` instead of downloading it again. A source that learns the body's
    /// length before the body may stream it to waiting requests through `fill` (`ObjectFill`:
    /// `begin`, then `advance` after each write); one that does not leaves it alone.
    func download(
        _ key: String, toFile path: String, timeoutMilliseconds: Int64, revalidating: ObjectFreshness?, fill: ObjectFill?
    ) -> ReadThroughDownload
}

public enum ReadThroughDownload: Sendable, Equatable {
    /// Stored, and never expires (an object store's objects).
    case stored
    /// Stored, and served while `ObjectFreshness` says so.
    case storedExpiring(ObjectFreshness)
    /// The cached copy is still the object (a 304): only its freshness is renewed.
    case notModified(ObjectFreshness)
    case notFound
    /// The store refused or failed; the reason is logged, never sent to clients.
    case failed(String)
    case timedOut
}

/// A read-through cache (the `cache.*` keys, `config/README.md`) over the origin's object store
/// (`origin.store`) or an edge's upstreams (`edge.upstreams`).
public struct ReadThroughSettings: Sendable {
    public enum Origin: Sendable {
        /// An object store, downloaded from by the cache's fetch threads.
        case store(any ReadThroughSource)
        /// HTTP upstreams, fetched from by the loops on their own rings.
        case upstreams(any UpstreamFillSource)
    }

    public var origin: Origin
    /// The source is an edge's upstreams rather than an object store (it changes what refusals say).
    public var sourceIsUpstream: Bool {
        if case .upstreams = origin { return true }
        return false
    }
    /// The upstreams the loops fill from, when the source is an edge's.
    public var upstreamSource: (any UpstreamFillSource)? {
        if case .upstreams(let source) = origin { return source }
        return nil
    }
    /// The cache folder: files are served from `<directory>/objects`, downloads land in
    /// `<directory>/tmp` first.
    public var directory: String
    /// The bound on the bytes of cached files; beyond it files are removed (`CacheIndex`, S3-FIFO).
    public var maxBytes: Int64
    /// Fetch threads, each downloading one object at a time from a store. Default 4. (Fills from
    /// upstreams run on the loops; one thread then keeps the RAM tier.)
    public var fetchers = defaultFetchers
    public static let defaultFetchers = 4
    /// Most distinct objects waiting for a fetch thread (a store's) or being filled (upstreams');
    /// more misses get 503. Default 1024.
    public var queueLimit = 1024
    /// Longest fetch before its requests get 504, in ms. Default 10000.
    public var timeoutMilliseconds: Int64 = 10_000
    /// How long a 404 from the store is remembered (and answered without asking), in ms. Default 2000.
    public var negativeMilliseconds: Int64 = 2_000
    /// The RAM tier's bound (`MemoryTier`): the pages of this many bytes of the objects in demand
    /// are locked in memory. 0 (the default): no RAM tier, the page cache alone.
    public var memoryBytes: Int64 = 0

    public init(source: any ReadThroughSource, directory: String, maxBytes: Int64) {
        self.init(origin: .store(source), directory: directory, maxBytes: maxBytes)
    }

    public init(origin: Origin, directory: String, maxBytes: Int64) {
        self.origin = origin
        self.directory = directory
        self.maxBytes = maxBytes
    }

    /// The folder the gateway serves.
    public var objectsDirectory: String { directory + "/objects" }
}
