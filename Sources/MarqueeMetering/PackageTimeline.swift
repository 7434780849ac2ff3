import MarqueeManifests

/// Where each media object of a package sits in media time, read from the package's own
/// playlists: HLS media playlists (`#EXTINF`, `#EXT-X-BYTERANGE`) and DASH manifests
/// (`SegmentTemplate` with a `SegmentTimeline` or a fixed `duration`, `SegmentList`). Billing
/// meters a session by the media time of what it was delivered, so packages made by other tools
/// meter the same way as ours.
///
/// Playlists come from publishers, so they are treated as hostile: paths that climb out of the
/// package, absolute URLs, absurd durations and oversized timelines are ignored or refused, never
/// trusted. Objects no playlist names (init segments, posters, playlists themselves) have no
/// interval and are never billed.
public struct PackageTimeline: Sendable {
    /// The most segments one package may describe (about 2.3 days of 2-second segments in 50
    /// renditions); a manifest that claims more is refused.
    public static let maxSegments = 5_000_000

    /// What an object holds: its segments and the track whose playlist names it.
    public struct MediaObject: Sendable {
        public fileprivate(set) var segments: [TimelineSegment]
        /// An index into `tracks`.
        public let track: Int
    }

    /// Media objects by path (relative to the package root, as in delivery records).
    private var objects: [String: MediaObject] = [:]
    private var count = 0

    /// A rendition or audio track: the media playlist (or DASH representation) that names a
    /// segment. Analytics counts watch time, bitrate and switches by it.
    public struct Track: Sendable, Hashable {
        public enum Kind: String, Sendable { case video, audio }
        /// `720p` (from the master playlist's RESOLUTION), the audio rendition's NAME, or the
        /// playlist's path (the representation's id in DASH) when nothing better is said.
        public var name: String
        public var kind: Kind
        /// Bits per second the playlists declare (HLS BANDWIDTH, DASH @bandwidth), when they do.
        public var bandwidth: Int?
    }

    /// The tracks in the order their playlists were read; segments refer to them by index.
    public private(set) var tracks: [Track] = []
    /// The end of the longest track's media time, in microseconds: the title's duration.
    public private(set) var durationMicroseconds: Int64 = 0
    /// The kind of track playback follows: video when the package has any.
    public private(set) var primaryKind = Track.Kind.audio

    /// The track whose playlist names `objectPath` as a segment; nil for other objects.
    public func track(of objectPath: String) -> Track? {
        objects[objectPath].map { tracks[$0.track] }
    }

    /// The object's segments and track in one lookup; nil for objects that are not media segments.
    public func media(of objectPath: String) -> (segments: [TimelineSegment], track: Track)? {
        guard let object = objects[objectPath] else { return nil }
        return (object.segments, tracks[object.track])
    }

    /// Why playlists cannot be used for metering.
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// Builds the timeline from playlist texts by their path in the package. Every HLS media
    /// playlist (one with `#EXTINF`, except I-frame playlists, which re-address bytes of the
    /// video segments) and every DASH manifest (`.mpd`) contributes; when two name the same
    /// object, the first by path order wins.
    /// - Throws: `Failure` when the playlists describe more than `maxSegments` segments.
    public init(files: [String: String]) throws {
        let described = files["master.m3u8"].map { Self.tracks(inMaster: $0) } ?? [:]
        for path in files.keys.sorted() {
            guard let text = files[path] else { continue }
            let base = Self.directory(of: path)
            if path.hasSuffix(".mpd") || text.contains("<MPD") {
                try addDASH(text, base: base, source: path)
            } else if text.hasPrefix("#EXTM3U") && text.contains("#EXTINF") && !text.contains("#EXT-X-I-FRAMES-ONLY") {
                beginTrack(described[path] ?? Track(name: path, kind: .video, bandwidth: nil))
                try addHLS(text, base: base, source: path)
            }
        }
    }

