import CLinux
import Glibc

/// The revoked sessions every event loop consults on each request: a fixed table in raw memory,
/// read without locks, written rarely (by the revocation feed or an admin call) under a writers-only
/// mutex that readers never touch.
///
/// Each slot is 20 words: a version (seqlock), the id's ``StableHash``, a word packing the reason
/// (top 8 bits) with the expiry in Unix seconds, the id's length, and the id itself (up to 128
/// bytes, zero-padded). Storing the whole id, not only hashes, makes a false positive impossible:
/// a request is refused only for the exact id that was revoked.
///
/// Readers probe at most ``probeLength`` slots from the hash, skip a slot whose version is odd or
/// changed while they read it (a writer is claiming it, which it only does for an empty or expired
/// slot, so nothing revoked is hidden), and stop at a never-used slot. Writers give an existing entry
/// a new reason/expiry with one atomic store, and claim a new slot under the seqlock. Expired
/// entries stay in place until a writer reuses their slot; slots never return to empty, which
/// keeps every probe chain intact without tombstones.
public final class RevocationList: @unchecked Sendable {
    // @unchecked Sendable: slot memory is allocated in init, freed in deinit, and otherwise accessed
    // only through C11 atomics (readers) or under `writerLock` plus atomics (writers).

    /// Slots in the table (a power of two).
    public let capacity: Int
    /// Slots examined per lookup and per insertion.
    public static let probeLength = 32
    /// The longest session id accepted.
    public static let maxSessionLength = 128

    static let wordsPerSlot = 20
    static let expiryMask: UInt64 = (1 << 56) - 1

    private let words: UnsafeMutablePointer<UInt64>
    private let mask: Int
    private let writerLock: UnsafeMutablePointer<pthread_mutex_t>

    /// - Parameter capacity: slots, rounded up to a power of two (at least 64). 160 bytes each;
    ///   the default 16,384 (2.5 MiB) holds about 10,000 concurrent revocations comfortably.
    public init(capacity: Int = 16_384) {
        var size = 64
        while size < capacity { size <<= 1 }
        self.capacity = size
        mask = size - 1
        words = .allocate(capacity: size * RevocationList.wordsPerSlot)
        words.initialize(repeating: 0, count: size * RevocationList.wordsPerSlot)
        writerLock = .allocate(capacity: 1)
        pthread_mutex_init(writerLock, nil)
    }

    deinit {
        pthread_mutex_destroy(writerLock)
        writerLock.deallocate()
        words.deallocate()
    }

    /// Whether `session` is revoked at `nowSeconds`.
    /// - Parameters:
    ///   - session: the session id bytes as received (any bytes; ids that could never have been
    ///     stored, empty or longer than 128 bytes, are simply not revoked).
    ///   - nowSeconds: Unix time; an entry counts while `nowSeconds < expiresAt`.
    /// - Returns: the reason, or nil.
    /// Cost: one hash and a few cache lines; thread-safe, lock-free, allocation-free.
    public func isRevoked(_ session: UnsafeRawBufferPointer, nowSeconds: Int64) -> RevocationReason? {
        let length = session.count
        guard length >= 1, length <= RevocationList.maxSessionLength else { return nil }
        let hash = StableHash.hash64(session)
        let start = Int(truncatingIfNeeded: hash) & mask
        for probe in 0..<RevocationList.probeLength {
            let slot = words + ((start + probe) & mask) * RevocationList.wordsPerSlot
            let version = mq_load_acquire(slot)
            if version & 1 != 0 { continue }
            let stored = mq_load_acquire(slot + 1)
            if stored == 0 { return nil }
            if stored != hash { continue }
            let meta = mq_load_acquire(slot + 2)
            guard mq_load_acquire(slot + 3) == UInt64(length), RevocationList.sameID(slot + 4, session) else { continue }
            guard mq_load_acquire(slot) == version else { continue }
            guard Int64(bitPattern: meta & RevocationList.expiryMask) > nowSeconds else { return nil }
            return RevocationReason(rawValue: UInt8(meta >> 56))
        }
        return nil
    }

    /// Convenience for tests and tools: `isRevoked` on a String's UTF-8.
    public func isRevoked(_ session: String, nowSeconds: Int64) -> RevocationReason? {
        var session = session
        return session.withUTF8 { isRevoked(UnsafeRawBufferPointer($0), nowSeconds: nowSeconds) }
    }

