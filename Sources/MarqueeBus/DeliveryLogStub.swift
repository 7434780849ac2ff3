import Glibc

// STUB, to be deleted when `main`'s DeliveryLogWriter lands (merge `main`, then remove this file):
// the lead engineer's writer has this API; this minimal version only lets the branch build and
// its records land in a log of the documented shape (segments of a 64-byte header, then records).

struct DeliveryLogIdentity: Sendable, Hashable {
    var gatewayID: String
    var role: String
    var region: String
    var boot: UInt64
    init(gatewayID: String, role: String, region: String, boot: UInt64) {
        self.gatewayID = gatewayID
        self.role = role
        self.region = region
        self.boot = boot
    }
}

struct DeliveryLogStubError: Error, CustomStringConvertible {
    var description: String
}

final class DeliveryLogWriter {
    let directory: String
    let identity: DeliveryLogIdentity
    let segmentBytes: Int
    let fsyncNanoseconds: UInt64
    private var fd: Int32 = -1
    private var segmentSize = 0
    private var syncedAt: UInt64 = 0
    private var dirty = false
    private(set) var nextSequence: UInt64 = 0

    init(directory: String, identity: DeliveryLogIdentity, segmentBytes: Int = 64 << 20, fsyncInterval: Duration = .milliseconds(100)) throws {
        self.directory = directory
        self.identity = identity
        self.segmentBytes = max(segmentBytes, 64 + DeliveryRecordLayout.size)
        let (s, a) = fsyncInterval.components
        fsyncNanoseconds = UInt64(max(0, s)) * 1_000_000_000 + UInt64(max(0, a / 1_000_000_000))
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw DeliveryLogStubError(description: "cannot make \(directory): \(String(cString: strerror(errno)))")
        }
        // Continue after what earlier starts wrote, so no segment is overwritten.
        if let dir = opendir(directory) {
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                guard name.hasPrefix("deliveries-"), name.hasSuffix(".log"), let first = UInt64(name.dropFirst(11).dropLast(4)) else { continue }
                var st = stat()
                guard stat(directory + "/" + name, &st) == 0 else { continue }
                let records = UInt64(max(0, (Int(st.st_size) - 64) / DeliveryRecordLayout.size))
                nextSequence = max(nextSequence, first + records)
            }
        }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    @discardableResult
    func append(_ records: UnsafeRawBufferPointer) throws -> UInt64 {
        precondition(records.count % DeliveryRecordLayout.size == 0)
        let first = nextSequence
        var offset = 0
        while offset < records.count {
            if fd < 0 || segmentSize + DeliveryRecordLayout.size > segmentBytes { try openSegment() }
            let room = (segmentBytes - segmentSize) / DeliveryRecordLayout.size * DeliveryRecordLayout.size
            let n = min(room, records.count - offset)
            try writeAll(UnsafeRawBufferPointer(rebasing: records[offset..<(offset + n)]))
            segmentSize += n
            offset += n
            nextSequence += UInt64(n / DeliveryRecordLayout.size)
        }
        dirty = true
        let now = Self.now()
        if now - syncedAt >= fsyncNanoseconds { try sync() }
        return first
    }

    func sync() throws {
        guard fd >= 0, dirty else { return }
        guard fdatasync(fd) == 0 else { throw DeliveryLogStubError(description: "fdatasync: \(String(cString: strerror(errno)))") }
        dirty = false
        syncedAt = Self.now()
    }

    func close() throws {
        try sync()
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    private func openSegment() throws {
        if fd >= 0 { try close() }
        var digits = String(nextSequence)
        digits = String(repeating: "0", count: max(0, 20 - digits.count)) + digits
        let path = "\(directory)/deliveries-\(digits).log"
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DeliveryLogStubError(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        var header = [UInt8](repeating: 0, count: 64)
        func put(_ text: String, at offset: Int, room: Int) {
            for (i, byte) in text.utf8.prefix(room).enumerated() { header[offset + i] = byte }
        }
        put("MQDREC01", at: 0, room: 8)
        header[8] = DeliveryRecordLayout.version
        withUnsafeBytes(of: identity.boot.littleEndian) { for i in 0..<8 { header[12 + i] = $0[i] } }
        put(identity.gatewayID, at: 20, room: 24)
        put(identity.role, at: 44, room: 8)
        put(identity.region, at: 52, room: 12)
        try header.withUnsafeBytes { try writeAll($0) }
        segmentSize = 64
        dirty = true
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw DeliveryLogStubError(description: "write: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
