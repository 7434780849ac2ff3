import MarqueeManifests

/// A media request: its target (path and query, or a full URL on another host) and, for a part
/// of a larger file (`EXT-X-BYTERANGE`, DASH `mediaRange`), its bytes.
struct MediaRequest: Equatable {
    var target: String
    var bytes: Range<UInt64>?
}

/// One rendition's media as a viewer plays it, parsed once per thread and shared by its viewers.
final class RenditionMedia {
    let initialization: MediaRequest?
    let segments: [MediaRequest]
    let durationsMs: [Int64]

    init(initialization: MediaRequest?, segments: [MediaRequest], durationsMs: [Int64]) {
        self.initialization = initialization
        self.segments = segments
        self.durationsMs = durationsMs
    }
}

/// A rendition a viewer can pick: its peak bandwidth, and either its HLS media playlist (still to
/// be fetched) or its media (a DASH manifest lists it at once).
struct PlayableRendition {
    var bandwidth: Int
    var playlist: String?
    var media: RenditionMedia?
}

/// What a manifest answer says, for a viewer.
enum ManifestAnswer {
    /// An HLS master playlist: renditions whose playlists are still to be fetched.
    case renditions([PlayableRendition])
    /// An HLS media playlist: one rendition's media.
    case media(RenditionMedia)
    /// A DASH manifest: the renditions of its first period's video, each with its media.
    case presentation([PlayableRendition])
    /// Not something a player could play, and why.
    case unplayable(String)
}

/// A thread's parsed manifests by request target. Every viewer fetches its manifests itself, as
/// players do, but an answer identical to one already read is not parsed again: its renditions
/// and segment lists are shared, so 10,000 viewers of one title hold one copy of its segment list.
struct ManifestCache {
    private var entries: [String: (length: Int, digest: Int, answer: ManifestAnswer)] = [:]

    /// The most segments one manifest may list for the load test to follow it.
    static let segmentLimit = 2_000_000

    /// `body`, the answer to `target`, read as an HLS playlist or a DASH manifest.
    mutating func read(_ body: [UInt8], target: String) -> ManifestAnswer {
        var hasher = Hasher()
        body.withUnsafeBytes { hasher.combine(bytes: $0) }
        let digest = hasher.finalize()
        if let entry = entries[target], entry.length == body.count, entry.digest == digest { return entry.answer }
        let answer = Self.parse(String(decoding: body, as: UTF8.self), target: target)
        if entries.count >= 1_000 { entries.removeAll(keepingCapacity: true) }
        entries[target] = (body.count, digest, answer)
        return answer
    }

    static func parse(_ text: String, target: String) -> ManifestAnswer {
        if text.hasPrefix("#EXTM3U") || text.hasPrefix("\u{FEFF}#EXTM3U") {
            switch Result(catching: { () throws(HLSPlaylist.Problem) in try HLSPlaylist.parse(text) }) {
            case .failure(let problem):
                return .unplayable("an unplayable HLS playlist: \(problem.description)")
            case .success(.master(let variants)):
                return .renditions(variants.map { PlayableRendition(bandwidth: $0.bandwidth, playlist: HLSPlaylist.resolve($0.uri, against: target)) })
            case .success(.media(let media)):
                let initialization = media.initialization.map { MediaRequest(target: HLSPlaylist.resolve($0, against: target), bytes: media.initializationBytes) }
                return .media(
                    RenditionMedia(
                        initialization: initialization,
                        segments: media.segments.map { MediaRequest(target: HLSPlaylist.resolve($0.uri, against: target), bytes: $0.bytes) },
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
        // A player picks among the video representations (all of them when none says its type);
        // audio and text are not modelled. Later periods are not played.
        let first = all.filter { $0.period == 0 && !$0.segments.isEmpty }
        let video = first.contains { $0.contentType == "video" } ? first.filter { $0.contentType == "video" } : first
        guard !video.isEmpty else { return .unplayable("a DASH manifest without segments a player could fetch (SegmentTemplate or SegmentList)") }
        let renditions = video.map { representation in
            let resolve = { (path: String) in HLSPlaylist.resolve(representation.base + path, against: target) }
            let media = RenditionMedia(
                initialization: representation.initialization.map { MediaRequest(target: resolve($0), bytes: nil) },
                segments: representation.segments.map { MediaRequest(target: resolve($0.path), bytes: $0.bytes) },
                durationsMs: representation.segments.map { ($0.end - $0.start + 500) / 1000 })
            return PlayableRendition(bandwidth: representation.bandwidth ?? 1, playlist: nil, media: media)
        }
        return .presentation(renditions.sorted { $0.bandwidth < $1.bandwidth })
    }
}
