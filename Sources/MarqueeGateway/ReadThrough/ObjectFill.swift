import CLinux
import Glibc
import MarqueeHTTP
import Synchronization

/// An object on its way into the read-through cache that responses stream from while it arrives
/// (a streaming fill), so a miss's first byte leaves right after the upstream's.
///
/// The cache makes one per fetch and hands it to the source. A source that knows the body's
/// length calls `begin` once the body starts (the temporary file exists, the validators are
/// decided), then `advance` after each write. From `begin` on, the requests waiting for the
/// object, and every later miss for it, are served from the temporary file: a loop sends what
/// `available` says was written and asks to be woken (`watch`) when it has sent it all. The file
/// is renamed into place only when whole; a fill that fails after `begin` cuts the responses
/// streaming from it at the bytes written (their Content-Length was promised, so the client
/// sees a short body, as from any cache), and nothing of it is kept.
public final class ObjectFill: @unchecked Sendable {
    public enum Progress: UInt8 {
        case growing, complete, failed
    }

    let key: String
    let temporaryPath: String
    private unowned let cache: ReadThroughCache

    // Set by `begin`, before the fill is published under the cache's lock; read-only after.
    /// The temporary file, opened for reading (responses hold it after the file is renamed or removed).
    private(set) var fd: Int32 = -1
    private(set) var length: Int64 = 0
    private(set) var modifiedSeconds: Int64 = 0
    private(set) var mediaType = MediaType.octetStream
    private let etagBytes = UnsafeMutableRawPointer.allocate(byteCount: FileCache.etagCapacity, alignment: 16)
    private var etagLength = 0

    private let written = Atomic<Int64>(0)
    private let state = Atomic<UInt8>(Progress.growing.rawValue)
    /// Loops (one bit each; loops past 63 share bit 63) to wake on the next progress.
    private let watchers = Atomic<UInt64>(0)

    init(key: String, temporaryPath: String, cache: ReadThroughCache) {
        self.key = key
        self.temporaryPath = temporaryPath
        self.cache = cache
    }

    deinit {
        if fd >= 0 { close(fd) }
        etagBytes.deallocate()
    }

    // MARK: - Source side (a fetch thread, or the loop running the fill)

    /// The body of `length` bytes starts; the file at the fill's path exists and will carry
    /// `modifiedSeconds` (with 0 ns) as its modification time once whole. Returns whether responses
    /// now stream from it (not for playlists and manifests, which are rewritten whole, nor empty
    /// bodies); either way the source goes on writing the file.
    public func begin(length: Int64, modifiedSeconds: Int64) -> Bool {
        guard fd < 0, length > 0 else { return false }
        var key = key
        let type = key.withUTF8 { MediaType(path: UnsafeRawBufferPointer($0)) }
        guard type.cacheClass != .manifest else { return false }
        let opened = open(temporaryPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard opened >= 0 else { return false }
        fd = opened
        self.length = length
        self.modifiedSeconds = modifiedSeconds
        mediaType = type
        var w = ResponseWriter(base: etagBytes, capacity: FileCache.etagCapacity)
        FileCache.writeETag(modifiedSeconds: modifiedSeconds, nanoseconds: 0, size: length, into: &w)
        etagLength = w.count
        cache.publish(self)
        return true
    }

    /// `bytes` of the body are in the file (written, so a read sees them).
    public func advance(to bytes: Int64) {
        guard fd >= 0 else { return }
        written.store(bytes, ordering: .sequentiallyConsistent)
        wakeWatchers()
    }

    /// The fill ended (the cache calls this once the file is in place, or gone).
    func end(_ progress: Progress) {
        guard fd >= 0 else { return }
        if progress == .complete { written.store(length, ordering: .sequentiallyConsistent) }
        state.store(progress.rawValue, ordering: .sequentiallyConsistent)
        wakeWatchers()
    }

    public var hasBegun: Bool { fd >= 0 }

    private func wakeWatchers() {
        let loops = watchers.exchange(0, ordering: .sequentiallyConsistent)
        if loops != 0 { cache.wake(loops: loops) }
    }

    // MARK: - Loop side

    /// Bytes of the body a response may send now.
    var available: Int64 { written.load(ordering: .sequentiallyConsistent) }

    var progress: Progress { Progress(rawValue: state.load(ordering: .sequentiallyConsistent)) ?? .failed }

    var etag: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: etagBytes, count: etagLength) }

    /// Asks for a wake-up of `loop` on the next progress. The caller reads `available` and
    /// `progress` again afterwards: what landed in between is seen there, or wakes it.
    func watch(loop: Int) {
        watchers.bitwiseOr(ReadThroughCache.loopBit(loop), ordering: .sequentiallyConsistent)
    }
}
