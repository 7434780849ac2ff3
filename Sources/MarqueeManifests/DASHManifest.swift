/// An MPEG-DASH manifest (ISO/IEC 23009-1) read for what a player or a meter needs: periods,
/// adaptation sets, representations (bandwidth, content type), `BaseURL`, and each
/// representation's initialisation segment and media segments with their media time, from
/// `SegmentTemplate` (with a `SegmentTimeline` or a fixed `duration`) or `SegmentList`.
/// `SegmentBase` (one file indexed by its own `sidx`) has no segments here. The XML is scanned by
/// hand, bounded, and never trusted: billing meters publishers' packages with it and the load
/// client reads servers' answers with it.
public struct DASHManifest {
    /// An element with its attributes, text and children.
    final class Node {
        let name: String
        var attributes: [String: String]
        var children: [Node] = []
        var text = ""

        init(name: String, attributes: [String: String]) {
            self.name = name
            self.attributes = attributes
        }

        func all(_ name: String) -> [Node] { children.filter { $0.name == name } }
        func first(_ name: String) -> Node? { children.first { $0.name == name } }
    }

    /// One media segment: its path (relative to the representation's `base`, template variables
    /// filled in), its media time in microseconds from the presentation's start, and its byte
    /// range when it is part of a larger file (`mediaRange`).
    public struct Segment: Equatable, Sendable {
        public var path: String
        public var start: Int64
        public var end: Int64
        public var bytes: Range<UInt64>?
    }

    public struct Representation: Equatable, Sendable {
        /// The index of its period.
        public var period: Int
        public var id: String
        /// Bits per second (`@bandwidth`); nil when absent or not a positive number.
        public var bandwidth: Int?
        /// `video`, `audio`, `text`…: the adaptation set's `contentType`, else the type of its
        /// or the representation's `mimeType`; nil when neither says.
        public var contentType: String?
        /// The `BaseURL`s from the manifest down, joined: "" when there are none, a folder
        /// ending in "/" when they are relative, absolute (a full URL or a path from "/") when
        /// any level's is.
        public var base: String
        /// The initialisation segment's path, relative to `base`.
        public var initialization: String?
        public var segments: [Segment]

        /// Its paths lead to another host or outside the manifest's folder tree.
        public var baseIsAbsolute: Bool { base.hasPrefix("/") || base.contains(":") }
    }

    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// The most elements scanned; a manifest with more is read only up to there.
    static let maxNodes = 2_000_000

    let root: Node?

    public init(_ text: String) {
        root = Self.parse(text)
    }

    /// The text is an `MPD` document.
    public var isManifest: Bool { root?.name == "MPD" }

    /// Every representation of every period, in document order, with its segments.
    /// - Throws: `Failure` when they describe more than `segmentLimit` segments in all.
    public func representations(segmentLimit: Int) throws(Failure) -> [Representation] {
        guard let mpd = root, mpd.name == "MPD" else { return [] }
        let presentation = mpd.attributes["mediaPresentationDuration"].flatMap(Self.isoDuration)
        var found: [Representation] = []
        var produced = 0
        var periodStart: Int64 = 0
        let periods = mpd.all("Period")
        for (index, period) in periods.enumerated() {
            if let start = period.attributes["start"].flatMap(Self.isoDuration) { periodStart = start }
            var periodDuration = period.attributes["duration"].flatMap(Self.isoDuration)
            if periodDuration == nil {
                if index + 1 < periods.count, let next = periods[index + 1].attributes["start"].flatMap(Self.isoDuration) {
                    periodDuration = next - periodStart
                } else if let presentation {
                    periodDuration = presentation - periodStart
                }
            }
            var periodEnd = periodStart
            for set in period.all("AdaptationSet") {
                for node in set.all("Representation") {
                    let levels = [period, set, node]
                    let id = node.attributes["id"] ?? ""
                    var representation = Representation(
                        period: index, id: id, bandwidth: node.attributes["bandwidth"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil },
                        contentType: Self.contentType(set, node), base: Self.baseURL([mpd, period, set, node]), initialization: nil, segments: [])
                    var emitFailure: Failure?
                    let emit: (Segment) -> Bool = { segment in
                        produced += 1
                        guard produced <= segmentLimit else {
                            emitFailure = Failure(description: "the DASH manifest describes more than \(segmentLimit) segments")
                            return false
                        }
                        periodEnd = max(periodEnd, segment.end)
                        representation.segments.append(segment)
                        return true
                    }
                    if levels.contains(where: { $0.first("SegmentTemplate") != nil }) {
                        representation.initialization = Self.template(levels, node, periodStart, periodDuration, segmentLimit, emit, &emitFailure)
                    } else if levels.contains(where: { $0.first("SegmentList") != nil }) {
                        representation.initialization = Self.list(levels, periodStart, emit)
                    }
                    if let emitFailure { throw emitFailure }
                    found.append(representation)
                }
            }
            periodStart = periodDuration.map { periodStart + $0 } ?? periodEnd
        }
        return found
    }

