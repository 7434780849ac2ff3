import CLinux
import Glibc

/// The RAM tier of a read-through cache (`cache.memory_bytes`): the pages of the objects in demand
/// are locked in memory, so no bulk download, crawler or other process's reads can push the hot
/// set out of RAM and send its hits to the disk.
///
/// Which objects: S3-FIFO (`CacheIndex`) over the uses the loops report, weighted by bytes and
/// bounded by `budget`. A new object enters the small FIFO; one used again moves to the main FIFO;
/// a scan of objects used once passes through the small FIFO and never displaces main.
///
/// How: an admitted object's file is mapped read-only and `mlock`ed (its page-cache pages, no
/// copy); eviction unlocks and unmaps it. Responses keep reading the cached files as before (the
/// loops' sends and splices find the pages in memory), so the tier adds nothing to a hit and its
/// mappings are never handed out: a mapping that outlives its file (replaced, purged) only holds
/// memory until it is evicted or forgotten. Where the kernel refuses to lock (no CAP_IPC_LOCK and
/// a low RLIMIT_MEMLOCK, as in many containers) the pages are still mapped and read ahead but may
/// be reclaimed: the tier says so once and on `marquee_memory_cache_locked`.
///
/// Used by the cache's fetch threads only (its own lock; file work happens outside the cache's).
final class MemoryTier: @unchecked Sendable {
    let budget: Int64
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var index: CacheIndex
    private var mappings: [String: (address: UnsafeMutableRawPointer, size: Int)] = [:]
    private var warnedLock = false
    /// Gauges and counters for the metrics (written under the lock, read relaxed).
    private let counters: UnsafeMutablePointer<UInt64>
    enum Counter: Int, CaseIterable {
        case bytes, objects, admissions, evictions
        /// 1 while pages are locked, 0 once the kernel refused.
        case locked
    }

    init(budget: Int64) {
        self.budget = budget
        index = CacheIndex(maxBytes: budget)
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        counters = .allocate(capacity: Counter.allCases.count)
        counters.initialize(repeating: 0, count: Counter.allCases.count)
        counters[Counter.locked.rawValue] = 1
        // Room to lock the budget (and a margin), where the hard limit allows.
        _ = mq_raise_memlock(UInt64(budget) * 2)
    }

    func read(_ counter: Counter) -> UInt64 { mq_load_relaxed(counters + counter.rawValue) }

    /// Whether `key` is resident (for tests and the admin's view).
    func holds(_ key: String) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return mappings[key] != nil
    }

    /// The loops used these cached objects: resident ones earn a use, others are admitted (their
    /// file opened with `open`, which returns a descriptor or -1), and the tier evicts beyond its
    /// budget. Objects larger than the small FIFO's share are not admitted (they would flush it).
    func noteUses(_ uses: [(key: String, hash: UInt64, size: Int64)], open: (String) -> Int32) {
        guard budget > 0, !uses.isEmpty else { return }
        var victims: [(address: UnsafeMutableRawPointer, size: Int)] = []
        pthread_mutex_lock(mutex)
        var admitted: [(String, UInt64, Int64)] = []
        for use in uses {
            if index.contains(use.key) {
                index.touch(use.key)
            } else if use.size > 0 && use.size <= index.smallBytes {
                admitted.append((use.key, use.hash, use.size))
            }
        }
        pthread_mutex_unlock(mutex)

        for (key, hash, size) in admitted {
            let fd = open(key)
            guard fd >= 0 else { continue }
            let mapped = mmap(nil, Int(size), PROT_READ, MAP_SHARED, fd, 0)
            close(fd)
            guard let mapped, mapped != MAP_FAILED else { continue }
            if mlock(mapped, Int(size)) != 0 {
                _ = madvise(mapped, Int(size), MADV_WILLNEED)
                noteLockRefused(errno)
            }
            pthread_mutex_lock(mutex)
            if let old = mappings[key] { victims.append(old) }
            mappings[key] = (mapped, Int(size))
            index.insert(key, hash: hash, size: size)
            mq_add_relaxed(counters + Counter.admissions.rawValue, 1)
            for victim in index.evictions(keeping: key) {
                if let gone = mappings.removeValue(forKey: victim) { victims.append(gone) }
                mq_add_relaxed(counters + Counter.evictions.rawValue, 1)
            }
            publishGauges()
            pthread_mutex_unlock(mutex)
        }
        for victim in victims { munmap(victim.address, victim.size) }  // unmapping unlocks
    }

    /// The cached file of `key` was replaced, evicted from disk or purged: its pages go.
    func forget(_ keys: [String]) {
        guard budget > 0, !keys.isEmpty else { return }
        var victims: [(address: UnsafeMutableRawPointer, size: Int)] = []
        pthread_mutex_lock(mutex)
        for key in keys {
            index.remove(key)
            if let gone = mappings.removeValue(forKey: key) { victims.append(gone) }
        }
        publishGauges()
        pthread_mutex_unlock(mutex)
        for victim in victims { munmap(victim.address, victim.size) }
    }

    private func publishGauges() {
        mq_store_relaxed(counters + Counter.bytes.rawValue, UInt64(max(0, index.totalBytes)))
        mq_store_relaxed(counters + Counter.objects.rawValue, UInt64(index.count))
    }

    private func noteLockRefused(_ error: Int32) {
        pthread_mutex_lock(mutex)
        let first = !warnedLock
        warnedLock = true
        mq_store_relaxed(counters + Counter.locked.rawValue, 0)
        pthread_mutex_unlock(mutex)
        if first {
            GatewayLog.warning(
                "cache.memory_bytes: the kernel refused to lock cached pages in memory (\(String(cString: strerror(error)))); "
                    + "the RAM tier reads them ahead but cannot keep them resident. Give the process CAP_IPC_LOCK or raise RLIMIT_MEMLOCK (ulimit -l) to \(budget) bytes.")
        }
    }
}
