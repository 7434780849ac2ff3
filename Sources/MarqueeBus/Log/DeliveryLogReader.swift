import Glibc

/// One record read from a log, with its place in it and who wrote it.
public struct DeliveryLogEntry: Sendable, Equatable {
    /// The record's sequence in the log: its position, and with the writer's identity a unique id.
    public let sequence: UInt64
    public let record: DeliveryRecord
    public let source: DeliveryLogIdentity
}

/// What one `read` found.
public struct DeliveryLogBatch: Sendable {
    /// Complete, valid records in sequence order.
    public var entries: [DeliveryLogEntry]
    /// Where to read next: after the last record looked at (valid or not).
    public var next: UInt64
    /// Records between the requested sequence and `next` that were not returned: removed by
    /// retention before they were read, or failing the layout's strict decoding. A consumer logs
    /// and counts these; they never stop it.
    public var skipped: UInt64
}

/// Reads a delivery log by position, the way a consumer tails it: `read(from:limit:)` with the
/// position it committed last, then again from the batch's `next`. Only complete records are
/// returned, so reading while the writer appends is safe; a reader never writes to the log.
public final class DeliveryLogReader {
    public let directory: String
    /// The segment read last, kept open: consumers tail the newest one.
    private var open: (first: UInt64, fd: Int32, source: DeliveryLogIdentity)?

    public init(directory: String) {
        self.directory = directory
    }

    deinit {
        if let open { close(open.fd) }
    }

    /// Up to `limit` records from `sequence` on.
    /// - Throws: `DeliveryLogError` when the folder cannot be listed or a segment cannot be read.
    ///   An empty or missing folder is not an error: nothing has been written yet.
    public func read(from sequence: UInt64, limit: Int) throws -> DeliveryLogBatch {
        var batch = DeliveryLogBatch(entries: [], next: sequence, skipped: 0)
        guard limit > 0 else { return batch }
        var firsts: [UInt64]
        do {
            firsts = try DeliveryLogSegment.list(directory)
        } catch {
            if access(directory, F_OK) != 0 { return batch }
            throw error
        }
        guard let earliest = firsts.first else { return batch }
        if batch.next < earliest {
            batch.skipped += earliest - batch.next  // removed by retention
            batch.next = earliest
        }
        // The segment holding `next`, then the ones after it.
        var index = firsts.lastIndex { $0 <= batch.next } ?? 0
        var buffer = [UInt8]()
        while batch.entries.count < limit, index < firsts.count {
            let first = firsts[index]
            let following = index + 1 < firsts.count ? firsts[index + 1] : nil
            guard let (fd, source) = segment(first) else {
                // Unreadable header: skip the whole segment, up to where the next one starts.
                guard let following else { break }
                batch.skipped += following - batch.next
                batch.next = following
                index += 1
                continue
            }
            let count = DeliveryLogSegment.recordCount(fileSize: DeliveryLogSegment.fileSize(fd) ?? 0)
            let end = first + count
            if batch.next < end {
                let n = Int(min(end - batch.next, UInt64(limit - batch.entries.count)))
                buffer = [UInt8](repeating: 0, count: n * DeliveryRecordLayout.size)
                let offset = DeliveryLogSegment.headerSize + Int(batch.next - first) * DeliveryRecordLayout.size
                let got = try buffer.withUnsafeMutableBytes { bytes in
                    let got = pread(fd, bytes.baseAddress, bytes.count, off_t(offset))
                    guard got >= 0 else {
                        throw DeliveryLogError.system("cannot read", directory + "/" + DeliveryLogSegment.fileName(first: first))
                    }
                    return got / DeliveryRecordLayout.size
                }
                buffer.withUnsafeBytes { bytes in
                    for i in 0..<got {
                        let slice = UnsafeRawBufferPointer(rebasing: bytes[i * DeliveryRecordLayout.size..<(i + 1) * DeliveryRecordLayout.size])
                        if let record = try? DeliveryRecordLayout.decode(slice) {
                            batch.entries.append(DeliveryLogEntry(sequence: batch.next + UInt64(i), record: record, source: source))
                        } else {
                            batch.skipped += 1
                        }
                    }
                }
                batch.next += UInt64(got)
                if got < n { break }  // the file is shorter than it was a moment ago: read again later
                continue
            }
            // This segment is read to its end; move on only when a newer one exists (the writer
            // never appends to a segment once it has started the next).
            guard let following else { break }
            if batch.next < following {
                batch.skipped += following - batch.next  // a gap: records lost to a torn write
                batch.next = following
            }
            index += 1
        }
        return batch
    }

    /// The segment's descriptor and writer, opening it (and closing the previous one) when needed;
    /// nil when its header is not a valid segment header.
    private func segment(_ first: UInt64) -> (Int32, DeliveryLogIdentity)? {
        if let open, open.first == first { return (open.fd, open.source) }
        if let open { close(open.fd) }
        open = nil
        let path = directory + "/" + DeliveryLogSegment.fileName(first: first)
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var header = [UInt8](repeating: 0, count: DeliveryLogSegment.headerSize)
        let identity = header.withUnsafeMutableBytes { bytes -> DeliveryLogIdentity? in
            guard pread(fd, bytes.baseAddress, bytes.count, 0) == bytes.count else { return nil }
            return DeliveryLogSegment.parseHeader(UnsafeRawBufferPointer(bytes), expectedFirst: first)
        }
        guard let identity else {
            close(fd)
            return nil
        }
        open = (first, fd, identity)
        return (fd, identity)
    }
}

/// The positions consumers have committed, kept beside the log so its writer removes only what
/// every consumer has read. A consumer's own store (its database, in the same transaction as the
/// records' effects) stays the truth; this file is a copy written after that commit.
public enum DeliveryLogConsumers {
    /// Notes that consumer `name` has committed everything before `next`.
    /// - Throws: `DeliveryLogError` when the file cannot be written.
    public static func record(_ name: String, next: UInt64, in directory: String) throws {
        precondition(!name.isEmpty && name.utf8.allSatisfy { $0 != UInt8(ascii: "/") && $0 != 0 }, "a consumer name is one path component")
        let folder = directory + "/consumers"
        try DeliveryLogSegment.makeDirectory(folder)
        let path = folder + "/" + name + ".offset"
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DeliveryLogError.system("cannot write", temporary) }
        let text = Array((String(next) + "\n").utf8)
        let written = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == text.count, rename(temporary, path) == 0 else { throw DeliveryLogError.system("cannot write", path) }
    }

    /// The lowest position any registered consumer has committed, nil when none is registered.
    public static func lowestCommitted(in directory: String) -> UInt64? {
        let folder = directory + "/consumers"
        guard let names = DeliveryLogSegment.fileNames(in: folder) else { return nil }
        var lowest: UInt64?
        for name in names where name.hasSuffix(".offset") {
            let fd = open(folder + "/" + name, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            var bytes = [UInt8](repeating: 0, count: 32)
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard n > 0, let value = UInt64(String(decoding: bytes[0..<n], as: UTF8.self).trimmingSuffix()) else { continue }
            lowest = min(lowest ?? .max, value)
        }
        return lowest
    }
}

extension String {
    fileprivate func trimmingSuffix() -> Substring {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == " " { s.removeLast() }
        return s
    }
}