    // MARK: - Segment addressing

    private static func contentType(_ set: Node, _ representation: Node) -> String? {
        if let type = set.attributes["contentType"], !type.isEmpty { return type }
        let mime = representation.attributes["mimeType"] ?? set.attributes["mimeType"]
        return mime.flatMap { $0.split(separator: "/").first.map(String.init) }
    }

    /// `SegmentTemplate` attributes inherited from the period down to the representation; emits
    /// its segments and returns its initialisation path. `emit` returns false to stop.
    private static func template(
        _ levels: [Node], _ representation: Node, _ periodStart: Int64, _ periodDuration: Int64?, _ limit: Int,
        _ emit: (Segment) -> Bool, _ failure: inout Failure?
    ) -> String? {
        var attributes: [String: String] = [:]
        var timeline: Node?
        for level in levels {
            guard let template = level.first("SegmentTemplate") else { continue }
            attributes.merge(template.attributes) { _, inner in inner }
            if let t = template.first("SegmentTimeline") { timeline = t }
        }
        let id = representation.attributes["id"] ?? ""
        let bandwidth = representation.attributes["bandwidth"] ?? ""
        let initialization = attributes["initialization"].map { fill($0, id: id, number: 0, time: 0, bandwidth: bandwidth) }
        guard let media = attributes["media"] else { return initialization }
        let timescale = attributes["timescale"].flatMap { Int64($0) }.flatMap { $0 > 0 ? $0 : nil } ?? 1
        var number = attributes["startNumber"].flatMap { Int64($0) } ?? 1
        let offset = attributes["presentationTimeOffset"].flatMap { Int64($0) } ?? 0
        // Media time in microseconds of a time in timescale units, or nil past 30 days.
        func micro(_ t: Int64) -> Int64? {
            let units = t - offset
            guard units >= 0, units / timescale <= 30 * 86_400 else { return nil }
            return periodStart + units / timescale * 1_000_000 + units % timescale * 1_000_000 / timescale
        }
        if let timeline {
            var time: Int64 = 0
            let end = periodDuration.map { offset + $0 * timescale / 1_000_000 }
            for s in timeline.all("S") {
                guard let d = s.attributes["d"].flatMap({ Int64($0) }), d > 0 else { break }
                if let t = s.attributes["t"].flatMap({ Int64($0) }) { time = t }
                var repeats = s.attributes["r"].flatMap { Int64($0) } ?? 0
                if repeats < 0 {  // until the end of the period
                    guard let end, end > time else { break }
                    repeats = (end - time + d - 1) / d - 1
                }
                guard repeats <= Int64(limit) else { break }
                for _ in 0...repeats {
                    guard let start = micro(time), let stop = micro(time + d) else { return initialization }
                    let path = fill(media, id: id, number: number, time: time, bandwidth: bandwidth)
                    guard emit(Segment(path: path, start: start, end: stop)) else { return initialization }
                    time += d
                    number += 1
                }
            }
        } else if let d = attributes["duration"].flatMap({ Int64($0) }), d > 0, let periodDuration {
            let total = periodDuration * timescale / 1_000_000
            var time: Int64 = 0
            guard total / d <= Int64(limit) else {
                failure = Failure(description: "the DASH manifest describes more than \(limit) segments")
                return initialization
            }
            while time < total {
                guard let start = micro(offset + time), let stop = micro(offset + min(time + d, total)) else { break }
                let path = fill(media, id: id, number: number, time: offset + time, bandwidth: bandwidth)
                guard emit(Segment(path: path, start: start, end: stop)) else { break }
                time += d
                number += 1
            }
        }
        return initialization
    }

