import Glibc

/// An IPv4 or IPv6 address held as 128 bits; IPv4 is stored IPv4-mapped (`::ffff:a.b.c.d`), so one
/// comparison and one prefix rule serve both families. A value type with no heap storage: the
/// request path parses and compares addresses without allocating.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// The first and last 64 bits, in network order read as big-endian integers.
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public init(ipv4 value: UInt32) {
        high = 0
        low = 0x0000_FFFF_0000_0000 | UInt64(value)
    }

    public var isIPv4: Bool { high == 0 && low >> 32 == 0x0000_FFFF }

    /// Parses a textual address (`192.0.2.1`, `2001:db8::1`, `::ffff:192.0.2.1`). Brackets, zones
    /// and ports are not part of an address and are refused.
    public init?(_ text: String) {
        var text = text
        let parsed = text.withUTF8 { IPAddress(parsing: UnsafeRawBufferPointer($0)) }
        guard let parsed else { return nil }
        self = parsed
    }

    /// Parses an address from raw bytes (a header value slice) without allocating.
    public init?(parsing bytes: UnsafeRawBufferPointer) {
        // inet_pton needs a terminated string; the longest textual IPv6 address is 45 bytes.
        guard !bytes.isEmpty, bytes.count <= 45 else { return nil }
        var isV6 = false
        for b in bytes {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."): break
            case UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"), UInt8(ascii: ":"): isV6 = true
            default: return nil
            }
        }
        let result: IPAddress? = withUnsafeTemporaryAllocation(byteCount: 64, alignment: 8) { scratch in
            scratch.copyMemory(from: bytes)
            scratch[bytes.count] = 0
            let text = scratch.baseAddress!.assumingMemoryBound(to: CChar.self)
            let out = scratch.baseAddress! + 48
            if isV6 {
                guard inet_pton(AF_INET6, text, out) == 1 else { return nil }
                return IPAddress(networkOrder16: UnsafeRawPointer(out))
            }
            guard inet_pton(AF_INET, text, out) == 1 else { return nil }
            return IPAddress(ipv4: UInt32(bigEndian: out.loadUnaligned(as: UInt32.self)))
        }
        guard let result else { return nil }
        self = result
    }

    /// An address from 16 bytes in network order (`in6_addr`).
    public init(networkOrder16 bytes: UnsafeRawPointer) {
        high = UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self))
        low = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }

    /// The peer address in a `sockaddr_in` or `sockaddr_in6`; nil for other families.
    public init?(socketAddress: UnsafeRawPointer) {
        switch Int32(socketAddress.load(as: sa_family_t.self)) {
        case AF_INET:
            let sin = socketAddress.loadUnaligned(as: sockaddr_in.self)
            self.init(ipv4: UInt32(bigEndian: sin.sin_addr.s_addr))
        case AF_INET6:
            self.init(networkOrder16: socketAddress + MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!)
        default:
            return nil
        }
    }

    /// The address as 16 bytes in network order.
    public func withNetworkOrder16<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        var pair = (high.bigEndian, low.bigEndian)
        return withUnsafeBytes(of: &pair) { body($0) }
    }

    /// The IPv4 value when this is an IPv4(-mapped) address.
    public var ipv4: UInt32? { isIPv4 ? UInt32(truncatingIfNeeded: low) : nil }

    public var description: String {
        if let v4 = ipv4 {
            return "\(v4 >> 24).\(v4 >> 16 & 0xFF).\(v4 >> 8 & 0xFF).\(v4 & 0xFF)"
        }
        return withNetworkOrder16 { raw in
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { out in
                guard inet_ntop(AF_INET6, raw.baseAddress, out.baseAddress, 64) != nil else { return "?" }
                return String(cString: out.baseAddress!)
            }
        }
    }
}

/// An address block such as `203.0.113.0/24` or `2001:db8::/32`. An address without a prefix
/// length is a block of one. IPv4 blocks match IPv4 addresses only (their prefix counts in the
/// mapped space).
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public let network: IPAddress
    /// Prefix length in the 128-bit space (an IPv4 /24 is stored as 120).
    public let prefixLength: Int

    public init?(_ text: String) {
        var text = text
        guard let parsed = text.withUTF8({ CIDR(parsing: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = parsed
    }

    /// Parses `address` or `address/prefix` from raw bytes without allocating.
    public init?(parsing text: UnsafeRawBufferPointer) {
        var slash = text.count
        for i in 0..<text.count where text[i] == UInt8(ascii: "/") {
            slash = i
            break
        }
        guard let address = IPAddress(parsing: UnsafeRawBufferPointer(rebasing: text[0..<slash])) else { return nil }
        let maxLength = address.isIPv4 ? 32 : 128
        var length = maxLength
        if slash < text.count {
            guard let given = RequestParser.decimal(UnsafeRawBufferPointer(rebasing: text[(slash + 1)...])), given <= maxLength else {
                return nil
            }
            length = Int(given)
        }
        self.init(address: address, prefixLength: address.isIPv4 ? length + 96 : length)
    }

    /// A block from an address and a prefix length in the 128-bit space; host bits are cleared.
    public init(address: IPAddress, prefixLength: Int) {
        self.prefixLength = prefixLength
        let mask = Self.mask(prefixLength)
        network = IPAddress(high: address.high & mask.high, low: address.low & mask.low)
    }

    @inline(__always) static func mask(_ length: Int) -> (high: UInt64, low: UInt64) {
        let high: UInt64 = length >= 64 ? ~0 : (length <= 0 ? 0 : ~0 << UInt64(64 - length))
        let low: UInt64 = length >= 128 ? ~0 : (length <= 64 ? 0 : ~0 << UInt64(128 - length))
        return (high, low)
    }

    @inline(__always) public func contains(_ address: IPAddress) -> Bool {
        let mask = Self.mask(prefixLength)
        return address.high & mask.high == network.high && address.low & mask.low == network.low
    }

    public var description: String {
        network.isIPv4 && prefixLength >= 96 ? "\(network)/\(prefixLength - 96)" : "\(network)/\(prefixLength)"
    }
}
