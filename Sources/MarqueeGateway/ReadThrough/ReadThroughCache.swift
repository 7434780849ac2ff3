import CLinux
import Glibc
import MarqueePolicy

/// A fetch's outcome for one parked request, handed back to its loop.
struct FetchAnswer {
    var slot: Int32
    var generation: UInt16
    var outcome: FetchOutcome
    /// With `.streaming`: the fill to serve from.
    var fill: ObjectFill? = nil
}

/// How a miss goes on (`ReadThroughCache.request`).
enum MissAdmission {
    /// The request waits for the fetch's answer (it was queued, or joined one queued or running).
    case waits(coalesced: Bool)
    case busy
    case notFound
    /// The object's body is arriving: stream it from this fill now.
    case streaming(ObjectFill)
    /// The request waits, and the loop runs the fetch itself (fills from upstreams).
    case fetches(LoopFetch)
}

/// A fetch a loop runs on its own ring (a fill from upstreams): the key, the fill the body
/// streams through, and the cached copy's freshness when the fetch may refresh it conditionally.
/// The loop ends it with `ReadThroughCache.conclude`.
final class LoopFetch {
    let key: String
    let fill: ObjectFill
    let temporaryName: String
    let revalidating: ObjectFreshness?

    init(key: String, fill: ObjectFill, temporaryName: String, revalidating: ObjectFreshness?) {
        self.key = key
        self.fill = fill
        self.temporaryName = temporaryName
        self.revalidating = revalidating
    }
}

/// A bounded read-through cache over the origin's object store or an edge's upstreams, shared by
/// every loop.
///
/// A loop that misses (the file cache finds no file under `<directory>/objects`) parks the request
/// and calls `request`; misses for one key coalesce into one fetch (`FetchTable`). From a store,
/// fetch threads download into `<directory>/tmp`; from upstreams, the loop that missed first runs
/// the fetch on its own ring (`LoopFetch`, `EventLoop+UpstreamFills`) and hands the outcome back
/// through `conclude`. Either way the file is renamed into place (its modification time is the
/// object's, so ETag and Last-Modified are the same on every gateway and after every refetch),
/// files beyond `maxBytes` are evicted (`CacheIndex`: S3-FIFO, so one bulk download cannot flush
/// the files in demand), and the outcome reaches the owning loops through `takeAnswers` and their
/// wake-up eventfd. Hits never come here: a loop only pushes the file's path hash into its own
/// lock-free `SingleProducerRing` when its file cache checks the disk (at most once per
/// `files.revalidate_ms` per file), which counts the file's uses.
/// Evicted files are unlinked; responses holding them open finish from their descriptors.
final class ReadThroughCache: @unchecked Sendable {
    let settings: ReadThroughSettings
    private let objectsFD: Int32
    private let temporaryFD: Int32
    private let temporaryPath: String
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var table: FetchTable
    private var index: CacheIndex
    private var answers: [[FetchAnswer]] = []
    private var touches: [SingleProducerRing<UInt64>] = []
    /// The freshness of objects that expire (an edge's), by key; objects without one never do.
    private var freshness: [String: ObjectFreshness] = [:]
    /// Fills whose bodies are arriving, by key, from `ObjectFill.begin` until the fetch ends.
    private var fills: [String: ObjectFill] = [:]
    /// The RAM tier, when `memoryBytes` > 0.
    let memory: MemoryTier?
    /// The loops run the fetches (the source is upstreams): misses claim them instead of queueing.
    let loopsFetch: Bool
    /// Names the temporary files of the loops' fetches (under the lock).
    private var loopFetchCount = 0
    /// `freshness.count`, readable without the lock: zero (an origin's store) costs a hit nothing.
    private let expiringCount: UnsafeMutablePointer<UInt64>
    /// Whether the file system keeps the freshness on the files (user extended attributes).
    private var attributesWork = true
    private var wakeFDs: [Int32] = []
    /// The `Counter`s (written under the lock, read by the admin thread and, for the purge epoch,
    /// by the loops).
    private let counters: UnsafeMutablePointer<UInt64>
    enum Counter: Int, CaseIterable {
        case fetches, fetchErrors, notFound, evictions, bytes, files, purged
        /// Bumped by every purge: a loop that sees it change re-checks its open files on disk.
        case purgeEpoch
    }

