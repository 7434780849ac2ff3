/// The fixed binary layout of a delivery record (version 1, little-endian, 768 bytes), as the
/// gateway writes it into its per-loop ring and the local log stores it. Fixed size, so a loop
/// fills a preallocated slot without allocating and a reader finds record n at n × 768.
/// The table is in `docs/delivery-records.md`.
public enum DeliveryRecordLayout {
    public static let version: UInt8 = 1
    public static let size = 768

    // Offsets of the fixed fields.
    static let versionOffset = 0
    static let cacheOffset = 1
    static let statusOffset = 2
    static let clientClassOffset = 4
    static let flagsOffset = 5
    static let countryOffset = 6
    static let endOffset = 8
    static let durationOffset = 16
    static let bytesSentOffset = 24
    static let objectSizeOffset = 32
    static let rangeFirstOffset = 40
    static let rangeLastOffset = 48
    static let lengthsOffset = 56  // session, title, version, path: one byte each (path: two)
    static let cmcdLengthOffset = 62

    /// The variable fields: where each starts and how many bytes it may hold.
    public enum Text: CaseIterable, Sendable {
        case session, title, version, path, cmcd

        public var offset: Int {
            switch self {
            case .session: 64
            case .title: 192
            case .version: 256
            case .path: 320
            case .cmcd: 512
            }
        }

        public var capacity: Int {
            switch self {
            case .session: 128
            case .title: 64
            case .version: 64
            case .path: 192
            case .cmcd: 256
            }
        }
    }

    struct Flags: OptionSet {
        let rawValue: UInt8
        static let aborted = Flags(rawValue: 1)
        static let ranged = Flags(rawValue: 2)
        static let truncated = Flags(rawValue: 4)
        static let hasSession = Flags(rawValue: 8)
        static let hasTitle = Flags(rawValue: 16)
    }

    /// Why bytes are not a delivery record.
    public enum DecodingError: Error, Equatable, CustomStringConvertible {
        case wrongSize(Int)
        case unknownVersion(UInt8)
        case badField(String)

        public var description: String {
            switch self {
            case .wrongSize(let n): "a delivery record is \(DeliveryRecordLayout.size) bytes, got \(n)"
            case .unknownVersion(let v): "delivery record version \(v) is not known (this reader knows 1)"
            case .badField(let field): "delivery record field \(field) is malformed"
            }
        }
    }

    // MARK: - Writing

