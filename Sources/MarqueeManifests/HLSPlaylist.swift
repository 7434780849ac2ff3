/// The parts of HLS playlists (RFC 8216) a viewer model needs: a master playlist's variants, and a
/// media playlist's segments with their durations. Lenient where players are (unknown tags are
/// skipped, CRLF line ends accepted) and strict where a wrong answer would mislead a load test
/// (a variant without BANDWIDTH or URI, a segment without a duration, a duration that is not a
/// number). Tested with hostile input (`HLSPlaylistTests`).
public enum HLSPlaylist {
    public struct Variant: Equatable, Sendable {
        /// Peak bits per second (`BANDWIDTH`).
        public var bandwidth: Int
        public var uri: String
        /// The media playlist of the audio a player plays with this variant: the `DEFAULT=YES`
        /// (else the first) `EXT-X-MEDIA` of `TYPE=AUDIO` in the variant's `AUDIO` group. Nil
        /// when the variant names no group or the group's audio is in the variant's segments
        /// (no `URI`).
        public var audio: String? = nil
    }

    public struct Segment: Equatable, Sendable {
        public var durationMs: Int64
        public var uri: String
        /// `#EXT-X-BYTERANGE`: the segment is these bytes of `uri`, not the whole of it.
        public var bytes: Range<UInt64>? = nil
    }

    public struct Media: Equatable, Sendable {
        public var targetDurationMs: Int64
        public var segments: [Segment]
        /// `EXT-X-MAP`'s URI (fMP4's initialisation segment), fetched before the first segment.
        public var initialization: String?
        /// `EXT-X-MAP`'s `BYTERANGE`, when the initialisation is part of a larger file.
        public var initializationBytes: Range<UInt64>? = nil
        /// `EXT-X-ENDLIST`: the whole title is listed (VOD).
        public var ended: Bool
    }

    public enum Parsed: Equatable, Sendable {
        case master([Variant])
        case media(Media)
    }