    /// Makes the cache folders, empties `tmp`, and indexes the files already cached (a restart
    /// keeps a warm cache), evicting any beyond the bound.
    init(_ settings: ReadThroughSettings) throws(GatewayError) {
        self.settings = settings
        for path in [settings.directory, settings.objectsDirectory, settings.directory + "/tmp"] {
            guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
                throw .folder(path, message: "cannot create cache folder \(path): \(String(cString: strerror(errno)))")
            }
        }
        objectsFD = open(settings.objectsDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        temporaryPath = settings.directory + "/tmp"
        temporaryFD = open(temporaryPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard objectsFD >= 0, temporaryFD >= 0 else {
            throw .folder(settings.directory, message: "cannot open cache folder \(settings.directory): \(String(cString: strerror(errno)))")
        }
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        pthread_cond_init(condition, nil)
        table = FetchTable(queueLimit: settings.queueLimit, negativeMilliseconds: settings.negativeMilliseconds)
        memory = settings.memoryBytes > 0 ? MemoryTier(budget: settings.memoryBytes) : nil
        loopsFetch = settings.sourceIsUpstream
        index = CacheIndex(maxBytes: settings.maxBytes)
        counters = .allocate(capacity: Counter.allCases.count)
        counters.initialize(repeating: 0, count: Counter.allCases.count)
        expiringCount = .allocate(capacity: 1)
        expiringCount.initialize(to: 0)

        Self.removeAll(in: temporaryFD)
        var found: [(key: String, size: Int64, used: Int64)] = []
        Self.walk(objectsFD, prefix: "") { found.append($0) }
        for file in found.sorted(by: { $0.used < $1.used }) {
            index.restore(file.key, hash: Self.hash(file.key), size: file.size)
            let fd = openat(objectsFD, file.key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            if fd >= 0 {
                if let kept = ObjectFreshness.load(from: fd) {
                    freshness[file.key] = kept
                } else if settings.sourceIsUpstream {
                    // An edge's copy whose freshness was not kept: refreshed before it is served,
                    // and served if the upstreams cannot be reached.
                    freshness[file.key] = ObjectFreshness(freshUntil: 0, staleWhileRevalidateUntil: 0, staleIfErrorUntil: .max)
                }
                close(fd)
            }
        }
        let victims = index.evictions()
        for key in victims {
            removeFile(key)
            freshness[key] = nil
        }
        mq_store_relaxed(expiringCount, UInt64(freshness.count))
        publishGauges(evicted: victims.count)
    }

    /// Starts the fetch threads; `wakeFDs[loop]` wakes a loop when answers wait for it.
    func start(wakeFDs: [Int32]) {
        self.wakeFDs = wakeFDs
        answers = wakeFDs.map { _ in [] }
        touches = wakeFDs.map { _ in SingleProducerRing(capacity: 4096, filler: 0) }
        // With the loops fetching, one thread remains for the RAM tier's bookkeeping.
        for worker in 0..<(loopsFetch ? 1 : settings.fetchers) {
            OSThread.detach { [self] in fetchLoop(worker: worker) }
        }
    }

    func read(_ counter: Counter) -> UInt64 { mq_load_relaxed(counters + counter.rawValue) }

    // MARK: - Loop side (misses only, except `touch`)

    /// A miss for the decoded relative path: queue or join its fetch, stream its fill, or answer
    /// at once. Cost: a lock and a String; only on misses.
    func request(_ relativePath: UnsafeRawBufferPointer, waiter: FetchWaiter) -> MissAdmission {
        guard Self.isValidKey(relativePath) else { return .notFound }
        let key = String(decoding: relativePath, as: UTF8.self)
        let now = Self.monotonicMilliseconds()
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        switch table.request(key, waiter, now: now, claim: loopsFetch) {
        case .queued:
            pthread_cond_signal(condition)
            return .waits(coalesced: false)
        case .claimed: return .fetches(loopFetch(key))
        case .joined: return .waits(coalesced: true)
        case .busy: return .busy
        case .notFound: return .notFound
        case .streaming:
            guard let fill = fills[key] else { return .busy }
            return .streaming(fill)
        }
    }

    /// Whether the cached object at `relativePath` may be served now, for an object that expires.
    /// A loop asks when its open file's last answer lapsed or it checked the file on disk; with no
    /// expiring object at all it costs one relaxed load.
    /// Also says until when the answer holds, for the loop to remember on its open file: a fresh
    /// object until it expires, a stale one being refreshed behind for a quarter second. When the
    /// loops fetch, a background refresh comes back for the asking loop to run.
    func decision(_ relativePath: UnsafeRawBufferPointer, now: Int64) -> (ObjectFreshness.Decision, until: Int64, refresh: LoopFetch?) {
        guard mq_load_relaxed(expiringCount) > 0 else { return (.fresh, .max, nil) }
        let key = String(decoding: relativePath, as: UTF8.self)
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard let known = freshness[key] else { return (.fresh, .max, nil) }
        let decision = known.decide(now: now)
        switch decision {
        case .fresh:
            return (.fresh, known.freshUntil, nil)
        case .serveAndRefresh:
            guard table.requestRefresh(key, claim: loopsFetch) else { return (.serveAndRefresh, now + 250, nil) }
            if loopsFetch { return (.serveAndRefresh, now + 250, loopFetch(key)) }
            pthread_cond_signal(condition)
            return (.serveAndRefresh, now + 250, nil)
        case .refresh:
            return (.refresh, now, nil)
        }
    }

    /// Under the lock: a fetch of `key` a loop claimed.
    private func loopFetch(_ key: String) -> LoopFetch {
        loopFetchCount += 1
        let name = "fill-\(loopFetchCount)"
        mq_add_relaxed(counters + Counter.fetches.rawValue, 1)
        let cached = index.contains(key) ? freshness[key] : nil
        let revalidating = cached.flatMap { $0.etag != nil || $0.lastModified != nil ? $0 : nil }
        let fill = ObjectFill(key: key, temporaryPath: temporaryPath + "/" + name, cache: self)
        return LoopFetch(key: key, fill: fill, temporaryName: name, revalidating: revalidating)
    }

    /// A loop's fetch ended with `download` (its file, when stored, is whole at the fetch's
    /// temporary path): placed or dropped as a fetch thread's is, and its waiters answered.
    func conclude(_ fetch: LoopFetch, _ download: ReadThroughDownload) {
        conclude(fetch.key, temporaryName: fetch.temporaryName, FetchResult(download), fill: fetch.fill, onLoop: true)
    }

    /// Whether a stale copy may answer a request whose refresh failed (stale-if-error).
    func mayServeStale(_ relativePath: UnsafeRawBufferPointer, now: Int64) -> Bool {
        guard mq_load_relaxed(expiringCount) > 0 else { return true }
        let key = String(decoding: relativePath, as: UTF8.self)
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return freshness[key]?.mayServeOnError(now: now) ?? true
    }

    /// Moves the answers waiting for `loop` into `buffer` (which must be empty; capacities swap).
    func takeAnswers(loop: Int, into buffer: inout [FetchAnswer]) {
        pthread_mutex_lock(mutex)
        swap(&buffer, &answers[loop])
        pthread_mutex_unlock(mutex)
    }

    /// A loop's file cache checked the file named by `hash` on disk: it is in use. Lock-free;
    /// dropped when the ring is full.
    @inline(__always) func touch(loop: Int, hash: UInt64) {
        _ = touches[loop].push(hash)
    }

    /// A key the store and the disk can both take: 1 to 1024 bytes, no empty, `.` or `..`
    /// segment, no control character or backslash (the request path decoder refuses most already).
    static func isValidKey(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard (1...1024).contains(bytes.count) else { return false }
        var segmentStart = 0
        for i in 0...bytes.count {
            if i == bytes.count || bytes[i] == UInt8(ascii: "/") {
                let length = i - segmentStart
                if length == 0 { return false }
                if length <= 2 && bytes[segmentStart] == UInt8(ascii: ".") && (length == 1 || bytes[segmentStart + 1] == UInt8(ascii: ".")) {
                    return false
                }
                segmentStart = i + 1
            } else if bytes[i] < 0x20 || bytes[i] == 0x7F || bytes[i] == UInt8(ascii: "\\") {
                return false
            }
        }
        return true
    }

    static func hash(_ key: String) -> UInt64 {
        var key = key
        return key.withUTF8 { FileCache.hash(UnsafeRawBufferPointer($0)) }
    }

    /// The purge count so far: a loop compares it with the last it saw (one relaxed load).
    @inline(__always) var purgeEpoch: UInt64 { mq_load_relaxed(counters + Counter.purgeEpoch.rawValue) }

    // MARK: - Streaming fills (fetch threads, or loops filling from upstreams)

    /// A fill's body started: the requests waiting for it stream it from now on, and so does
    /// every later miss until the fetch ends.
    func publish(_ fill: ObjectFill) {
        var loops: UInt64 = 0
        pthread_mutex_lock(mutex)
        fills[fill.key] = fill
        for waiter in table.beginStreaming(fill.key) {
            answers[Int(waiter.loop)].append(FetchAnswer(slot: waiter.slot, generation: waiter.generation, outcome: .streaming, fill: fill))
            loops |= Self.loopBit(Int(waiter.loop))
        }
        pthread_mutex_unlock(mutex)
        wake(loops: loops)
    }

    /// Wakes the loops in the bit set (`loopBit`; bit 63 stands for every loop from 63 on).
    func wake(loops: UInt64) {
        guard loops != 0 else { return }
        var one: UInt64 = 1
        for loop in wakeFDs.indices where loops & Self.loopBit(loop) != 0 {
            _ = write(wakeFDs[loop], &one, 8)
        }
    }

    @inline(__always) static func loopBit(_ loop: Int) -> UInt64 { 1 << UInt64(min(loop, 63)) }

    // MARK: - Purges (the admin thread)

    /// Removes the object or the objects under the prefix; returns how many files went. The
    /// loops see the purge epoch change and re-check their open files before serving them again.
    /// A fetch already under way for a purged key still lands (it began after the object was
    /// published, or the purge could not have named it).
    func purge(_ request: PurgeRequest) -> Result<Int, GatewayError> {
        let key: String
        switch request.normalised() {
        case .failure(let problem): return .failure(problem)
        case .success(let normalised): key = normalised
        }
        var victims: [String] = []
        pthread_mutex_lock(mutex)
        switch request {
        case .path:
            if index.remove(key) != nil { victims.append(key) }
            table.forgetMissing(key: key)
        case .prefix:
            victims = index.keys(withPrefix: key)
            for victim in victims { index.remove(victim) }
            table.forgetMissing(prefix: key)
        }
        for victim in victims { freshness[victim] = nil }
        mq_store_relaxed(expiringCount, UInt64(freshness.count))
        publishGauges(evicted: 0)
        mq_add_relaxed(counters + Counter.purged.rawValue, UInt64(victims.count))
        pthread_mutex_unlock(mutex)
        memory?.forget(victims)
        for victim in victims { removeFile(victim) }
        // After the files are gone, so a loop that re-checks finds them missing. Under the lock:
        // purges may come from the admin thread and from the purge subscriber at once.
        pthread_mutex_lock(mutex)
        mq_add_relaxed(counters + Counter.purgeEpoch.rawValue, 1)
        pthread_mutex_unlock(mutex)
        return .success(victims.count)
    }

    /// Marks every cached object stale, on disk too: each is refreshed (conditionally, with its
    /// validators) before it is served again, and served while the upstreams fail only within
    /// stale-if-error. For when purges may have been missed (`PurgeFeed`). O(files); rare.
    func makeEverythingStale() {
        var stale: [(String, ObjectFreshness)] = []
        pthread_mutex_lock(mutex)
        for key in index.keys(withPrefix: "") {
            let kept = freshness[key]
            let marked = ObjectFreshness(
                freshUntil: 0, staleWhileRevalidateUntil: 0, staleIfErrorUntil: kept?.staleIfErrorUntil ?? .max, etag: kept?.etag,
                lastModified: kept?.lastModified)
            freshness[key] = marked
            stale.append((key, marked))
        }
        mq_store_relaxed(expiringCount, UInt64(freshness.count))
        // The loops forget what they remembered about their open files.
        mq_add_relaxed(counters + Counter.purgeEpoch.rawValue, 1)
        pthread_mutex_unlock(mutex)
        guard attributesWork else { return }
        for (key, marked) in stale {
            _ = withParent(of: key, creating: false) { folder, leaf -> Bool in
                let fd = openat(folder, leaf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
                guard fd >= 0 else { return false }
                defer { close(fd) }
                return marked.store(on: fd)
            }
        }
    }

    // MARK: - Fetch threads

    private func fetchLoop(worker: Int) {
        var counter = 0
        while true {
            pthread_mutex_lock(mutex)
            var next = table.start()
            while next == nil {
                var deadline = timespec()
                clock_gettime(CLOCK_REALTIME, &deadline)
                deadline.tv_sec += 1
                pthread_cond_timedwait(condition, mutex, &deadline)
                let uses = drainTouches()
                if !uses.isEmpty {
                    // The RAM tier maps and locks files: not under the cache's lock.
                    pthread_mutex_unlock(mutex)
                    noteMemoryUses(uses)
                    pthread_mutex_lock(mutex)
                }
                next = table.start()
            }
            let key = next!
            // A cached copy with validators is refreshed conditionally.
            let cached = index.contains(key) ? freshness[key] : nil
            pthread_mutex_unlock(mutex)
            counter += 1
            let temporaryName = "fetch-\(worker)-\(counter)"
            mq_add_relaxed(counters + Counter.fetches.rawValue, 1)
            let revalidating = cached.flatMap { $0.etag != nil || $0.lastModified != nil ? $0 : nil }
            let fill = ObjectFill(key: key, temporaryPath: temporaryPath + "/" + temporaryName, cache: self)
            guard case .store(let store) = settings.origin else { preconditionFailure("only a store's fetches are queued") }
            let download = store.download(
                key, toFile: fill.temporaryPath, timeoutMilliseconds: settings.timeoutMilliseconds, revalidating: revalidating, fill: fill)
            conclude(key, temporaryName: temporaryName, FetchResult(download), fill: fill, onLoop: false)
        }
    }

    /// Places or drops what a fetch brought, then answers its waiters (`finish`). On a loop, the
    /// RAM tier's work (mapping and locking files) is left to the fetch thread.
    private func conclude(_ key: String, temporaryName: String, _ result: FetchResult, fill: ObjectFill, onLoop: Bool) {
        var outcome = result.outcome
        var size: Int64 = 0
        switch result {
        case .stored(let expiring):
            if let placed = place(temporaryName, as: key, freshness: expiring) {
                size = placed
            } else {
                unlinkat(temporaryFD, temporaryName, 0)
                outcome = .failed
            }
        case .notModified(let renewed):
            // The copy on disk is the object: only its freshness changes, on disk too.
            _ = withParent(of: key, creating: false) { folder, leaf -> Bool in
                let fd = openat(folder, leaf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
                guard fd >= 0 else { return false }
                defer { close(fd) }
                return renewed.store(on: fd)
            }
        case .notFound, .failed, .timedOut:
            unlinkat(temporaryFD, temporaryName, 0)
            if case .failed(let reason) = result { GatewayLog.warning("cache fetch of \(key) failed: \(reason)") }
            if case .timedOut = result { GatewayLog.warning("cache fetch of \(key) took longer than \(settings.timeoutMilliseconds) ms") }
        }
        finish(key, result, outcome, size: size, fill: fill, drainsUses: !onLoop)
    }

    /// What a source's download means for the cache.
    private enum FetchResult {
        /// A new copy (`freshness` nil: it never expires).
        case stored(ObjectFreshness?)
        case notModified(ObjectFreshness)
        case notFound
        case failed(String)
        case timedOut

        init(_ download: ReadThroughDownload) {
            switch download {
            case .stored: self = .stored(nil)
            case .storedExpiring(let f): self = .stored(f)
            case .notModified(let f): self = .notModified(f)
            case .notFound: self = .notFound
            case .failed(let reason): self = .failed(reason)
            case .timedOut: self = .timedOut
            }
        }

        /// How the waiting requests are answered: a refreshed copy is served as a stored one.
        var outcome: FetchOutcome {
            switch self {
            case .stored, .notModified: .stored
            case .notFound: .notFound
            case .failed: .failed
            case .timedOut: .timedOut
            }
        }
    }

    private func finish(_ key: String, _ result: FetchResult, _ outcome: FetchOutcome, size: Int64, fill: ObjectFill, drainsUses: Bool) {
        var victims: [String] = []
        var goneUpstream = false
        var uses: [MemoryUse] = []
        var loops: UInt64 = 0
        pthread_mutex_lock(mutex)
        switch (result, outcome) {
        case (.stored(let expiring), .stored):
            if drainsUses { uses = drainTouches() }
            index.insert(key, hash: Self.hash(key), size: size)
            freshness[key] = expiring
            victims = index.evictions(keeping: key)
        case (.notModified(let renewed), _):
            // Unless the copy was evicted or purged while the refresh ran.
            if index.contains(key) {
                index.touch(key)
                freshness[key] = renewed
            }
        case (.notFound, _):
            mq_add_relaxed(counters + Counter.notFound.rawValue, 1)
            // The object is gone upstream: so is the copy.
            if index.remove(key) != nil {
                goneUpstream = true
                freshness[key] = nil
            }
        default:
            mq_add_relaxed(counters + Counter.fetchErrors.rawValue, 1)
        }
        for victim in victims where victim != key { freshness[victim] = nil }
        mq_store_relaxed(expiringCount, UInt64(freshness.count))
        for waiter in table.finish(key, outcome, now: Self.monotonicMilliseconds()) {
            answers[Int(waiter.loop)].append(FetchAnswer(slot: waiter.slot, generation: waiter.generation, outcome: outcome))
            loops |= Self.loopBit(Int(waiter.loop))
        }
        if fill.hasBegun { fills[key] = nil }
        publishGauges(evicted: victims.count)
        pthread_mutex_unlock(mutex)
        // After the file is in place (or gone) and the key no longer streams, so a request that
        // misses from now on finds the file or starts a new fetch.
        fill.end(outcome == .stored ? .complete : .failed)
        if let memory {
            // A new copy replaced the one whose pages it held; evicted and vanished ones go too.
            var replaced = goneUpstream
            if case .stored = result { replaced = true }
            memory.forget(replaced ? victims + [key] : victims)
            noteMemoryUses(uses)
        }
        for victim in victims { removeFile(victim) }
        if goneUpstream { removeFile(key) }
        wake(loops: loops)
    }

    typealias MemoryUse = (key: String, hash: UInt64, size: Int64)

    /// Under the lock: the loops' touches reorder the index. Returns them for the RAM tier (empty
    /// without one).
    private func drainTouches() -> [MemoryUse] {
        var uses: [MemoryUse] = []
        for ring in touches {
            while let hash = ring.pop() {
                index.touch(hash: hash)
                if memory != nil, let object = index.object(forHash: hash) { uses.append((object.key, hash, object.size)) }
            }
        }
        return uses
    }

    /// Not under the lock: the RAM tier admits or credits the objects the loops used.
    private func noteMemoryUses(_ uses: [MemoryUse]) {
        guard let memory, !uses.isEmpty else { return }
        memory.noteUses(uses) { key in
            withParent(of: key, creating: false) { folder, leaf in openat(folder, leaf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) } ?? -1
        }
    }

    private func publishGauges(evicted: Int) {
        mq_store_relaxed(counters + Counter.bytes.rawValue, UInt64(max(0, index.totalBytes)))
        mq_store_relaxed(counters + Counter.files.rawValue, UInt64(index.count))
        if evicted > 0 { mq_add_relaxed(counters + Counter.evictions.rawValue, UInt64(evicted)) }
    }

    // MARK: - Files

    /// Moves `tmp/<name>` to `objects/<key>`, making the key's folders. Every folder is opened
    /// relative to the one above with O_NOFOLLOW, so no symlink can lead the write out of the
    /// cache. Returns the file's size, or nil when it could not be placed.
    private func place(_ temporaryName: String, as key: String, freshness: ObjectFreshness?) -> Int64? {
        var st = stat()
        guard fstatat(temporaryFD, temporaryName, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        // The freshness goes on the file before it is in place, so a restart finds both or neither.
        if let freshness, attributesWork {
            let fd = openat(temporaryFD, temporaryName, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            if fd >= 0 {
                if !freshness.store(on: fd) {
                    attributesWork = false
                    GatewayLog.warning("\(settings.directory) keeps no user extended attributes; cached objects' freshness is lost on restart (they are refreshed before being served again)")
                }
                close(fd)
            }
        }
        let placed = withParent(of: key, creating: true) { folder, leaf in
            renameat(temporaryFD, temporaryName, folder, leaf) == 0
        }
        if placed != true { GatewayLog.warning("cannot place \(key) in the cache: \(String(cString: strerror(errno)))") }
        return placed == true ? Int64(st.st_size) : nil
    }

    private func removeFile(_ key: String) {
        _ = withParent(of: key, creating: false) { folder, leaf in unlinkat(folder, leaf, 0) == 0 }
    }

    /// Runs `body` with the folder holding `key` (opened beneath `objects`) and the key's last segment.
    private func withParent<T>(of key: String, creating: Bool, _ body: (Int32, String) -> T) -> T? {
        let segments = key.split(separator: "/").map(String.init)
        guard let leaf = segments.last else { return nil }
        var folder = dup(objectsFD)
        guard folder >= 0 else { return nil }
        defer { close(folder) }
        for segment in segments.dropLast() {
            if creating { _ = mkdirat(folder, segment, 0o755) }
            let next = openat(folder, segment, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else { return nil }
            close(folder)
            folder = next
        }
        return body(folder, leaf)
    }

    /// The names in `folder` other than `.` and `..`.
    private static func forEachName(in folder: Int32, _ body: (String) -> Void) {
        let copy = dup(folder)
        guard copy >= 0, let directory = fdopendir(copy) else { return }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { body(name) }
        }
    }

    /// Every regular file under `folder` (symlinks are not followed), with its size and last use.
    private static func walk(_ folder: Int32, prefix: String, _ found: ((key: String, size: Int64, used: Int64)) -> Void) {
        forEachName(in: folder) { name in
            var st = stat()
            guard fstatat(folder, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return }
            let key = prefix.isEmpty ? name : prefix + "/" + name
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                found((key, Int64(st.st_size), max(Int64(st.st_atim.tv_sec), Int64(st.st_mtim.tv_sec))))
            case S_IFDIR:
                let child = openat(folder, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { return }
                walk(child, prefix: key, found)
                close(child)
            default:
                return
            }
        }
    }

    private static func removeAll(in folder: Int32) {
        forEachName(in: folder) { name in unlinkat(folder, name, 0) }
    }

    static func monotonicMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