    /// Fills `slot` (at least `size` bytes) with a record. The text fields are raw bytes (ASCII or
    /// UTF-8), cut to their capacity; a cut sets the `truncated` flag, which is returned.
    /// Cost: a few stores and five bounded copies; no allocation.
    @discardableResult
    public static func write(
        into slot: UnsafeMutableRawPointer, endMicroseconds: Int64, durationMicroseconds: UInt32, status: UInt16,
        bytesSent: UInt64, objectSize: UInt64, rangeFirst: Int64, rangeLast: Int64, aborted: Bool,
        cache: DeliveryRecord.CacheStatus, country: (UInt8, UInt8), clientClass: DeliveryRecord.ClientClass,
        session: UnsafeRawBufferPointer?, title: UnsafeRawBufferPointer?, version packageVersion: UnsafeRawBufferPointer?,
        path: UnsafeRawBufferPointer, cmcd: UnsafeRawBufferPointer?
    ) -> Bool {
        var flags: Flags = []
        if aborted { flags.insert(.aborted) }
        if rangeFirst >= 0 && rangeLast >= rangeFirst { flags.insert(.ranged) }
        if session != nil { flags.insert(.hasSession) }
        if title != nil { flags.insert(.hasTitle) }
        slot.storeBytes(of: version, toByteOffset: versionOffset, as: UInt8.self)
        slot.storeBytes(of: cache.rawValue, toByteOffset: cacheOffset, as: UInt8.self)
        slot.storeBytes(of: status.littleEndian, toByteOffset: statusOffset, as: UInt16.self)
        slot.storeBytes(of: clientClass.rawValue, toByteOffset: clientClassOffset, as: UInt8.self)
        slot.storeBytes(of: country.0, toByteOffset: countryOffset, as: UInt8.self)
        slot.storeBytes(of: country.1, toByteOffset: countryOffset + 1, as: UInt8.self)
        slot.storeBytes(of: endMicroseconds.littleEndian, toByteOffset: endOffset, as: Int64.self)
        slot.storeBytes(of: durationMicroseconds.littleEndian, toByteOffset: durationOffset, as: UInt32.self)
        slot.storeBytes(of: UInt32(0), toByteOffset: durationOffset + 4, as: UInt32.self)
        slot.storeBytes(of: bytesSent.littleEndian, toByteOffset: bytesSentOffset, as: UInt64.self)
        slot.storeBytes(of: objectSize.littleEndian, toByteOffset: objectSizeOffset, as: UInt64.self)
        let ranged = flags.contains(.ranged)
        slot.storeBytes(of: (ranged ? rangeFirst : -1).littleEndian, toByteOffset: rangeFirstOffset, as: Int64.self)
        slot.storeBytes(of: (ranged ? rangeLast : -1).littleEndian, toByteOffset: rangeLastOffset, as: Int64.self)
        var truncated = false
        func copy(_ bytes: UnsafeRawBufferPointer?, _ text: Text) -> Int {
            guard let bytes, let base = bytes.baseAddress, !bytes.isEmpty else { return 0 }
            var n = min(bytes.count, text.capacity)
            if n < bytes.count {
                truncated = true
                // Cut at a character boundary, so what is kept is still valid UTF-8.
                while n > 0 && bytes[n] & 0xC0 == 0x80 { n -= 1 }
            }
            (slot + text.offset).copyMemory(from: base, byteCount: n)
            return n
        }
        let sessionLength = copy(session, .session)
        let titleLength = copy(title, .title)
        let versionLength = copy(packageVersion, .version)
        let pathLength = copy(path, .path)
        let cmcdLength = copy(cmcd, .cmcd)
        if truncated { flags.insert(.truncated) }
        slot.storeBytes(of: flags.rawValue, toByteOffset: flagsOffset, as: UInt8.self)
        slot.storeBytes(of: UInt8(sessionLength), toByteOffset: lengthsOffset, as: UInt8.self)
        slot.storeBytes(of: UInt8(titleLength), toByteOffset: lengthsOffset + 1, as: UInt8.self)
        slot.storeBytes(of: UInt8(versionLength), toByteOffset: lengthsOffset + 2, as: UInt8.self)
        slot.storeBytes(of: UInt8(pathLength), toByteOffset: lengthsOffset + 3, as: UInt8.self)
        slot.storeBytes(of: UInt16(0), toByteOffset: lengthsOffset + 4, as: UInt16.self)
        slot.storeBytes(of: UInt16(cmcdLength).littleEndian, toByteOffset: cmcdLengthOffset, as: UInt16.self)
        return truncated
    }