    /// `SegmentList`: explicit `SegmentURL`s of one `duration` each, optionally byte ranges; emits
    /// them and returns the `Initialization`'s `sourceURL`. `emit` returns false to stop.
    private static func list(_ levels: [Node], _ periodStart: Int64, _ emit: (Segment) -> Bool) -> String? {
        guard let list = levels.reversed().lazy.compactMap({ $0.first("SegmentList") }).first else { return nil }
        let initialization = list.first("Initialization")?.attributes["sourceURL"]
        let timescale = list.attributes["timescale"].flatMap { Int64($0) }.flatMap { $0 > 0 ? $0 : nil } ?? 1
        guard let d = list.attributes["duration"].flatMap({ Int64($0) }), d > 0, d / timescale <= 86_400 else { return initialization }
        let step = d / timescale * 1_000_000 + d % timescale * 1_000_000 / timescale
        var start = periodStart
        for url in list.all("SegmentURL") {
            guard let media = url.attributes["media"] else { break }
            var bytes: Range<UInt64>?
            if let range = url.attributes["mediaRange"] {
                let ends = range.split(separator: "-", maxSplits: 1)
                guard ends.count == 2, let first = UInt64(ends[0]), let last = UInt64(ends[1]), last >= first, last < .max else { break }
                bytes = first..<last + 1
            }
            guard emit(Segment(path: media, start: start, end: start + step, bytes: bytes)) else { break }
            start += step
        }
        return initialization
    }

    /// The `BaseURL`s from the manifest down to the representation, joined: a relative one is
    /// added to what is above it, an absolute one replaces it.
    private static func baseURL(_ levels: [Node]) -> String {
        var base = ""
        for level in levels {
            guard let url = level.first("BaseURL").map({ Self.trimmed($0.text) }), !url.isEmpty else { continue }
            let folder = url.hasSuffix("/") ? url : url.contains("/") ? String(url[...url.lastIndex(of: "/")!]) : ""
            base = url.contains(":") || url.hasPrefix("/") ? folder : base + folder
        }
        return base
    }

    private static func trimmed(_ text: String) -> String {
        var s = Substring(text)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }

