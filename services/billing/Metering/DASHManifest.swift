/// Just enough of an MPEG-DASH manifest (ISO/IEC 23009-1) to say which object holds which media
/// time: periods, adaptation sets, representations, `BaseURL`, `SegmentTemplate` (with a
/// `SegmentTimeline` or a fixed `duration`) and `SegmentList`. `SegmentBase` (one file indexed by
/// its own `sidx`) is not metered. The XML is scanned by hand, bounded, and never trusted.
struct DASHManifest {
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

    /// The most elements scanned; a manifest with more is read only up to there.
    static let maxNodes = 2_000_000

    let root: Node?

    init(_ text: String) {
        root = Self.parse(text)
    }

    /// Calls `body` with each media segment's object path (relative to the manifest, template
    /// variables filled in) and its media time, period by period.
    /// - Throws: `PackageTimeline.Failure` when the manifest describes more than `limit` segments.
    func forEachSegment(limit: Int, _ body: (String, TimelineSegment) throws -> Void) throws {
        guard let mpd = root, mpd.name == "MPD" else { return }
        let presentation = mpd.attributes["mediaPresentationDuration"].flatMap(Self.isoDuration)
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
                for representation in set.all("Representation") {
                    guard let base = Self.baseURL([mpd, period, set, representation]) else { continue }
                    let levels = [period, set, representation]
                    let emit: (String, TimelineSegment) throws -> Void = { path, segment in
                        produced += 1
                        guard produced <= limit else {
                            throw PackageTimeline.Failure(description: "the DASH manifest describes more than \(limit) segments")
                        }
                        periodEnd = max(periodEnd, segment.interval.end)
                        try body(base + path, segment)
                    }
                    if levels.contains(where: { $0.first("SegmentTemplate") != nil }) {
                        try Self.template(levels, representation, periodStart, periodDuration, emit)
                    } else if levels.contains(where: { $0.first("SegmentList") != nil }) {
                        try Self.list(levels, periodStart, emit)
                    }
                }
            }
            periodStart = periodDuration.map { periodStart + $0 } ?? periodEnd
        }
    }

    // MARK: - Segment addressing

    /// `SegmentTemplate` attributes inherited from the period down to the representation.
    private static func template(
        _ levels: [Node], _ representation: Node, _ periodStart: Int64, _ periodDuration: Int64?,
        _ emit: (String, TimelineSegment) throws -> Void
    ) throws {
        var attributes: [String: String] = [:]
        var timeline: Node?
        for level in levels {
            guard let template = level.first("SegmentTemplate") else { continue }
            attributes.merge(template.attributes) { _, inner in inner }
            if let t = template.first("SegmentTimeline") { timeline = t }
        }
        guard let media = attributes["media"] else { return }
        let timescale = attributes["timescale"].flatMap { Int64($0) }.flatMap { $0 > 0 ? $0 : nil } ?? 1
        var number = attributes["startNumber"].flatMap { Int64($0) } ?? 1
        let offset = attributes["presentationTimeOffset"].flatMap { Int64($0) } ?? 0
        let id = representation.attributes["id"] ?? ""
        let bandwidth = representation.attributes["bandwidth"] ?? ""
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
                guard let d = s.attributes["d"].flatMap({ Int64($0) }), d > 0 else { return }
                if let t = s.attributes["t"].flatMap({ Int64($0) }) { time = t }
                var repeats = s.attributes["r"].flatMap { Int64($0) } ?? 0
                if repeats < 0 {  // until the end of the period
                    guard let end, end > time else { return }
                    repeats = (end - time + d - 1) / d - 1
                }
                guard repeats <= Int64(PackageTimeline.maxSegments) else { return }
                for _ in 0...repeats {
                    guard let start = micro(time), let stop = micro(time + d) else { return }
                    let path = fill(media, id: id, number: number, time: time, bandwidth: bandwidth)
                    try emit(path, TimelineSegment(interval: MediaInterval(start: start, end: stop)))
                    time += d
                    number += 1
                }
            }
        } else if let d = attributes["duration"].flatMap({ Int64($0) }), d > 0, let periodDuration {
            let total = periodDuration * timescale / 1_000_000
            var time: Int64 = 0
            guard total / d <= Int64(PackageTimeline.maxSegments) else {
                throw PackageTimeline.Failure(description: "the DASH manifest describes more than \(PackageTimeline.maxSegments) segments")
            }
            while time < total {
                guard let start = micro(offset + time), let stop = micro(offset + min(time + d, total)) else { return }
                let path = fill(media, id: id, number: number, time: offset + time, bandwidth: bandwidth)
                try emit(path, TimelineSegment(interval: MediaInterval(start: start, end: stop)))
                time += d
                number += 1
            }
        }
    }

    /// `SegmentList`: explicit `SegmentURL`s of one `duration` each, optionally byte ranges.
    private static func list(_ levels: [Node], _ periodStart: Int64, _ emit: (String, TimelineSegment) throws -> Void) throws {
        guard let list = levels.reversed().lazy.compactMap({ $0.first("SegmentList") }).first else { return }
        let timescale = list.attributes["timescale"].flatMap { Int64($0) }.flatMap { $0 > 0 ? $0 : nil } ?? 1
        guard let d = list.attributes["duration"].flatMap({ Int64($0) }), d > 0, d / timescale <= 86_400 else { return }
        let step = d / timescale * 1_000_000 + d % timescale * 1_000_000 / timescale
        var start = periodStart
        for url in list.all("SegmentURL") {
            guard let media = url.attributes["media"] else { return }
            var bytes: Range<UInt64>?
            if let range = url.attributes["mediaRange"] {
                let ends = range.split(separator: "-", maxSplits: 1)
                guard ends.count == 2, let first = UInt64(ends[0]), let last = UInt64(ends[1]), last >= first, last < .max else { return }
                bytes = first..<last + 1
            }
            try emit(media, TimelineSegment(bytes: bytes, interval: MediaInterval(start: start, end: start + step)))
            start += step
        }
    }

    /// The `BaseURL`s from the manifest down to the representation, joined as relative paths;
    /// nil when one is absolute (another host: nothing of ours to meter).
    private static func baseURL(_ levels: [Node]) -> String? {
        var base = ""
        for level in levels {
            guard let url = level.first("BaseURL").map({ String(Substring($0.text).trimmingWhitespace()) }), !url.isEmpty else { continue }
            if url.contains(":") || url.hasPrefix("/") { return nil }
            base = url.hasSuffix("/") ? base + url : base + PackageTimeline.directory(of: url) + (url.contains("/") ? "/" : "")
        }
        return base
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
