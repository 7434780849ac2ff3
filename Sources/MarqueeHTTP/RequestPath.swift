/// Turns a request path into a safe relative file path: percent-decoded exactly once, and refused
/// when any spelling could reach outside the served root (dot segments, encoded slashes or
/// backslashes, NUL and other control bytes) or names a hidden file.
///
/// The kernel check (openat2 with RESOLVE_BENEATH) still guards symlinks; this is the first wall.
public enum RequestPath {
    public enum Result: Equatable, Sendable {
        /// The decoded path, relative (no leading slash), NUL-terminated at `length`.
        case relative(length: Int)
        case refused(HTTPError)
    }

    /// Decodes `raw` (the path part of the target, starting with `/`) into `out`, which must hold
    /// `maxLength + 1` bytes. Empty segments (`//`) are merged.
    public static func decode(_ raw: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, maxLength: Int) -> Result {
        guard raw.first == 0x2F else { return .refused(HTTPError(.badRequest, "path must start with /")) }
        var length = 0
        var segmentStart = 0
        var i = 1
        let n = raw.count
        let capacity = min(maxLength, out.count - 1)
        while i <= n {
            var b: UInt8
            if i == n {
                b = 0x2F  // close the last segment
            } else {
                b = raw[i]
                if b == 0x25 {  // %XX
                    guard i + 2 < n, let hi = hex(raw[i + 1]), let lo = hex(raw[i + 2]) else {
                        return .refused(HTTPError(.badRequest, "malformed percent-encoding in path"))
                    }
                    b = hi << 4 | lo
                    i += 2
                    if b == 0x2F || b == 0x5C { return .refused(HTTPError(.badRequest, "encoded slash in path")) }
                } else if b == 0x5C {
                    return .refused(HTTPError(.badRequest, "backslash in path"))
                }
                if b == 0 { return .refused(HTTPError(.badRequest, "NUL byte in path")) }
                if b < 0x20 || b == 0x7F { return .refused(HTTPError(.badRequest, "control character in path")) }
            }
            i += 1
            if b == 0x2F {
                let segmentLength = length - segmentStart
                if segmentLength == 0 { continue }  // merge "//"
                if out[segmentStart] == 0x2E {
                    if segmentLength == 1 || (segmentLength == 2 && out[segmentStart + 1] == 0x2E) {
                        return .refused(HTTPError(.badRequest, "dot segment in path"))
                    }
                    return .refused(HTTPError(.notFound, "hidden files are not served"))
                }
                if i > n { break }
                guard length < capacity else { return .refused(HTTPError(.uriTooLong, "path too long")) }
                out[length] = 0x2F
                length += 1
                segmentStart = length
                continue
            }
            guard length < capacity else { return .refused(HTTPError(.uriTooLong, "path too long")) }
            out[length] = b
            length += 1
        }
        // drop a trailing slash kept from the last separator
        if length > 0 && out[length - 1] == 0x2F { length -= 1 }
        out[length] = 0
        return .relative(length: length)
    }

    @inline(__always) private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
}
