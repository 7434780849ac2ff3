import MarqueeHTTP

/// Finds the real client behind the load balancers and CDNs the operator trusts, from
/// `X-Forwarded-For` or RFC 7239 `Forwarded`.
///
/// The rule, and why it is safe: each proxy appends the address it received the request from, so
/// reading the list from the right, every entry was written by the hop to its right. Starting at
/// the socket peer, as long as the hop is a trusted proxy its claim is believed; the first claim
/// naming an untrusted address is the client, and everything left of it (which the client could
/// have written itself) is never read. When an entry cannot be parsed (garbage, `unknown`,
/// an obfuscated `_identifier`, a missing `for=`), the walk stops and the last trusted hop is the
/// answer: the entry after it might be anything, and an address further left is exactly what an
/// untrusted party could have chosen. When every entry is a trusted address, the leftmost one is
/// the answer (the request began inside the trusted network). Empty list elements are skipped.
///
/// So the result is always either the peer, a trusted proxy, or an address a trusted proxy
/// wrote; never a value only the client controlled, provided the trusted proxies append to the
/// header this type reads (see `HeaderSource`). All parsing works on the raw header bytes, with
/// no allocation, and is linear in the header length.
public struct TrustedProxies: Sendable {
    /// Which header carries the chain.
    public enum HeaderSource: Hashable, Sendable {
        /// `X-Forwarded-For` when it has any entry, else `Forwarded`. Right when the trusted
        /// proxies append to `X-Forwarded-For`, or append to `Forwarded` and strip any
        /// `X-Forwarded-For` from clients; otherwise a client's own `X-Forwarded-For` would be
        /// read in place of the proxy's `Forwarded`.
        case automatic
        /// Only `X-Forwarded-For`.
        case xForwardedFor
        /// Only `Forwarded`.
        case forwarded
    }

    /// The address blocks of the trusted proxies.
    public let blocks: [CIDR]
    /// Which header carries the chain.
    public let source: HeaderSource

    /// Trusts the proxies in `blocks`; an empty list trusts no one (the peer is the client).
    public init(_ blocks: [CIDR], source: HeaderSource = .automatic) {
        self.blocks = blocks
        self.source = source
    }

    /// Whether `address` belongs to a trusted proxy. A linear scan: trusted lists are short.
    @inlinable
    public func isTrusted(_ address: IPAddress) -> Bool {
        for block in blocks where block.contains(address) { return true }
        return false
    }

    /// The client address for a request that arrived from `peer`.
    ///
    /// - Parameters:
    ///   - peer: The socket peer address.
    ///   - forwardedFor: The `X-Forwarded-For` value (several header lines joined by ", "), or empty.
    ///   - forwarded: The `Forwarded` value (joined the same way), or empty.
    /// - Returns: `peer` when it is not trusted or no header says more; otherwise the address
    ///   found by the walk described on the type. Cost: one pass over the header; no allocation.
    public func clientAddress(
        peer: IPAddress, forwardedFor: UnsafeRawBufferPointer, forwarded: UnsafeRawBufferPointer
    ) -> IPAddress {
        guard isTrusted(peer) else { return peer }
        switch source {
        case .xForwardedFor:
            return walkForwardedFor(forwardedFor, from: peer)
        case .forwarded:
            return walkForwarded(forwarded, from: peer)
        case .automatic:
            if Self.hasEntry(forwardedFor) { return walkForwardedFor(forwardedFor, from: peer) }
            return walkForwarded(forwarded, from: peer)
        }
    }

    /// `clientAddress` with header strings, for tests and configuration checks.
    public func clientAddress(peer: IPAddress, forwardedFor: String = "", forwarded: String = "") -> IPAddress {
        var forwardedFor = forwardedFor
        var forwarded = forwarded
        return forwardedFor.withUTF8 { xff in
            forwarded.withUTF8 { fwd in
                clientAddress(peer: peer, forwardedFor: UnsafeRawBufferPointer(xff), forwarded: UnsafeRawBufferPointer(fwd))
            }
        }
    }