    /// A template with `$RepresentationID$`, `$Number$`, `$Time$`, `$Bandwidth$` (each with an
    /// optional `%0Nd` width) and `$$` filled in.
    static func fill(_ template: String, id: String, number: Int64, time: Int64, bandwidth: String) -> String {
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "$") {
            out += rest[..<open]
            let after = rest[rest.index(after: open)...]
            guard let close = after.firstIndex(of: "$") else {
                out += rest[open...]
                return out
            }
            let token = after[..<close]
            rest = after[after.index(after: close)...]
            if token.isEmpty {
                out += "$"
                continue
            }
            let parts = token.split(separator: "%", maxSplits: 1)
            var width = 0
            if parts.count == 2, parts[1].hasPrefix("0"), parts[1].hasSuffix("d") {
                width = min(Int(parts[1].dropFirst().dropLast()) ?? 0, 32)
            }
            let value: String
            switch parts.first ?? "" {
            case "RepresentationID": value = id
            case "Number": value = String(number)
            case "Time": value = String(time)
            case "Bandwidth": value = bandwidth
            default:
                out += "$" + token + "$"
                continue
            }
            out += String(repeating: "0", count: max(0, width - value.count)) + value
        }
        out += rest
        return out
    }

    /// An ISO 8601 duration (`PT1H2M3.5S`, `P1DT2H`) in microseconds; nil when malformed.
    static func isoDuration(_ text: String) -> Int64? {
        var rest = Substring(text)
        guard rest.hasPrefix("P") else { return nil }
        rest = rest.dropFirst()
        var total: Int64 = 0
        var inTime = false
        var number = ""
        for c in rest {
            switch c {
            case "T": inTime = true
            case "0"..."9", ".": number.append(c)
            default:
                guard let value = microseconds(decimal: Substring(number)) else { return nil }
                number = ""
                let scale: Int64
                switch (c, inTime) {
                case ("D", false): scale = 86_400
                case ("H", true): scale = 3_600
                case ("M", true): scale = 60
                case ("S", true): scale = 1
                default: return nil
                }
                total += value * scale
                guard total <= 30 * 86_400 * 1_000_000 else { return nil }
            }
        }
        return number.isEmpty ? total : nil
    }

    // MARK: - XML scanning

    /// A tree of the elements, with namespace prefixes dropped; nil when there is no element.
    static func parse(_ text: String) -> Node? {
        let bytes = Array(text.utf8)
        var stack: [Node] = []
        var root: Node?
        var i = 0
        var nodes = 0
        func skip(past terminator: [UInt8]) {
            while i < bytes.count {
                if bytes[i] == terminator[0], i + terminator.count <= bytes.count, Array(bytes[i..<i + terminator.count]) == terminator {
                    i += terminator.count
                    return
                }
                i += 1
            }
        }
        while i < bytes.count && nodes < maxNodes {
            if bytes[i] != UInt8(ascii: "<") {
                let start = i
                while i < bytes.count && bytes[i] != UInt8(ascii: "<") { i += 1 }
                if let top = stack.last, top.text.utf8.count < 4_096 {
                    top.text += decodeEntities(String(decoding: bytes[start..<i], as: UTF8.self))
                }
                continue
            }
            if bytes[i...].starts(with: "<!--".utf8) {
                skip(past: Array("-->".utf8))
                continue
            }
            if bytes[i...].starts(with: "<?".utf8) || bytes[i...].starts(with: "<!".utf8) {
                skip(past: [UInt8(ascii: ">")])
                continue
            }
            i += 1
            let closing = i < bytes.count && bytes[i] == UInt8(ascii: "/")
            if closing { i += 1 }
            let nameStart = i
            while i < bytes.count, !isSpace(bytes[i]), bytes[i] != UInt8(ascii: ">"), bytes[i] != UInt8(ascii: "/") { i += 1 }
            let name = localName(String(decoding: bytes[nameStart..<i], as: UTF8.self))
            if closing {
                skip(past: [UInt8(ascii: ">")])
                if let index = stack.lastIndex(where: { $0.name == name }) { stack.removeSubrange(index...) }
                continue
            }
            var attributes: [String: String] = [:]
            var selfClosing = false
            while i < bytes.count {
                while i < bytes.count && isSpace(bytes[i]) { i += 1 }
                guard i < bytes.count else { break }
                if bytes[i] == UInt8(ascii: ">") {
                    i += 1
                    break
                }
                if bytes[i] == UInt8(ascii: "/") {
                    selfClosing = true
                    i += 1
                    continue
                }
                let keyStart = i
                while i < bytes.count, bytes[i] != UInt8(ascii: "="), !isSpace(bytes[i]), bytes[i] != UInt8(ascii: ">") { i += 1 }
                let key = localName(String(decoding: bytes[keyStart..<i], as: UTF8.self))
                while i < bytes.count && isSpace(bytes[i]) { i += 1 }
                guard i < bytes.count, bytes[i] == UInt8(ascii: "=") else { continue }
                i += 1
                while i < bytes.count && isSpace(bytes[i]) { i += 1 }
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") || bytes[i] == UInt8(ascii: "'") else { continue }
                let quote = bytes[i]
                i += 1
                let valueStart = i
                while i < bytes.count && bytes[i] != quote { i += 1 }
                if attributes.count < 64 {
                    attributes[key] = decodeEntities(String(decoding: bytes[valueStart..<min(i, bytes.count)], as: UTF8.self))
                }
                i += 1
            }
            nodes += 1
            let node = Node(name: name, attributes: attributes)
            if let parent = stack.last {
                parent.children.append(node)
            } else if root == nil {
                root = node
            } else {
                continue  // a second top-level element: ignored
            }
            if !selfClosing && stack.count < 32 { stack.append(node) }
        }
        return root
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    private static func localName(_ name: String) -> String {
        name.split(separator: ":").last.map(String.init) ?? name
    }

    private static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        return text.replacingEntity("&lt;", "<").replacingEntity("&gt;", ">").replacingEntity("&quot;", "\"")
            .replacingEntity("&apos;", "'").replacingEntity("&amp;", "&")
    }
}

extension String {
    fileprivate func replacingEntity(_ entity: String, _ character: String) -> String {
        split(separator: entity, omittingEmptySubsequences: false).joined(separator: character)
    }

}
