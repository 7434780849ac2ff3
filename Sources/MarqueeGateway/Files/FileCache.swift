import CLinux
import Glibc
import MarqueeHTTP

/// Open files under the served root, with their metadata, ETag and (for small files) their bytes,
/// so a hit costs a hash lookup and no syscall. One per event loop, so it needs no locks.
///
/// Freshness: an entry older than `revalidateMilliseconds` is re-checked with one `fstatat`; a file
/// replaced or modified since gets a new entry, while responses already using the old one finish
/// from the descriptor they hold. Safety: files are opened with openat2(RESOLVE_BENEATH), so no
/// symlink or `..` resolution can leave the root.
struct FileCache {
    struct Entry {
        var fd: Int32 = -1
        /// Responses using this entry; it is closed only when this drops to zero.
        var users: Int32 = 0
        var isIndexed = false
        var recentlyUsed = false
        var pathLength: Int32 = 0
        var hash: UInt64 = 0
        var size: Int64 = 0
        var modifiedSeconds: Int64 = 0
        var modifiedNanoseconds: Int64 = 0
        var inode: UInt64 = 0
        var device: UInt64 = 0
        var validatedAt: Int64 = 0
        /// For a read-through cache's file: until when (Unix ms) it may be served without asking
        /// the cache about its freshness again; `min` until first asked.
        var freshUntil = Int64.min
        var mediaType = MediaType.octetStream
        var etagLength: Int32 = 0
        /// The whole file, when small enough to keep in memory.
        var body: UnsafeMutableRawPointer?
        /// A read-only shared mapping of a larger file (its page-cache pages, no copy), when large
        /// files are sent rather than spliced, or encrypted for TLS. Read in this process only
        /// through `MappedFileReads`.
        var mapping: UnsafeMutableRawPointer?
        /// For playlists and manifests: whether any URI needs the `/t/<token>` prefix in path
        /// placement (absolute paths): -1 unknown, 0 no (served unchanged), 1 yes.
        var needsPathRewrite: Int8 = -1
    }

    enum Lookup {
        case entry(Int32)
        case failed(HTTPError)
    }

    static let etagCapacity = 48

    let rootFD: Int32
    let capacity: Int
    let maxPathBytes: Int
    let memoryFileMaxBytes: Int
    let mapsLargeFiles: Bool
    let revalidateMilliseconds: Int64
    let entries: UnsafeMutablePointer<Entry>
    private let paths: UnsafeMutableRawPointer
    private let etags: UnsafeMutableRawPointer
    private let index: UnsafeMutablePointer<Int32>
    private let indexMask: Int
    private var freeList: [Int32]
    private var clockHand = 0

    private(set) var hits: UInt64 = 0
    private(set) var misses: UInt64 = 0
    /// Whether the last `acquire` looked at the disk (opened or re-checked the file), which the
    /// read-through cache takes as a use of the file for its eviction order.
    private(set) var checkedDisk = false

    init(
        rootFD: Int32, capacity: Int, maxPathBytes: Int, memoryFileMaxBytes: Int, mapsLargeFiles: Bool = false,
        revalidateMilliseconds: Int64
    ) {
        self.mapsLargeFiles = mapsLargeFiles
        self.rootFD = rootFD
        self.capacity = capacity
        self.maxPathBytes = maxPathBytes
        self.memoryFileMaxBytes = memoryFileMaxBytes
        self.revalidateMilliseconds = revalidateMilliseconds
        entries = .allocate(capacity: capacity)
        entries.initialize(repeating: Entry(), count: capacity)
        paths = .allocate(byteCount: capacity * (maxPathBytes + 1), alignment: 16)
        etags = .allocate(byteCount: capacity * Self.etagCapacity, alignment: 16)
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        index = .allocate(capacity: size)
        index.initialize(repeating: -1, count: size)
        indexMask = size - 1
        freeList = (0..<Int32(capacity)).reversed()
    }

    @inline(__always) func path(_ e: Int32) -> UnsafeMutableRawPointer { paths + Int(e) * (maxPathBytes + 1) }

