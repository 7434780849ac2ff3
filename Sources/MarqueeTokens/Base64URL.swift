/// base64url without padding (RFC 4648 §5), the alphabet every token part uses: it survives paths,
/// queries and playlists without escaping.
public enum Base64URL {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// 6-bit value of each byte, 0xFF for bytes outside the alphabet.
    static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var buffer: UInt32 = 0
        var bits = 0
        for b in bytes {
            buffer = buffer << 8 | UInt32(b)
            bits += 8
            while bits >= 6 {
                bits -= 6
                out.append(alphabet[Int(buffer >> UInt32(bits) & 0x3F)])
            }
        }
        if bits > 0 { out.append(alphabet[Int(buffer << UInt32(6 - bits) & 0x3F)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Length of the decoded form of `count` characters; nil when no unpadded encoding has that length.
    @inline(__always) public static func decodedLength(_ count: Int) -> Int? {
        count % 4 == 1 ? nil : count / 4 * 3 + max(0, count % 4 - 1)
    }

    /// Decodes into `out` (at least `decodedLength` bytes). Refuses bytes outside the alphabet,
    /// padding, and non-zero leftover bits, so each byte string has exactly one accepted spelling.
    /// Returns the decoded length.
    public static func decode(_ text: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) -> Int? {
        guard let length = decodedLength(text.count) else { return nil }
        return values.withUnsafeBufferPointer { table -> Int? in
            let n = text.count
            var i = 0
            var written = 0
            // Four characters make three bytes; one test per group catches any byte outside the
            // alphabet (its table value has the high bit set).
            while i + 4 <= n {
                let a = table[Int(text[i])]
                let b = table[Int(text[i + 1])]
                let c = table[Int(text[i + 2])]
                let d = table[Int(text[i + 3])]
                if (a | b | c | d) & 0x80 != 0 { return nil }
                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 16), toByteOffset: written, as: UInt8.self)
                out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 8), toByteOffset: written + 1, as: UInt8.self)
                out.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: written + 2, as: UInt8.self)
                written += 3
                i += 4
            }
            // The last 2 or 3 characters; their unused low bits must be zero (a canonical spelling).
            let rest = n - i
            if rest >= 2 {
                let a = table[Int(text[i])]
                let b = table[Int(text[i + 1])]
                let c = rest == 3 ? table[Int(text[i + 2])] : 0
                if (a | b | c) & 0x80 != 0 { return nil }
                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6
                out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 16), toByteOffset: written, as: UInt8.self)
                written += 1
                if rest == 3 {
                    out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 8), toByteOffset: written, as: UInt8.self)
                    written += 1
                    if v & 0xFF != 0 { return nil }
                } else if v & 0xFFFF != 0 {
                    return nil
                }
            }
            return written == length ? written : nil
        }
    }

    /// Decodes a String (tests and tools).
    public static func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { utf8 -> [UInt8]? in
            guard let length = decodedLength(utf8.count) else { return nil }
            var out = [UInt8](repeating: 0, count: max(length, 1))
            let n = out.withUnsafeMutableBytes { decode(UnsafeRawBufferPointer(utf8), into: $0.baseAddress!) }
            return n.map { Array(out.prefix($0)) }
        }
    }
}
