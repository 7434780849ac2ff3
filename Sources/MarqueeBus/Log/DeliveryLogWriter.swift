import Glibc

/// Appends delivery records to a folder of log segments (`docs/delivery-records.md`, "The local
/// append-only log"): the carrier when no Redis is configured, and the spill while Redis is away.
///
/// One writer owns a folder (an exclusive `flock` on `writer.lock` refuses a second gateway) and is
/// used from one thread, the gateway's record writer. Sequences continue across restarts: opening
/// cuts a torn last record (a crash mid-write), then starts a new segment for the new boot at the
/// next sequence, so a consumer's position stays valid.
public final class DeliveryLogWriter {
    public let directory: String
    public let identity: DeliveryLogIdentity
    /// A segment is closed when the next batch would take it past this size.
    public let segmentBytes: Int
    /// The longest time written records wait for `fdatasync`: what a power cut can lose.
    public let fsyncInterval: Duration
    /// Segments are removed once older than this and past every registered consumer.
    public let retention: Duration

    /// The sequence the next record will get.
    public private(set) var nextSequence: UInt64
    private var segmentFirst: UInt64
    private var segmentSize = 0
    private var fd: Int32 = -1
    private let lockFD: Int32
    private var unsynced = false
    private var lastSync: ContinuousClock.Instant

    /// Opens (or creates) the log in `directory`.
    /// - Throws: `DeliveryLogError` when the folder cannot be made or written, another writer holds
    ///   it, or the identity's text does not fit the header.
    public init(
        directory: String, identity: DeliveryLogIdentity, segmentBytes: Int = 64 << 20, fsyncInterval: Duration = .milliseconds(100),
        retention: Duration = .seconds(7 * 86_400)
    ) throws {
        self.directory = directory
        self.identity = identity
        self.segmentBytes = max(segmentBytes, DeliveryLogSegment.headerSize + DeliveryRecordLayout.size)
        self.fsyncInterval = fsyncInterval
        self.retention = retention
        try DeliveryLogSegment.makeDirectory(directory)
        _ = try DeliveryLogSegment.header(for: identity, first: 0)  // the identity fits, or say why now

        let lockPath = directory + "/writer.lock"
        lockFD = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else { throw DeliveryLogError.system("cannot open", lockPath) }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(lockFD)
            throw DeliveryLogError("another process writes delivery records to \(directory) (writer.lock is held)")
        }

        // Continue after the last complete record of the newest segment.
        var next: UInt64 = 0
        if let last = try DeliveryLogSegment.list(directory).last {
            let path = directory + "/" + DeliveryLogSegment.fileName(first: last)
            let lastFD = open(path, O_RDWR | O_CLOEXEC)
            guard lastFD >= 0 else { throw DeliveryLogError.system("cannot open", path) }
            defer { Glibc.close(lastFD) }
            let size = DeliveryLogSegment.fileSize(lastFD) ?? 0
            let count = DeliveryLogSegment.recordCount(fileSize: size)
            if count == 0 {
                unlink(path)  // only a header (or less): nothing a consumer could have read
            } else if size != DeliveryLogSegment.headerSize + Int(count) * DeliveryRecordLayout.size {
                guard ftruncate(lastFD, off_t(DeliveryLogSegment.headerSize + Int(count) * DeliveryRecordLayout.size)) == 0 else {
                    throw DeliveryLogError.system("cannot cut the torn tail of", path)
                }
            }
            next = last + count
        }
        nextSequence = next
        segmentFirst = next
        lastSync = .now
        do {
            try openSegment(first: next)
        } catch {
            Glibc.close(lockFD)
            throw error
        }
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
        Glibc.close(lockFD)
    }

    /// Appends whole records (`records.count` a multiple of `DeliveryRecordLayout.size`) and returns
    /// the first one's sequence. Syncs when `fsyncInterval` has passed since the last sync.
    /// - Throws: `DeliveryLogError` when the write fails; the records up to the failure may be in
    ///   the segment (a record is whole or cut on the next open).
    @discardableResult
    public func append(_ records: UnsafeRawBufferPointer) throws -> UInt64 {
        precondition(records.count % DeliveryRecordLayout.size == 0, "the log takes whole delivery records")
        let first = nextSequence
        var rest = records
        while !rest.isEmpty {
            if segmentSize + DeliveryRecordLayout.size > segmentBytes { try rotate() }
            let room = (segmentBytes - segmentSize) / DeliveryRecordLayout.size * DeliveryRecordLayout.size
            let chunk = UnsafeRawBufferPointer(rebasing: rest.prefix(room))
            try writeAll(chunk)
            segmentSize += chunk.count
            nextSequence += UInt64(chunk.count / DeliveryRecordLayout.size)
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(chunk.count))
            unsynced = true
        }
        if ContinuousClock.now - lastSync >= fsyncInterval { try sync() }
        return first
    }

    /// Flushes written records to the disk now.
    public func sync() throws {
        guard unsynced else { return }
        guard fdatasync(fd) == 0 else { throw DeliveryLogError.system("cannot sync", currentPath) }
        unsynced = false
        lastSync = .now
    }

    /// Syncs and closes the segment; the writer cannot be used afterwards.
    public func close() throws {
        guard fd >= 0 else { return }
        try sync()
        Glibc.close(fd)
        fd = -1
    }

    // MARK: - Segments

    private var currentPath: String { directory + "/" + DeliveryLogSegment.fileName(first: segmentFirst) }

    private func openSegment(first: UInt64) throws {
        segmentFirst = first
        let path = currentPath
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DeliveryLogError.system("cannot create", path) }
        let header = try DeliveryLogSegment.header(for: identity, first: first)
        try header.withUnsafeBytes { try writeAll($0) }
        segmentSize = header.count
        unsynced = true
    }

    private func rotate() throws {
        try sync()
        Glibc.close(fd)
        fd = -1
        try openSegment(first: nextSequence)
        removeExpiredSegments()
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw DeliveryLogError.system("cannot write", currentPath)
            }
            done += n
        }
    }

    /// Removes closed segments older than `retention` whose records every registered consumer
    /// (`DeliveryLogConsumers`) has committed. Best effort: a failure leaves the file for next time.
    private func removeExpiredSegments() {
        guard let firsts = try? DeliveryLogSegment.list(directory), firsts.count > 1 else { return }
        let committed = DeliveryLogConsumers.lowestCommitted(in: directory) ?? .max
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let cutoff = Int64(now.tv_sec) - retention.components.seconds
        for (first, next) in zip(firsts, firsts.dropFirst()) where next <= committed && first != segmentFirst {
            let path = directory + "/" + DeliveryLogSegment.fileName(first: first)
            var info = stat()
            guard stat(path, &info) == 0, Int64(info.st_mtim.tv_sec) <= cutoff else { continue }
            unlink(path)
        }
    }
}
