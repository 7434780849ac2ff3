import MarqueeHTTP

/// A fast, well-mixed 64-bit non-cryptographic hash whose value depends only on the bytes and the
/// seed: words are read little-endian whatever the CPU, so every gateway on every machine names the
/// same Redis key for the same client, and a table built by one process means the same to another.
///
/// Why not `Hasher`: Swift's hasher is randomly seeded per process by design. Why not SipHash: the
/// inputs (addresses, session ids, token subjects) are short and already server-chosen or bounded,
/// and the tables that use the result bound their probing, so flooding costs a client its own
/// accounting, not the gateway's time.
///
/// Construction: 16-byte blocks are folded with a 64×64→128-bit multiply (high half XOR low half) and
/// chained through an odd-constant multiply and rotation; the length enters at both ends and a
/// final avalanche (the MurmurHash3 finaliser) spreads every input bit over the whole word. The
/// result is never 0, because 0 marks an empty slot in the tables that store these hashes.
public enum StableHash {
    @usableFromInline static let p0: UInt64 = 0xA076_1D64_78BD_642F
    @usableFromInline static let p1: UInt64 = 0xE703_7ED1_A0B4_28DB
    @usableFromInline static let p2: UInt64 = 0x8EBC_6AF0_9C88_C6E3
    @usableFromInline static let p3: UInt64 = 0x5899_65CC_7537_4CC3

    /// Hashes `bytes` with `seed`. Cost: about a nanosecond per 16 bytes plus a few for the finish;
    /// no allocation.
    /// - Parameters:
    ///   - bytes: the input; any length, including empty.
    ///   - seed: selects an independent hash function (two seeds give two unrelated hashes).
    /// - Returns: a hash in `1...UInt64.max` (0 is mapped to 1).
    @inlinable
    public static func hash64(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let count = bytes.count
        var h = (seed ^ p0) &+ UInt64(truncatingIfNeeded: count) &* p1
        var offset = 0
        if let base = bytes.baseAddress {
            while count - offset >= 16 {
                let a = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                let b = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
                h = fold(a ^ p2 ^ h, b ^ p3) ^ rotate(h &* p1, 29)
                offset += 16
            }
            let rest = count - offset
            var a: UInt64 = 0
            var b: UInt64 = 0
            if rest >= 8 {
                a = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                b = partial(base + offset + 8, rest - 8)
            } else {
                a = partial(base + offset, rest)
            }
            h = fold(a ^ p2 ^ h, b ^ p3 ^ UInt64(truncatingIfNeeded: rest)) ^ rotate(h &* p1, 29)
        }
        h ^= UInt64(truncatingIfNeeded: count) &* p3
        h = avalanche(h)
        return h == 0 ? 1 : h
    }

    /// Hashes an address's 16 network-order bytes (IPv4 as IPv4-mapped), so the same client gets
    /// the same key on every gateway.
    @inlinable
    public static func hash64(_ address: IPAddress, seed: UInt64 = 0) -> UInt64 {
        address.withNetworkOrder16 { hash64($0, seed: seed) }
    }

    /// Mixes one 64-bit value (an already-hashed key plus a small discriminator) into a new nonzero
    /// hash; cheaper than hashing bytes when the input is already a word.
    @inlinable
    public static func mix(_ value: UInt64, seed: UInt64 = 0) -> UInt64 {
        let h = avalanche(fold(value ^ p2, seed ^ p3) ^ value)
        return h == 0 ? 1 : h
    }

    @inlinable @inline(__always)
    static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    @inlinable @inline(__always)
    static func rotate(_ x: UInt64, _ by: UInt64) -> UInt64 { (x << by) | (x >> (64 &- by)) }

    /// Up to 7 bytes as a little-endian word (byte 0 lowest), without reading past the buffer.
    @inlinable @inline(__always)
    static func partial(_ p: UnsafeRawPointer, _ n: Int) -> UInt64 {
        var v: UInt64 = 0
        var i = 0
        while i < n {
            v |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << UInt64(8 * i)
            i += 1
        }
        return v
    }

    @inlinable @inline(__always)
    static func avalanche(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        z = (z ^ (z >> 33)) &* 0xC4CE_B9FE_1A85_EC53
        return z ^ (z >> 33)
    }
}
