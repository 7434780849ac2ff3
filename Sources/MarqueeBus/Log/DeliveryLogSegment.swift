import Glibc

/// Who wrote a log segment: the gateway, its role and region, and its boot (a random id per
/// start, so `(gateway, boot, sequence)` is unique even across restarts).
public struct DeliveryLogIdentity: Sendable, Hashable {
    public var gatewayID: String
    public var role: String
    public var region: String
    public var boot: UInt64

    public init(gatewayID: String, role: String, region: String, boot: UInt64) {
        self.gatewayID = gatewayID
        self.role = role
        self.region = region
        self.boot = boot
    }

    /// A boot id from the kernel's random source.
    public static func randomBoot() -> UInt64 {
        UInt64.random(in: .min ... .max)  // the system generator: getrandom(2)
    }
}

/// Why a log cannot be opened, written or read.
public struct DeliveryLogError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }

    static func system(_ what: String, _ path: String, _ code: Int32 = errno) -> DeliveryLogError {
        DeliveryLogError("\(what) \(path): \(String(cString: strerror(code)))")
    }
}

/// The on-disk shape of a log segment, `deliveries-<first sequence, 20 digits>.log`: a 256-byte
/// header, then records of `DeliveryRecordLayout.size` bytes back to back, so record *n* of the
/// segment (sequence `first + n`) is at `256 + n × 768`. The table is in `docs/delivery-records.md`.
enum DeliveryLogSegment {
    static let magic: [UInt8] = Array("MQDREC01".utf8)
    static let headerSize = 256
    static let prefix = "deliveries-"
    static let suffix = ".log"

    // Header offsets.
    static let versionOffset = 8
    static let lengthsOffset = 9  // gateway id, role, region: one byte each
    static let bootOffset = 16
    static let firstOffset = 24
    static let roleOffset = 32
    static let roleCapacity = 16
    static let regionOffset = 48
    static let regionCapacity = 64
    static let gatewayOffset = 112
    static let gatewayCapacity = 128

    static func fileName(first: UInt64) -> String {
        let digits = String(first)
        return prefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    /// The first sequence of a segment named by `fileName(first:)`, nil for any other name.
    static func first(ofFileNamed name: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let digits = name.dropFirst(prefix.count).dropLast(suffix.count)
        guard digits.count == 20, digits.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return UInt64(digits)
    }

    /// The segments of `directory`, by first sequence.
    static func list(_ directory: String) throws(DeliveryLogError) -> [UInt64] {
        guard let names = fileNames(in: directory) else { throw .system("cannot list", directory) }
        return names.compactMap(first(ofFileNamed:)).sorted()
    }

    /// The names in `directory`, nil when it cannot be read.
    static func fileNames(in directory: String) -> [String]? {
        guard let dir = opendir(directory) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) })
        }
        return names
    }

    static func header(for identity: DeliveryLogIdentity, first: UInt64) throws(DeliveryLogError) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: headerSize)
        header.replaceSubrange(0..<8, with: magic)
        header[versionOffset] = DeliveryRecordLayout.version
        func put(_ text: String, at offset: Int, capacity: Int, lengthAt index: Int, name: String) throws(DeliveryLogError) {
            let bytes = Array(text.utf8)
            guard !bytes.isEmpty, bytes.count <= capacity else {
                throw DeliveryLogError("the \(name) of a delivery log must be 1 to \(capacity) bytes, got \(bytes.count)")
            }
            header.replaceSubrange(offset..<offset + bytes.count, with: bytes)
            header[lengthsOffset + index] = UInt8(bytes.count)
        }
        try put(identity.gatewayID, at: gatewayOffset, capacity: gatewayCapacity, lengthAt: 0, name: "gateway id")
        try put(identity.role, at: roleOffset, capacity: roleCapacity, lengthAt: 1, name: "role")
        try put(identity.region, at: regionOffset, capacity: regionCapacity, lengthAt: 2, name: "region")
        withUnsafeBytes(of: identity.boot.littleEndian) { header.replaceSubrange(bootOffset..<bootOffset + 8, with: $0) }
        withUnsafeBytes(of: first.littleEndian) { header.replaceSubrange(firstOffset..<firstOffset + 8, with: $0) }
        return header
    }

    /// Reads and checks a segment's header: the magic, the version, the first sequence its name
    /// says, and text fields within their room.
    static func parseHeader(_ bytes: UnsafeRawBufferPointer, expectedFirst: UInt64) -> DeliveryLogIdentity? {
        guard bytes.count >= headerSize, Array(bytes[0..<8]) == magic, bytes[versionOffset] == DeliveryRecordLayout.version,
            bytes.loadUnaligned(fromByteOffset: firstOffset, as: UInt64.self).littleEndian == expectedFirst
        else { return nil }
        func text(at offset: Int, capacity: Int, lengthAt index: Int) -> String? {
            let length = Int(bytes[lengthsOffset + index])
            guard length > 0, length <= capacity else { return nil }
            return String(validating: bytes[offset..<offset + length], as: UTF8.self)
        }
        guard let gateway = text(at: gatewayOffset, capacity: gatewayCapacity, lengthAt: 0),
            let role = text(at: roleOffset, capacity: roleCapacity, lengthAt: 1),
            let region = text(at: regionOffset, capacity: regionCapacity, lengthAt: 2)
        else { return nil }
        let boot = bytes.loadUnaligned(fromByteOffset: bootOffset, as: UInt64.self).littleEndian
        return DeliveryLogIdentity(gatewayID: gateway, role: role, region: region, boot: boot)
    }

    /// Complete records in a segment file of `size` bytes (a torn tail is not counted).
    static func recordCount(fileSize size: Int) -> UInt64 {
        size <= headerSize ? 0 : UInt64((size - headerSize) / DeliveryRecordLayout.size)
    }

    static func fileSize(_ fd: Int32) -> Int? {
        var info = stat()
        return fstat(fd, &info) == 0 ? Int(info.st_size) : nil
    }

    /// Creates `directory` and its parents.
    static func makeDirectory(_ directory: String) throws(DeliveryLogError) {
        var path = directory.hasPrefix("/") ? "" : "."
        for part in directory.split(separator: "/") {
            path += "/" + part
            if mkdir(path, 0o755) != 0 && errno != EEXIST { throw .system("cannot create", path) }
        }
    }
}