    // MARK: - X-Forwarded-For

    private func walkForwardedFor(_ header: UnsafeRawBufferPointer, from peer: IPAddress) -> IPAddress {
        var candidate = peer
        var end = header.count
        while end > 0 {
            var start = end
            while start > 0 && header[start - 1] != Self.comma { start -= 1 }
            let element = Self.trimmed(header, start, end)
            end = start - 1
            if element.isEmpty { continue }
            guard let address = Self.node(header, element, allowObfuscatedPort: false) else { return candidate }
            guard isTrusted(address) else { return address }
            candidate = address
        }
        return candidate
    }

    // MARK: - Shared parsing

    static let comma = UInt8(ascii: ",")
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")

    /// Whether a list header has at least one non-empty element.
    static func hasEntry(_ header: UnsafeRawBufferPointer) -> Bool {
        for byte in header where byte != comma && !isOWS(byte) { return true }
        return false
    }

    @inline(__always) static func isOWS(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    /// `start..<end` without surrounding spaces and tabs.
    static func trimmed(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Range<Int> {
        var start = start
        var end = end
        while start < end && isOWS(bytes[start]) { start += 1 }
        while end > start && isOWS(bytes[end - 1]) { end -= 1 }
        return start..<end
    }

    /// An address written as a node: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`, with an
    /// optional port after IPv4 or bracketed IPv6 (`192.0.2.1:8080`, `[2001:db8::1]:4711`), and
    /// in `Forwarded` an obfuscated port (`:_abc`). Nil for anything else, `unknown` and
    /// obfuscated identifiers included.
    static func node(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, allowObfuscatedPort: Bool) -> IPAddress? {
        // The longest node is a bracketed IPv4-mapped IPv6 address with an obfuscated port; 96
        // bytes leaves room and bounds the work on hostile input.
        guard !range.isEmpty, range.count <= 96 else { return nil }
        if bytes[range.lowerBound] == UInt8(ascii: "[") {
            guard let close = firstIndex(of: UInt8(ascii: "]"), in: bytes, range) else { return nil }
            let inside = UnsafeRawBufferPointer(rebasing: bytes[(range.lowerBound + 1)..<close])
            guard let address = IPAddress(parsing: inside), !address.isIPv4 || inside.contains(UInt8(ascii: ":")) else { return nil }
            let rest = (close + 1)..<range.upperBound
            if rest.isEmpty { return address }
            guard bytes[rest.lowerBound] == UInt8(ascii: ":"),
                isPort(bytes, (rest.lowerBound + 1)..<rest.upperBound, allowObfuscated: allowObfuscatedPort)
            else { return nil }
            return address
        }
        let whole = UnsafeRawBufferPointer(rebasing: bytes[range])
        if let address = IPAddress(parsing: whole) { return address }
        // IPv4 with a port: exactly one colon, after a dotted quad.
        guard let colon = firstIndex(of: UInt8(ascii: ":"), in: bytes, range),
            isPort(bytes, (colon + 1)..<range.upperBound, allowObfuscated: allowObfuscatedPort),
            let address = IPAddress(parsing: UnsafeRawBufferPointer(rebasing: bytes[range.lowerBound..<colon])),
            address.isIPv4
        else { return nil }
        return address
    }

    static func isPort(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, allowObfuscated: Bool) -> Bool {
        guard !range.isEmpty else { return false }
        if bytes[range.lowerBound] == UInt8(ascii: "_") {
            guard allowObfuscated, range.count >= 2 else { return false }
            for i in (range.lowerBound + 1)..<range.upperBound {
                switch bytes[i] {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    continue
                default:
                    return false
                }
            }
            return true
        }
        guard range.count <= 5 else { return false }
        var port = 0
        for i in range {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) else { return false }
            port = port * 10 + Int(bytes[i] - UInt8(ascii: "0"))
        }
        return port <= 65_535
    }

    static func firstIndex(of byte: UInt8, in bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        for i in range where bytes[i] == byte { return i }
        return nil
    }
}
