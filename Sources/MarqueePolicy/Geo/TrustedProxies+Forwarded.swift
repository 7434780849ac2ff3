import MarqueeHTTP

/// RFC 7239 `Forwarded`: elements separated by commas, each a `;`-separated list of
/// `name=value` pairs whose values may be quoted strings (which may contain commas).
extension TrustedProxies {
    func walkForwarded(_ header: UnsafeRawBufferPointer, from peer: IPAddress) -> IPAddress {
        var candidate = peer
        var end = header.count
        while end > 0 {
            // Find the element's start scanning backwards, honouring quotes, so the elements a
            // trusted proxy appended are read before, and independently of, anything to their
            // left (an unclosed quote a client sent cannot swallow them).
            var start = end
            var inQuote = false
            while start > 0 {
                let byte = header[start - 1]
                if byte == Self.quote && !Self.isEscaped(header, start - 1) {
                    inQuote.toggle()
                } else if byte == Self.comma && !inQuote {
                    break
                }
                start -= 1
            }
            let element = Self.trimmed(header, start, end)
            end = start - 1
            if element.isEmpty { continue }
            guard !inQuote, let address = Self.forwardedFor(header, element) else { return candidate }
            guard isTrusted(address) else { return address }
            candidate = address
        }
        return candidate
    }

    /// Whether the byte at `index` follows an odd number of backslashes (a quoted-pair).
    static func isEscaped(_ bytes: UnsafeRawBufferPointer, _ index: Int) -> Bool {
        var count = 0
        var i = index
        while i > 0 && bytes[i - 1] == backslash {
            count += 1
            i -= 1
        }
        return count & 1 == 1
    }

    /// The address in the element's single `for=` parameter; nil when the element is malformed,
    /// has no `for=` or more than one, or names no address.
    static func forwardedFor(_ bytes: UnsafeRawBufferPointer, _ element: Range<Int>) -> IPAddress? {
        var value: Range<Int>?
        var pairStart = element.lowerBound
        var i = element.lowerBound
        var inQuote = false
        while i <= element.upperBound {
            if i < element.upperBound {
                let byte = bytes[i]
                if inQuote {
                    if byte == backslash {
                        i += 2
                        continue
                    }
                    if byte == quote { inQuote = false }
                    i += 1
                    continue
                }
                if byte == quote {
                    inQuote = true
                    i += 1
                    continue
                }
                if byte != UInt8(ascii: ";") {
                    i += 1
                    continue
                }
            }
            // A pair ends at `i` (a semicolon or the end of the element).
            let pair = trimmed(bytes, pairStart, min(i, element.upperBound))
            pairStart = i + 1
            i += 1
            if pair.isEmpty { continue }
            guard let equals = firstIndex(of: UInt8(ascii: "="), in: bytes, pair) else { return nil }
            let name = trimmed(bytes, pair.lowerBound, equals)
            guard !name.isEmpty else { return nil }
            if isFor(bytes, name) {
                guard value == nil else { return nil }
                value = trimmed(bytes, equals + 1, pair.upperBound)
            }
        }
        guard !inQuote, let value, !value.isEmpty else { return nil }
        if bytes[value.lowerBound] == quote {
            guard value.count >= 2, bytes[value.upperBound - 1] == quote else { return nil }
            let inner = (value.lowerBound + 1)..<(value.upperBound - 1)
            // No address contains a quote or backslash; an escape here is a disguise.
            for k in inner where bytes[k] == quote || bytes[k] == backslash { return nil }
            return node(bytes, inner, allowObfuscatedPort: true)
        }
        return node(bytes, value, allowObfuscatedPort: true)
    }

    /// Whether the parameter name is `for`, in any case.
    static func isFor(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> Bool {
        guard name.count == 3 else { return false }
        return bytes[name.lowerBound] | 0x20 == UInt8(ascii: "f")
            && bytes[name.lowerBound + 1] | 0x20 == UInt8(ascii: "o")
            && bytes[name.lowerBound + 2] | 0x20 == UInt8(ascii: "r")
    }
}