    public struct Problem: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// A master playlist (variants sorted by bandwidth, ascending) or a media playlist.
    public static func parse(_ text: String) throws(Problem) -> Parsed {
        var lines = text.split(omittingEmptySubsequences: true) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }.map { $0.trimmingSpaces() }
        lines.removeAll { $0.isEmpty }
        guard lines.first == "#EXTM3U" else { throw Problem(description: "not an HLS playlist (no #EXTM3U first line)") }
        if lines.contains(where: { $0.hasPrefix("#EXT-X-STREAM-INF:") }) { return .master(try variants(lines)) }
        return .media(try media(lines))
    }

    private static func variants(_ lines: [String]) throws(Problem) -> [Variant] {
        var found: [Variant] = []
        var pending: (bandwidth: Int, audioGroup: String?)?
        // Audio renditions by group: the default one, else the first (nil: audio in the variant).
        var audio: [String: (uri: String?, isDefault: Bool)] = [:]
        for line in lines.dropFirst() where line.hasPrefix("#EXT-X-MEDIA:") {
            let attributes = attributeList(String(line.dropFirst("#EXT-X-MEDIA:".count)))
            guard attributes["TYPE"] == "AUDIO", let group = attributes["GROUP-ID"] else { continue }
            let isDefault = attributes["DEFAULT"] == "YES"
            if audio[group] == nil || (isDefault && audio[group]?.isDefault == false) { audio[group] = (attributes["URI"], isDefault) }
        }
        for line in lines.dropFirst() {
            if line.hasPrefix("#EXT-X-STREAM-INF:") {
                let attributes = attributeList(String(line.dropFirst("#EXT-X-STREAM-INF:".count)))
                guard let text = attributes["BANDWIDTH"], let bandwidth = Int(text), bandwidth > 0 else {
                    throw Problem(description: "a variant has no valid BANDWIDTH: \(line.prefix(120))")
                }
                pending = (bandwidth, attributes["AUDIO"])
            } else if line.hasPrefix("#") {
                continue
            } else if let (bandwidth, group) = pending {
                found.append(Variant(bandwidth: bandwidth, uri: line, audio: group.flatMap { audio[$0]?.uri }))
                pending = nil
            }
        }
        guard pending == nil else { throw Problem(description: "the last variant has no URI") }
        guard !found.isEmpty else { throw Problem(description: "a master playlist without variants") }
        return found.sorted { $0.bandwidth < $1.bandwidth }
    }

    private static func media(_ lines: [String]) throws(Problem) -> Media {
        var result = Media(targetDurationMs: 0, segments: [], initialization: nil, ended: false)
        var duration: Int64?
        var range: (length: UInt64, offset: UInt64?)?
        var previous: (uri: String, end: UInt64)?  // where a byte range without an offset starts
        for line in lines.dropFirst() {
            if line.hasPrefix("#EXTINF:") {
                let value = line.dropFirst("#EXTINF:".count).prefix { $0 != "," }
                guard let parsed = milliseconds(String(value)) else { throw Problem(description: "a segment duration is not a number: \(line.prefix(120))") }
                duration = parsed
            } else if line.hasPrefix("#EXT-X-BYTERANGE:") {
                guard let parsed = byteRange(String(line.dropFirst("#EXT-X-BYTERANGE:".count))) else {
                    throw Problem(description: "EXT-X-BYTERANGE is not <length>[@<offset>]: \(line.prefix(120))")
                }
                range = parsed
            } else if line.hasPrefix("#EXT-X-TARGETDURATION:") {
                guard let seconds = milliseconds(String(line.dropFirst("#EXT-X-TARGETDURATION:".count))) else {
                    throw Problem(description: "EXT-X-TARGETDURATION is not a number")
                }
                result.targetDurationMs = seconds
            } else if line.hasPrefix("#EXT-X-MAP:") {
                let attributes = attributeList(String(line.dropFirst("#EXT-X-MAP:".count)))
                result.initialization = attributes["URI"]
                if let text = attributes["BYTERANGE"] {
                    guard let (length, offset) = byteRange(text) else { throw Problem(description: "EXT-X-MAP's BYTERANGE is not <length>[@<offset>]") }
                    let start = offset ?? 0
                    result.initializationBytes = start..<start + length
                }
            } else if line == "#EXT-X-ENDLIST" {
                result.ended = true
            } else if line.hasPrefix("#") {
                continue
            } else {
                guard let known = duration else { throw Problem(description: "a segment URI without #EXTINF before it: \(line.prefix(120))") }
                var segment = Segment(durationMs: known, uri: line)
                if let (length, offset) = range {
                    guard let start = offset ?? (previous?.uri == line ? previous?.end : nil) else {
                        throw Problem(description: "a byte range without an offset does not follow a range of the same URI: \(line.prefix(120))")
                    }
                    segment.bytes = start..<start + length
                    previous = (line, start + length)
                }
                result.segments.append(segment)
                duration = nil
                range = nil
            }
        }
        guard !result.segments.isEmpty else { throw Problem(description: "a media playlist without segments") }
        return result
    }

    /// `<length>[@<offset>]`, both decimal; nil when malformed, empty, or past 2^62.
    static func byteRange(_ text: String) -> (length: UInt64, offset: UInt64?)? {
        let parts = text.trimmingSpaces().split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        let limit: UInt64 = 1 << 62
        guard let length = UInt64(parts[0]), length > 0, length < limit else { return nil }
        guard parts.count == 2 else { return (length, nil) }
        guard let offset = UInt64(parts[1]), offset < limit else { return nil }
        return (length, offset)
    }

    /// A decimal number of seconds as milliseconds (rounded); nil when it is not one, or absurd.
    static func milliseconds(_ text: String) -> Int64? {
        microseconds(decimal: Substring(text.trimmingSpaces())).map { ($0 + 500) / 1000 }
    }

    /// An attribute list (`KEY=value,KEY="quoted, with commas"`), keys as written.
    static func attributeList(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        var key = ""
        var value = ""
        var inKey = true
        var quoted = false
        for ch in text {
            if inKey {
                if ch == "=" { inKey = false } else if ch != "," { key.append(ch) }
            } else if ch == "\"" {
                quoted.toggle()
            } else if ch == "," && !quoted {
                result[key.trimmingSpaces()] = value
                key = ""
                value = ""
                inKey = true
            } else {
                value.append(ch)
            }
        }
        if !inKey { result[key.trimmingSpaces()] = value }
        return result
    }

    /// `reference` resolved against the URL path of the playlist that named it (`base`, an
    /// absolute path with its query): absolute paths stay, relative ones replace the last segment.
    /// Full `http://` URLs are returned as they are.
    public static func resolve(_ reference: String, against base: String) -> String {
        if reference.hasPrefix("http://") || reference.hasPrefix("https://") || reference.hasPrefix("/") { return reference }
        let path = base.prefix { $0 != "?" }
        guard let slash = path.lastIndex(of: "/") else { return "/" + reference }
        return String(path[...slash]) + reference
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        guard let first = firstIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        let last = lastIndex(where: { $0 != " " && $0 != "\t" })!
        return String(self[first...last])
    }
}
