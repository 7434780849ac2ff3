/// Walks the header field lines of a head that a strict parser has already accepted (request or
/// response), without allocating: each field as (name, value, whole line including CRLF).
public struct HeaderFields {
    public let head: UnsafeRawBufferPointer
    /// Offset of the first field line (just past the start line's CRLF).
    public let fieldsStart: Int
    /// Some `Connection` field lists a token other than `close` or `keep-alive`: only then can a
    /// field be hop-by-hop by being named there (so the common case costs one pass, not one per field).
    public private(set) var connectionNamesFields = false

    /// - Parameters:
    ///   - head: The whole head, ending with the empty line.
    public init(head: UnsafeRawBufferPointer) {
        self.head = head
        var i = 0
        // Skip empty lines before the start line (RFC 9112 §2.2), then the start line.
        while i + 1 < head.count && head[i] == 0x0D && head[i + 1] == 0x0A { i += 2 }
        while i + 1 < head.count && !(head[i] == 0x0D && head[i + 1] == 0x0A) { i += 1 }
        fieldsStart = min(head.count, i + 2)
        var names = false
        forEach { field in
            if field.name.equalsLowercase("connection") && Self.hasOtherTokens(field.value) { names = true }
            return !names
        }
        connectionNamesFields = names
    }

    private static func hasOtherTokens(_ list: UnsafeRawBufferPointer) -> Bool {
        var start = 0
        while start < list.count {
            var end = start
            while end < list.count && list[end] != 0x2C { end += 1 }
            var s = start
            var e = end
            while s < e && (list[s] == 0x20 || list[s] == 0x09) { s += 1 }
            while e > s && (list[e - 1] == 0x20 || list[e - 1] == 0x09) { e -= 1 }
            let token = UnsafeRawBufferPointer(rebasing: list[s..<e])
            if !token.isEmpty && !token.equalsLowercase("close") && !token.equalsLowercase("keep-alive") { return true }
            start = end + 1
        }
        return false
    }

    public struct Field {
        public var name: UnsafeRawBufferPointer
        /// Without surrounding whitespace.
        public var value: UnsafeRawBufferPointer
        /// The whole line, CRLF included.
        public var line: UnsafeRawBufferPointer
    }

    /// Calls `body` for each field, in order; stops when `body` returns false.
    public func forEach(_ body: (Field) -> Bool) {
        var i = fieldsStart
        let n = head.count
        while i + 1 < n {
            if head[i] == 0x0D { return }  // the empty line
            let lineStart = i
            while i < n && head[i] != 0x3A { i += 1 }
            let nameEnd = i
            i += 1
            while i < n && (head[i] == 0x20 || head[i] == 0x09) { i += 1 }
            let valueStart = i
            var valueEnd = i
            while i < n && head[i] != 0x0D {
                if head[i] != 0x20 && head[i] != 0x09 { valueEnd = i + 1 }
                i += 1
            }
            let lineEnd = min(n, i + 2)
            let field = Field(
                name: UnsafeRawBufferPointer(rebasing: head[lineStart..<min(nameEnd, n)]),
                value: UnsafeRawBufferPointer(rebasing: head[valueStart..<valueEnd]),
                line: UnsafeRawBufferPointer(rebasing: head[lineStart..<lineEnd]))
            if !body(field) { return }
            i = lineEnd
        }
    }

    /// Whether any `Connection` field lists `name` as a token (case-insensitive): RFC 9110 §7.6.1
    /// makes such a field hop-by-hop.
    public func connectionNames(_ name: UnsafeRawBufferPointer) -> Bool {
        guard connectionNamesFields else { return false }
        var found = false
        forEach { field in
            if field.name.equalsLowercase("connection") && Self.listContains(field.value, name) { found = true }
            return !found
        }
        return found
    }

    /// Whether the comma-separated `list` holds `token` (ASCII case-insensitive, whitespace trimmed).
    public static func listContains(_ list: UnsafeRawBufferPointer, _ token: UnsafeRawBufferPointer) -> Bool {
        var start = 0
        while start < list.count {
            var end = start
            while end < list.count && list[end] != 0x2C { end += 1 }
            var s = start
            var e = end
            while s < e && (list[s] == 0x20 || list[s] == 0x09) { s += 1 }
            while e > s && (list[e - 1] == 0x20 || list[e - 1] == 0x09) { e -= 1 }
            if e - s == token.count && equalIgnoringCase(UnsafeRawBufferPointer(rebasing: list[s..<e]), token) { return true }
            start = end + 1
        }
        return false
    }

    /// ASCII case-insensitive equality.
    public static func equalIgnoringCase(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count {
            var x = a[i]
            var y = b[i]
            if x >= 0x41 && x <= 0x5A { x |= 0x20 }
            if y >= 0x41 && y <= 0x5A { y |= 0x20 }
            if x != y { return false }
        }
        return true
    }
}