    @inline(__always) func etag(_ e: Int32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: etags + Int(e) * Self.etagCapacity, count: Int(entries[Int(e)].etagLength))
    }

    /// The entry for `relativePath` (decoded, NUL-terminated just past its `count`), pinned until
    /// `release`. Cost on a fresh hit: a hash of the path and a compare.
    mutating func acquire(_ relativePath: UnsafeRawBufferPointer, now: Int64) -> Lookup {
        let hash = Self.hash(relativePath)
        var slot = Int(truncatingIfNeeded: hash) & indexMask
        while true {
            let e = index[slot]
            if e < 0 { break }
            if entries[Int(e)].hash == hash && matches(e, relativePath) {
                checkedDisk = now - entries[Int(e)].validatedAt >= revalidateMilliseconds
                if checkedDisk && !isUnchanged(e, relativePath) {
                    unindex(e)
                    break
                }
                entries[Int(e)].validatedAt = now
                entries[Int(e)].users += 1
                entries[Int(e)].recentlyUsed = true
                hits &+= 1
                return .entry(e)
            }
            slot = (slot + 1) & indexMask
        }
        misses &+= 1
        checkedDisk = true
        return open(relativePath, hash: hash, now: now)
    }

    /// Makes the entry re-check its file on its next use (a refresh may replace it).
    mutating func expire(_ e: Int32) {
        entries[Int(e)].validatedAt = Int64.min / 2
    }

    /// Makes every entry re-check its file and its freshness on its next use (after a purge
    /// removed files, or made them stale).
    mutating func expireAll() {
        for e in 0..<capacity where entries[e].isIndexed {
            entries[e].validatedAt = Int64.min / 2
            entries[e].freshUntil = Int64.min
        }
    }

    mutating func release(_ e: Int32) {
        entries[Int(e)].users -= 1
        if entries[Int(e)].users == 0 && !entries[Int(e)].isIndexed { retire(e) }
    }

    // MARK: - Filling

    private mutating func open(_ relativePath: UnsafeRawBufferPointer, hash: UInt64, now: Int64) -> Lookup {
        if relativePath.isEmpty { return .failed(HTTPError(.notFound, "no such file")) }
        let fd = mq_open_beneath(rootFD, relativePath.baseAddress!.assumingMemoryBound(to: CChar.self))
        if fd < 0 {
            switch -fd {
            case ENOENT, ENOTDIR, ENAMETOOLONG: return .failed(HTTPError(.notFound, "no such file"))
            case EXDEV, ELOOP: return .failed(HTTPError(.forbidden, "path leaves the served root"))
            case EACCES, EPERM: return .failed(HTTPError(.forbidden, "file is not readable"))
            case EMFILE, ENFILE: return .failed(HTTPError(.serviceUnavailable, "out of file descriptors"))
            default: return .failed(HTTPError(.internalServerError, "could not open file"))
            }
        }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            Glibc.close(fd)
            return .failed(HTTPError(.notFound, "no such file"))
        }
        guard let e = takeEntry() else {
            Glibc.close(fd)
            return .failed(HTTPError(.serviceUnavailable, "file cache is full"))
        }
        var entry = Entry()
        entry.fd = fd
        entry.users = 1
        entry.isIndexed = true
        entry.recentlyUsed = true
        entry.pathLength = Int32(relativePath.count)
        entry.hash = hash
        entry.size = Int64(st.st_size)
        entry.modifiedSeconds = Int64(st.st_mtim.tv_sec)
        entry.modifiedNanoseconds = Int64(st.st_mtim.tv_nsec)
        entry.inode = UInt64(st.st_ino)
        entry.device = UInt64(st.st_dev)
        entry.validatedAt = now
        entry.mediaType = MediaType(path: relativePath)
        if entry.size <= Int64(memoryFileMaxBytes) {
            guard let body = Self.readWhole(fd, size: Int(entry.size)) else {
                Glibc.close(fd)
                freeList.append(e)
                return .failed(HTTPError(.internalServerError, "could not read file"))
            }
            entry.body = body
        } else if mapsLargeFiles {
            // A file truncated under a response makes a send from the mapping fail with EFAULT, and
            // a read of it here (MappedFileReads) see zeros and report it: never a SIGBUS.
            let mapped = mmap(nil, Int(entry.size), PROT_READ, MAP_SHARED, fd, 0)
            if let mapped, mapped != MAP_FAILED { entry.mapping = mapped }  // else: spliced instead
        }
        entries[Int(e)] = entry
        path(e).copyMemory(from: relativePath.baseAddress!, byteCount: relativePath.count)
        path(e).storeBytes(of: 0, toByteOffset: relativePath.count, as: UInt8.self)
        writeETag(e)
        var slot = Int(truncatingIfNeeded: hash) & indexMask
        while index[slot] >= 0 { slot = (slot + 1) & indexMask }
        index[slot] = e
        return .entry(e)
    }

    /// `"<mtime seconds hex>.<nanoseconds hex>-<size hex>"`: changes whenever the file does, and is
    /// the same on every server that sees the same file.
    private func writeETag(_ e: Int32) {
        var w = ResponseWriter(base: etags + Int(e) * Self.etagCapacity, capacity: Self.etagCapacity)
        let entry = entries[Int(e)]
        Self.writeETag(modifiedSeconds: entry.modifiedSeconds, nanoseconds: entry.modifiedNanoseconds, size: entry.size, into: &w)
        entries[Int(e)].etagLength = Int32(w.count)
    }

    /// The ETag of a file with this modification time and size (a streaming fill's, too, before
    /// its file is whole).
    static func writeETag(modifiedSeconds: Int64, nanoseconds: Int64, size: Int64, into w: inout ResponseWriter) {
        w.append(byte: 0x22)
        w.append(hex: UInt64(bitPattern: modifiedSeconds))
        w.append(byte: 0x2E)
        w.append(hex: UInt64(bitPattern: nanoseconds))
        w.append(byte: 0x2D)
        w.append(hex: UInt64(bitPattern: size))
        w.append(byte: 0x22)
    }

    private static func readWhole(_ fd: Int32, size: Int) -> UnsafeMutableRawPointer? {
        let body = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 64)
        var done = 0
        while done < size {
            let n = pread(fd, body + done, size - done, off_t(done))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                body.deallocate()
                return nil
            }
            done += n
        }
        return body
    }

    private func isUnchanged(_ e: Int32, _ relativePath: UnsafeRawBufferPointer) -> Bool {
        var st = stat()
        let rc = fstatat(rootFD, relativePath.baseAddress!.assumingMemoryBound(to: CChar.self), &st, 0)
        let entry = entries[Int(e)]
        return rc == 0 && UInt64(st.st_ino) == entry.inode && UInt64(st.st_dev) == entry.device
            && Int64(st.st_size) == entry.size && Int64(st.st_mtim.tv_sec) == entry.modifiedSeconds
            && Int64(st.st_mtim.tv_nsec) == entry.modifiedNanoseconds
    }

    private func matches(_ e: Int32, _ relativePath: UnsafeRawBufferPointer) -> Bool {
        Int(entries[Int(e)].pathLength) == relativePath.count
            && memcmp(path(e), relativePath.baseAddress!, relativePath.count) == 0
    }

    // MARK: - Eviction

    /// A free entry, evicting an unused one (clock algorithm) when none is free.
    private mutating func takeEntry() -> Int32? {
        if let e = freeList.popLast() { return e }
        for _ in 0..<(2 * capacity) {
            let e = Int32(clockHand)
            clockHand = (clockHand + 1) % capacity
            guard entries[Int(e)].isIndexed, entries[Int(e)].users == 0 else { continue }
            if entries[Int(e)].recentlyUsed {
                entries[Int(e)].recentlyUsed = false
                continue
            }
            unindex(e)
            return freeList.popLast()
        }
        return nil
    }

    /// Removes an entry from the index (backward-shift deletion keeps probe chains intact); it is
    /// retired now if unused, else by the last `release`.
    private mutating func unindex(_ e: Int32) {
        var slot = Int(truncatingIfNeeded: entries[Int(e)].hash) & indexMask
        while index[slot] != e { slot = (slot + 1) & indexMask }
        var hole = slot
        var next = (hole + 1) & indexMask
        while index[next] >= 0 {
            let home = Int(truncatingIfNeeded: entries[Int(index[next])].hash) & indexMask
            // move `next` into the hole unless its home lies cyclically in (hole, next]
            let distanceToNext = (next - home) & indexMask
            let distanceToHole = (hole - home) & indexMask
            if distanceToHole < distanceToNext {
                index[hole] = index[next]
                hole = next
            }
            next = (next + 1) & indexMask
        }
        index[hole] = -1
        entries[Int(e)].isIndexed = false
        if entries[Int(e)].users == 0 { retire(e) }
    }

    /// Unmaps an entry's file after a read of the mapping found the file shorter (its pages past
    /// the end are zeros now), and has the file checked again on its next use. Responses still
    /// using the entry go on with `pread`, which ends them at the file's end. Only TLS rounds call
    /// this, and with TLS on no send from a mapping is ever in the ring (every media connection
    /// encrypts), so nothing in flight still points into it.
    mutating func dropMapping(_ e: Int32) {
        guard let mapping = entries[Int(e)].mapping else { return }
        munmap(mapping, Int(entries[Int(e)].size))
        entries[Int(e)].mapping = nil
        expire(e)
    }

    private mutating func retire(_ e: Int32) {
        Glibc.close(entries[Int(e)].fd)
        entries[Int(e)].body?.deallocate()
        if let mapping = entries[Int(e)].mapping { munmap(mapping, Int(entries[Int(e)].size)) }
        entries[Int(e)] = Entry()
        freeList.append(e)
    }

    /// FNV-1a, 64-bit.
    @inline(__always) static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }
}