    /// `write` from a decoded record (producers off the request path, tests).
    @discardableResult
    public static func encode(_ record: DeliveryRecord, into slot: UnsafeMutableRawPointer) -> Bool {
        func with<R>(_ text: String?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
            guard var text else { return body(nil) }
            return text.withUTF8 { body(UnsafeRawBufferPointer($0)) }
        }
        let country = Array((record.country ?? "").utf8)
        let code = country.count == 2 ? (country[0], country[1]) : (UInt8(0), UInt8(0))
        let truncated = with(record.sessionID) { session in
            with(record.titleID) { title in
                with(record.packageVersion) { version in
                    with(record.objectPath) { path in
                        with(record.cmcd) { cmcd in
                            write(
                                into: slot, endMicroseconds: record.endMicroseconds, durationMicroseconds: record.durationMicroseconds,
                                status: record.status, bytesSent: record.bytesSent, objectSize: record.objectSize,
                                rangeFirst: record.range.map { Int64($0.lowerBound) } ?? -1,
                                rangeLast: record.range.map { Int64($0.upperBound) } ?? -1, aborted: record.aborted, cache: record.cache,
                                country: code, clientClass: record.clientClass, session: session, title: title, version: version,
                                path: path ?? UnsafeRawBufferPointer(start: nil, count: 0), cmcd: cmcd)
                        }
                    }
                }
            }
        }
        if record.truncated && !truncated {
            let flags = slot.load(fromByteOffset: flagsOffset, as: UInt8.self) | Flags.truncated.rawValue
            slot.storeBytes(of: flags, toByteOffset: flagsOffset, as: UInt8.self)
        }
        return truncated || record.truncated
    }

    // MARK: - Reading

    /// Decodes one record; throws when the bytes cannot be one (wrong size, unknown version,
    /// a length past its field, an unknown enumeration value, invalid UTF-8).
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(DecodingError) -> DeliveryRecord {
        guard bytes.count == size else { throw .wrongSize(bytes.count) }
        let v = bytes[versionOffset]
        guard v == version else { throw .unknownVersion(v) }
        guard let cache = DeliveryRecord.CacheStatus(rawValue: bytes[cacheOffset]) else { throw .badField("cache") }
        guard let clientClass = DeliveryRecord.ClientClass(rawValue: bytes[clientClassOffset]) else { throw .badField("client_class") }
        let flags = Flags(rawValue: bytes[flagsOffset])
        func u16(_ o: Int) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
        func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
        func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
        func i64(_ o: Int) -> Int64 { Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: Int64.self)) }
        func text(_ field: Text, length: Int, name: String) throws(DecodingError) -> String {
            guard length <= field.capacity else { throw .badField(name) }
            let slice = UnsafeRawBufferPointer(rebasing: bytes[field.offset..<(field.offset + length)])
            guard let string = String(validating: slice, as: UTF8.self) else { throw .badField(name) }
            return string
        }
        var country: String?
        let c0 = bytes[countryOffset]
        let c1 = bytes[countryOffset + 1]
        if c0 != 0 || c1 != 0 {
            guard (0x41...0x5A).contains(c0), (0x41...0x5A).contains(c1) else { throw .badField("country") }
            country = String(decoding: [c0, c1], as: UTF8.self)
        }
        var range: ClosedRange<UInt64>?
        if flags.contains(.ranged) {
            let first = i64(rangeFirstOffset)
            let last = i64(rangeLastOffset)
            guard first >= 0, last >= first else { throw .badField("range") }
            range = UInt64(first)...UInt64(last)
        }
        let session = try text(.session, length: Int(bytes[lengthsOffset]), name: "session_id")
        let title = try text(.title, length: Int(bytes[lengthsOffset + 1]), name: "title_id")
        let packageVersion = try text(.version, length: Int(bytes[lengthsOffset + 2]), name: "package_version")
        let path = try text(.path, length: Int(bytes[lengthsOffset + 3]), name: "object_path")
        let cmcd = try text(.cmcd, length: Int(u16(cmcdLengthOffset)), name: "cmcd")
        return DeliveryRecord(
            endMicroseconds: i64(endOffset), durationMicroseconds: u32(durationOffset), status: u16(statusOffset),
            bytesSent: u64(bytesSentOffset), objectSize: u64(objectSizeOffset), range: range, aborted: flags.contains(.aborted),
            cache: cache, country: country, clientClass: clientClass, sessionID: flags.contains(.hasSession) ? session : nil,
            titleID: flags.contains(.hasTitle) ? title : nil, packageVersion: flags.contains(.hasTitle) ? packageVersion : nil,
            objectPath: path, cmcd: cmcd, truncated: flags.contains(.truncated))
    }
}