    /// Records that `session` is revoked for `reason` until `expiresAt`. Revoking an id again
    /// replaces its reason and expiry (an earlier expiry shortens it).
    /// - Parameters:
    ///   - session: 1...128 characters of `[A-Za-z0-9._:-]`.
    ///   - expiresAt: Unix seconds after which the entry no longer counts and its slot may be reused.
    ///   - nowSeconds: the current Unix time, to tell which slots are free; defaults to the clock.
    /// - Returns: false if the id is malformed or the table has no free slot in its probe window
    ///   (the table is too small: raise its capacity). True otherwise, including when the entry
    ///   is already expired and nothing needed storing.
    /// Takes the writers' mutex; never call from an event loop.
    @discardableResult
    public func revoke(_ session: String, reason: RevocationReason, expiresAt: Int64, nowSeconds: Int64? = nil) -> Bool {
        guard RevocationList.isValidSessionID(session) else { return false }
        let now = nowSeconds ?? LimitsClock.wallSeconds()
        let meta = UInt64(reason.rawValue) << 56 | (UInt64(clamping: max(0, expiresAt)) & RevocationList.expiryMask)
        var session = session
        return session.withUTF8 { utf8 in
            let id = UnsafeRawBufferPointer(utf8)
            let hash = StableHash.hash64(id)
            let start = Int(truncatingIfNeeded: hash) & mask
            pthread_mutex_lock(writerLock)
            defer { pthread_mutex_unlock(writerLock) }
            var free: UnsafeMutablePointer<UInt64>?
            for probe in 0..<RevocationList.probeLength {
                let slot = words + ((start + probe) & mask) * RevocationList.wordsPerSlot
                let stored = mq_load_acquire(slot + 1)
                if stored == 0 {
                    if free == nil { free = slot }
                    break
                }
                if stored == hash, mq_load_acquire(slot + 3) == UInt64(id.count), RevocationList.sameID(slot + 4, id) {
                    mq_store_release(slot + 2, meta)
                    return true
                }
                if free == nil, Int64(bitPattern: mq_load_acquire(slot + 2) & RevocationList.expiryMask) <= now {
                    free = slot
                }
            }
            if expiresAt <= now { return true }
            guard let slot = free else { return false }
            let version = mq_load_acquire(slot)
            mq_store_release(slot, version &+ 1)
            mq_store_release(slot + 1, hash)
            mq_store_release(slot + 2, meta)
            mq_store_release(slot + 3, UInt64(id.count))
            for w in 0..<(RevocationList.maxSessionLength / 8) {
                mq_store_release(slot + 4 + w, RevocationList.word(id, w))
            }
            mq_store_release(slot, version &+ 2)
            return true
        }
    }

    /// Entries currently stored, expired or not (diagnostics; scans the table).
    public func storedEntryCount(liveAt nowSeconds: Int64? = nil) -> Int {
        var n = 0
        for i in 0..<capacity {
            let slot = words + i * RevocationList.wordsPerSlot
            guard mq_load_acquire(slot + 1) != 0 else { continue }
            if let nowSeconds, Int64(bitPattern: mq_load_acquire(slot + 2) & RevocationList.expiryMask) <= nowSeconds { continue }
            n += 1
        }
        return n
    }

    /// True for 1...128 characters of `[A-Za-z0-9._:-]`.
    public static func isValidSessionID(_ session: String) -> Bool {
        let utf8 = session.utf8
        guard utf8.count >= 1, utf8.count <= maxSessionLength else { return false }
        return utf8.allSatisfy { b in
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: ":"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }

    /// Bytes `8w ..< 8w+8` of `id` as a little-endian word, zero past the end.
    @inline(__always)
    static func word(_ id: UnsafeRawBufferPointer, _ w: Int) -> UInt64 {
        let offset = w * 8
        let count = id.count - offset
        guard count > 0 else { return 0 }
        if count >= 8 { return UInt64(littleEndian: id.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
        return StableHash.partial(id.baseAddress! + offset, count)
    }

    /// Compares the stored id words with `id` (whose length already matched).
    @inline(__always)
    static func sameID(_ stored: UnsafeMutablePointer<UInt64>, _ id: UnsafeRawBufferPointer) -> Bool {
        for w in 0..<((id.count + 7) / 8) where mq_load_acquire(stored + w) != word(id, w) { return false }
        return true
    }
}