    /// Loads the package's playlists with `read` (a relative path → its text, nil when absent):
    /// `master.m3u8` and the media playlists it names, then `manifest.mpd` when there is no HLS.
    /// - Throws: `Failure` when the package has neither, or what `read` throws.
    public static func load(_ read: (String) async throws -> String?) async throws -> PackageTimeline {
        var files: [String: String] = [:]
        if let master = try await read("master.m3u8") {
            files["master.m3u8"] = master
            for uri in mediaPlaylists(inMaster: master) where files[uri] == nil && files.count < 1_000 {
                if let text = try await read(uri) { files[uri] = text }
            }
        }
        if !files.keys.contains(where: { $0 != "master.m3u8" }), let mpd = try await read("manifest.mpd") {
            files["manifest.mpd"] = mpd
        }
        guard !files.isEmpty else { throw Failure(description: "the package has neither master.m3u8 nor manifest.mpd") }
        return try PackageTimeline(files: files)
    }

    /// The media time of a whole-object segment; nil for objects no playlist names as a segment,
    /// and for objects holding several byte-range segments (use `segments(of:)`).
    public func interval(of objectPath: String) -> MediaInterval? {
        guard let found = objects[objectPath]?.segments, found.count == 1, found[0].bytes == nil else { return nil }
        return found[0].interval
    }

    /// The segments an object holds (one for a whole-object segment, several for byte ranges of
    /// one file); empty for objects that are not media segments.
    public func segments(of objectPath: String) -> [TimelineSegment] {
        objects[objectPath]?.segments ?? []
    }

    /// Objects with media time.
    public var objectCount: Int { objects.count }

    // MARK: - HLS

    /// What the master playlist says of each media playlist it names: variant streams are video
    /// renditions (named by their height, `720p`), `#EXT-X-MEDIA:TYPE=AUDIO` renditions audio.
    static func tracks(inMaster text: String) -> [String: Track] {
        var found: [String: Track] = [:]
        var variant: Track?
        for line in text.split(whereSeparator: \.isNewline) {
            let line = line.trimmingWhitespace()
            if line.hasPrefix("#EXT-X-STREAM-INF") {
                var name = ""
                if let resolution = attribute("RESOLUTION", in: line), let height = resolution.split(separator: "x").last, Int(height) != nil {
                    name = "\(height)p"
                }
                variant = Track(name: name, kind: .video, bandwidth: attribute("BANDWIDTH", in: line).flatMap { Int($0) })
            } else if line.hasPrefix("#EXT-X-MEDIA:"), let uri = attribute("URI", in: line), let path = resolve(uri, base: "") {
                let type = attribute("TYPE", in: line)
                guard type == "AUDIO" || type == "VIDEO" else { continue }
                found[path] = Track(
                    name: attribute("NAME", in: line) ?? path, kind: type == "AUDIO" ? .audio : .video,
                    bandwidth: attribute("BANDWIDTH", in: line).flatMap { Int($0) })
            } else if var track = variant, !line.isEmpty, !line.hasPrefix("#") {
                if let path = resolve(String(line), base: "") {
                    if track.name.isEmpty { track.name = path }
                    if found[path] == nil { found[path] = track }
                }
                variant = nil
            }
        }
        return found
    }

    /// The media playlists a master playlist names (variant streams and `#EXT-X-MEDIA`
    /// renditions, not I-frame playlists), resolved against the package root.
    static func mediaPlaylists(inMaster text: String) -> [String] {
        var uris: [String] = []
        var expectURI = false
        for line in text.split(whereSeparator: \.isNewline) {
            let line = line.trimmingWhitespace()
            if line.hasPrefix("#EXT-X-STREAM-INF") {
                expectURI = true
            } else if line.hasPrefix("#EXT-X-MEDIA:"), let uri = attribute("URI", in: line) {
                if let path = resolve(uri, base: "") { uris.append(path) }
            } else if expectURI && !line.isEmpty && !line.hasPrefix("#") {
                if let path = resolve(String(line), base: "") { uris.append(path) }
                expectURI = false
            }
        }
        return uris
    }

