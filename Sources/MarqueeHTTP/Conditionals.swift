/// Conditional requests (RFC 9110 §13) against a representation with a strong ETag and a
/// modification time, evaluated in the order §13.2.2 prescribes.
public enum Conditionals {
    public enum Outcome: Equatable, Sendable {
        /// Serve the representation; `honourRange` says whether a Range header may be applied
        /// (false when If-Range names another version).
        case proceed(honourRange: Bool)
        case notModified
        case preconditionFailed
    }

    /// - Parameters:
    ///   - head: the parsed request; its slices refer to `buffer`.
    ///   - etag: the current strong ETag, quotes included.
    ///   - lastModified: modification time in epoch seconds.
    public static func evaluate(
        _ head: RequestHead, in buffer: UnsafeRawBufferPointer, etag: UnsafeRawBufferPointer, lastModified: Int64
    ) -> Outcome {
        if head.ifMatch.isPresent {
            if !listMatches(head.ifMatch.bytes(in: buffer), etag: etag, weak: false) { return .preconditionFailed }
        } else if head.ifUnmodifiedSince.isPresent, let date = HTTPDate.parse(head.ifUnmodifiedSince.bytes(in: buffer)) {
            if lastModified > date { return .preconditionFailed }
        }
        let safe = head.method == .get || head.method == .head
        if head.ifNoneMatch.isPresent {
            if listMatches(head.ifNoneMatch.bytes(in: buffer), etag: etag, weak: true) {
                return safe ? .notModified : .preconditionFailed
            }
        } else if safe, head.ifModifiedSince.isPresent, let date = HTTPDate.parse(head.ifModifiedSince.bytes(in: buffer)) {
            if lastModified <= date { return .notModified }
        }
        guard head.range.isPresent, head.method == .get else { return .proceed(honourRange: false) }
        if head.ifRange.isPresent {
            let ifRange = head.ifRange.bytes(in: buffer)
            if ifRange.first == 0x22 {  // an entity tag: strong comparison
                return .proceed(honourRange: !isWeak(ifRange) && ifRange.elementsEqual(etag))
            }
            if ifRange.count >= 2 && ifRange[0] == 0x57 && ifRange[1] == 0x2F { return .proceed(honourRange: false) }
            guard let date = HTTPDate.parse(ifRange) else { return .proceed(honourRange: false) }
            return .proceed(honourRange: date == lastModified)
        }
        return .proceed(honourRange: true)
    }

    /// Whether an `If-Match`/`If-None-Match` list (`*` or `[W/]"tag", ...`) contains `etag`.
    public static func listMatches(_ list: UnsafeRawBufferPointer, etag: UnsafeRawBufferPointer, weak: Bool) -> Bool {
        var i = 0
        let n = list.count
        while i < n {
            while i < n && (list[i] == 0x20 || list[i] == 0x09 || list[i] == 0x2C) { i += 1 }
            guard i < n else { break }
            if list[i] == 0x2A { return true }
            let start = i
            var isWeakTag = false
            if i + 1 < n && list[i] == 0x57 && list[i + 1] == 0x2F {
                isWeakTag = true
                i += 2
            }
            guard i < n, list[i] == 0x22 else { return false }  // malformed list: no match
            let tagStart = i
            i += 1
            while i < n && list[i] != 0x22 { i += 1 }
            guard i < n else { return false }
            i += 1
            _ = start
            let tag = UnsafeRawBufferPointer(rebasing: list[tagStart..<i])
            if (weak || !isWeakTag) && tag.elementsEqual(etag) { return true }
        }
        return false
    }

    private static func isWeak(_ tag: UnsafeRawBufferPointer) -> Bool {
        tag.count >= 2 && tag[0] == 0x57 && tag[1] == 0x2F
    }
}
