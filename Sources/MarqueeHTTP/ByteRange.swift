/// The `Range` header of a GET (RFC 9110 §14): only single byte ranges are honoured; a request
/// for several ranges gets the whole representation, which the RFC allows.
public enum ByteRange: Equatable, Sendable {
    /// No usable range: serve the whole representation with 200.
    case whole
    /// Serve bytes `first...last` with 206.
    case partial(first: Int64, last: Int64)
    /// Answer 416 with `Content-Range: bytes */length`.
    case unsatisfiable

    /// Evaluates `header` against a representation of `length` bytes.
    public static func evaluate(_ header: UnsafeRawBufferPointer, length: Int64) -> ByteRange {
        var i = 0
        let n = header.count
        guard n > 6, UnsafeRawBufferPointer(rebasing: header[0..<6]).equalsLowercase("bytes=") else { return .whole }
        i = 6
        while i < n && header[i] == 0x20 { i += 1 }
        for k in i..<n where header[k] == 0x2C { return .whole }  // several ranges: whole representation
        var first: Int64 = -1
        var last: Int64 = -1
        if i < n && header[i] != 0x2D {
            guard let v = number(header, &i) else { return .whole }
            first = v
        }
        guard i < n, header[i] == 0x2D else { return .whole }
        i += 1
        if i < n {
            guard let v = number(header, &i) else { return .whole }
            last = v
        }
        while i < n && header[i] == 0x20 { i += 1 }
        guard i == n else { return .whole }

        if first < 0 {  // suffix: the last `last` bytes
            guard last >= 0 else { return .whole }
            guard last > 0, length > 0 else { return .unsatisfiable }
            return .partial(first: max(0, length - last), last: length - 1)
        }
        if last >= 0 && last < first { return .whole }  // invalid range-spec: ignore the header
        guard first < length else { return .unsatisfiable }
        return .partial(first: first, last: last < 0 ? length - 1 : min(last, length - 1))
    }

    private static func number(_ h: UnsafeRawBufferPointer, _ i: inout Int) -> Int64? {
        let start = i
        var v: Int64 = 0
        while i < h.count, h[i] >= 0x30 && h[i] <= 0x39 {
            if i - start >= 18 { return nil }
            v = v * 10 + Int64(h[i] - 0x30)
            i += 1
        }
        return i == start ? nil : v
    }
}