    private mutating func addHLS(_ text: String, base: String, source: String) throws {
        var time: Int64 = 0
        var duration: Int64?
        var byteRange: (length: UInt64, offset: UInt64?)?
        var nextOffset: [String: UInt64] = [:]  // where a byte range without @offset starts
        for line in text.split(whereSeparator: \.isNewline) {
            let line = line.trimmingWhitespace()
            if line.hasPrefix("#EXTINF:") {
                let value = line.dropFirst("#EXTINF:".count).prefix { $0 != "," }
                duration = microseconds(decimal: value.trimmingWhitespace())
            } else if line.hasPrefix("#EXT-X-BYTERANGE:") {
                let value = line.dropFirst("#EXT-X-BYTERANGE:".count).split(separator: "@", maxSplits: 1)
                if let length = UInt64(value[0]), length > 0 {
                    byteRange = (length, value.count > 1 ? UInt64(value[1]) : nil)
                }
            } else if !line.isEmpty && !line.hasPrefix("#") {
                defer {
                    duration = nil
                    byteRange = nil
                }
                guard let d = duration else { continue }
                let interval = MediaInterval(start: time, end: time + d)
                time += d
                guard let path = Self.resolve(String(line), base: base) else { continue }
                var bytes: Range<UInt64>?
                if let (length, offset) = byteRange {
                    let start = offset ?? nextOffset[path] ?? 0
                    guard start <= UInt64.max - length else { continue }
                    bytes = start..<start + length
                    nextOffset[path] = start + length
                }
                try add(path, TimelineSegment(bytes: bytes, interval: interval), from: source)
            }
        }
    }

    // MARK: - DASH

    private mutating func addDASH(_ text: String, base: String, source: String) throws {
        let representations: [DASHManifest.Representation]
        do {
            representations = try DASHManifest(text).representations(segmentLimit: Self.maxSegments - count)
        } catch {
            throw Failure(description: error.description)
        }
        // Objects on another host or outside the package are nothing of ours to meter.
        for representation in representations where !representation.baseIsAbsolute {
            let kind: Track.Kind = representation.contentType == "audio" ? .audio : .video
            beginTrack(Track(name: representation.id.isEmpty ? source : representation.id, kind: kind, bandwidth: representation.bandwidth))
            for segment in representation.segments {
                guard let path = Self.resolve(representation.base + segment.path, base: base) else { continue }
                try add(path, TimelineSegment(bytes: segment.bytes, interval: MediaInterval(start: segment.start, end: segment.end)), from: source)
            }
        }
    }

    // MARK: - Shared

    /// Paths already claimed by another playlist keep their first segments.
    private var owners: [String: String] = [:]

    private mutating func beginTrack(_ track: Track) {
        tracks.append(track)
        if track.kind == .video { primaryKind = .video }
    }

    private mutating func add(_ path: String, _ segment: TimelineSegment, from playlist: String) throws {
        if let owner = owners[path], owner != playlist { return }
        owners[path] = playlist
        durationMicroseconds = max(durationMicroseconds, segment.interval.end)
        count += 1
        guard count <= Self.maxSegments else {
            throw Failure(description: "the package's playlists describe more than \(Self.maxSegments) segments")
        }
        objects[path, default: MediaObject(segments: [], track: max(0, tracks.count - 1))].segments.append(segment)
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    /// A playlist URI resolved against the folder of its playlist, as a path inside the package;
    /// nil for absolute URLs and paths that climb out of the package.
    static func resolve(_ uri: String, base: String) -> String? {
        let uri = uri.prefix { $0 != "?" && $0 != "#" }
        guard !uri.isEmpty, !uri.hasPrefix("/"), !uri.contains(":") else { return nil }
        var parts = base.split(separator: "/").map(String.init)
        for part in uri.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..":
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
            default: parts.append(String(part))
            }
        }
        return parts.isEmpty ? nil : parts.joined(separator: "/")
    }

    /// `NAME="value"` or `NAME=value` from an HLS attribute list.
    static func attribute(_ name: String, in line: Substring) -> String? {
        var rest = line[...]
        while let range = rest.firstRange(of: name + "=") {
            let before = range.lowerBound == line.startIndex ? nil : line[line.index(before: range.lowerBound)]
            rest = rest[range.upperBound...]
            guard before == nil || before == ":" || before == "," else { continue }
            if rest.first == "\"" {
                let value = rest.dropFirst().prefix { $0 != "\"" }
                return String(value)
            }
            return String(rest.prefix { $0 != "," })
        }
        return nil
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var s = self
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return s
    }
}
