import MarqueeManifests

/// A media request as its manifest names it: a URI (relative to its playlist or `BaseURL`, or
/// absolute) and, for a part of a larger file (`EXT-X-BYTERANGE`, DASH `mediaRange`), its bytes.
struct MediaRequest: Equatable {
    var uri: String
    var bytes: Range<UInt64>?
}

/// One rendition's media as a manifest lists it, parsed once per thread and shared by every
/// viewer that got the same answer (whatever its signed path: URIs stay unresolved).
final class RenditionMedia {
    let initialization: MediaRequest?
    let segments: [MediaRequest]
    let durationsMs: [Int64]
    /// Where each segment starts in media time (the sum of the durations before it).
    let startsMs: [Int64]

    init(initialization: MediaRequest?, segments: [MediaRequest], durationsMs: [Int64]) {
        self.initialization = initialization
        self.segments = segments
        self.durationsMs = durationsMs
        var starts: [Int64] = []
        starts.reserveCapacity(durationsMs.count)
        var t: Int64 = 0
        for d in durationsMs {
            starts.append(t)
            t += d
        }
        startsMs = starts
    }

    /// The first segment that ends after `ms`; `segments.count` when none does.
    func segment(endingAfter ms: Int64) -> Int {
        var low = 0
        var high = segments.count
        while low < high {
            let mid = (low + high) / 2
            if startsMs[mid] + durationsMs[mid] > ms { high = mid } else { low = mid + 1 }
        }
        return low
    }
}

/// Audio in a track of its own (an HLS `EXT-X-MEDIA` rendition, a DASH audio adaptation set),
/// fetched alongside the video: its playlist while still to be fetched, the folder its URIs are
/// relative to, and its media once known.
struct AudioTrack {
    var playlist: String?
    var mediaBase: String
    var media: RenditionMedia?

    /// The same track (renditions of one title usually share it).
    func isSame(as other: AudioTrack) -> Bool { playlist == other.playlist && mediaBase == other.mediaBase }

    func target(_ uri: String) -> String {
        uri.hasPrefix("/") || uri.hasPrefix("http://") || uri.hasPrefix("https://") ? uri : mediaBase + uri
    }
}

/// A rendition a viewer can pick: its peak bandwidth; its HLS media playlist, resolved, while
/// still to be fetched; the folder its media URIs are relative to; and its media once known.
struct PlayableRendition {
    var bandwidth: Int
    var playlist: String?
    var mediaBase: String
    var media: RenditionMedia?
    /// Its audio when that is a separate track; nil when the audio is in its segments.
    var audio: AudioTrack? = nil

    /// The request target of `uri`: itself when absolute, else under `mediaBase`.
    func target(_ uri: String) -> String {
        uri.hasPrefix("/") || uri.hasPrefix("http://") || uri.hasPrefix("https://") ? uri : mediaBase + uri
    }
}

/// What a manifest answer says, for a viewer; URIs as the manifest wrote them.
enum ManifestAnswer {
    /// An HLS master playlist: variants (bandwidth, URI, audio playlist URI) whose playlists are
    /// still to be fetched.
    case variants([(bandwidth: Int, uri: String, audio: String?)])
    /// An HLS media playlist: one rendition's media.
    case media(RenditionMedia)
    /// A DASH manifest: its first period's video renditions (bandwidth, `BaseURL`, media), and
    /// its first audio representation, played with every one of them.
    case presentation([(bandwidth: Int, base: String, media: RenditionMedia)], audio: (base: String, media: RenditionMedia)?)
    /// Not something a player could play, and why.
    case unplayable(String)
}

/// A thread's parsed manifests, by content. Every viewer fetches its manifests itself, as players
/// do, but an answer identical to one already read is not parsed again: its segment lists are
/// shared, so 10,000 viewers of one title hold one copy, even when each has its own signed path.
struct ManifestCache {
    private var entries: [Int: (body: [UInt8], answer: ManifestAnswer)] = [:]

    /// The most segments one manifest may list for the load test to follow it.
    static let segmentLimit = 2_000_000

    mutating func read(_ body: [UInt8]) -> ManifestAnswer {
        var hasher = Hasher()
        body.withUnsafeBytes { hasher.combine(bytes: $0) }
        let digest = hasher.finalize()
        if let entry = entries[digest], entry.body == body { return entry.answer }
        let answer = Self.parse(String(decoding: body, as: UTF8.self))
        if entries.count >= 256 { entries.removeAll(keepingCapacity: true) }
        entries[digest] = (body, answer)
        return answer
    }

    static func parse(_ text: String) -> ManifestAnswer {
        if text.hasPrefix("#EXTM3U") || text.hasPrefix("\u{FEFF}#EXTM3U") {
            switch Result(catching: { () throws(HLSPlaylist.Problem) in try HLSPlaylist.parse(text) }) {
            case .failure(let problem):
                return .unplayable("an unplayable HLS playlist: \(problem.description)")
            case .success(.master(let variants)):
                return .variants(variants.map { ($0.bandwidth, $0.uri, $0.audio) })
            case .success(.media(let media)):
                return .media(
                    RenditionMedia(
                        initialization: media.initialization.map { MediaRequest(uri: $0, bytes: media.initializationBytes) },
                        segments: media.segments.map { MediaRequest(uri: $0.uri, bytes: $0.bytes) },
                        durationsMs: media.segments.map(\.durationMs)))
            }
        }
        let manifest = DASHManifest(text)
        guard manifest.isManifest else { return .unplayable("neither an HLS playlist nor a DASH manifest") }
        let all: [DASHManifest.Representation]
        do {
            all = try manifest.representations(segmentLimit: segmentLimit)
        } catch {
            return .unplayable("an unplayable DASH manifest: \(error.description)")
        }
        // A player picks among the video representations (all of them when none says its type)
        // and plays the first audio representation with them; text is not fetched. Later periods
        // are not played.
        let first = all.filter { $0.period == 0 && !$0.segments.isEmpty }
        let typed = first.contains { $0.contentType == "video" }
        let video = typed ? first.filter { $0.contentType == "video" } : first
        guard !video.isEmpty else { return .unplayable("a DASH manifest without segments a player could fetch (SegmentTemplate or SegmentList)") }
        func media(_ representation: DASHManifest.Representation) -> RenditionMedia {
            RenditionMedia(
                initialization: representation.initialization.map { MediaRequest(uri: $0, bytes: nil) },
                segments: representation.segments.map { MediaRequest(uri: $0.path, bytes: $0.bytes) },
                durationsMs: representation.segments.map { ($0.end - $0.start + 500) / 1000 })
        }
        let renditions = video.map { (bandwidth: $0.bandwidth ?? 1, base: $0.base, media: media($0)) }
        let audio = typed ? first.first { $0.contentType == "audio" }.map { (base: $0.base, media: media($0)) } : nil
        return .presentation(renditions.sorted { $0.bandwidth < $1.bandwidth }, audio: audio)
    }
}

/// The folder of a request target (through its last "/", query dropped): what relative URIs in
/// the answer resolve against.
func folder(of target: String) -> String {
    let path = target.prefix { $0 != "?" }
    guard let slash = path.lastIndex(of: "/") else { return "/" }
    return String(path[...slash])
}
