/// What a served file is, from its extension: its Content-Type and how long caches may keep it.
public enum MediaType: UInt8, Sendable, CaseIterable {
    case hlsPlaylist, dashManifest, mediaSegment, mp4, audioMP4, videoMP4, transportStream, aac, webVTT
    case jpeg, png, json, octetStream
    /// A web page's files (the player page), served from public prefixes.
    case html, css, javascript, svg

    /// How long a response may be cached: playlists and manifests change (live, republish), segments never.
    public enum CacheClass: Sendable {
        case manifest, segment, other
    }

    public var contentType: StaticString {
        switch self {
        case .hlsPlaylist: "application/vnd.apple.mpegurl"
        case .dashManifest: "application/dash+xml"
        case .mediaSegment: "video/iso.segment"
        case .mp4: "video/mp4"
        case .audioMP4: "audio/mp4"
        case .videoMP4: "video/mp4"
        case .transportStream: "video/mp2t"
        case .aac: "audio/aac"
        case .webVTT: "text/vtt; charset=utf-8"
        case .jpeg: "image/jpeg"
        case .png: "image/png"
        case .json: "application/json"
        case .octetStream: "application/octet-stream"
        case .html: "text/html; charset=utf-8"
        case .css: "text/css; charset=utf-8"
        case .javascript: "text/javascript; charset=utf-8"
        case .svg: "image/svg+xml"
        }
    }

    public var cacheClass: CacheClass {
        switch self {
        // A page is an index like a playlist: a new release must show promptly.
        case .hlsPlaylist, .dashManifest, .html: .manifest
        case .mediaSegment, .mp4, .audioMP4, .videoMP4, .transportStream, .aac, .webVTT: .segment
        case .jpeg, .png, .json, .octetStream, .css, .javascript, .svg: .other
        }
    }

    /// The media type of a path by its extension (case-insensitive); unknown is octet-stream.
    public init(path: UnsafeRawBufferPointer) {
        var dot = path.count - 1
        while dot >= 0 && path[dot] != 0x2E && path[dot] != 0x2F { dot -= 1 }
        guard dot >= 0, path[dot] == 0x2E else {
            self = .octetStream
            return
        }
        let ext = UnsafeRawBufferPointer(rebasing: path[(dot + 1)...])
        switch ext.count {
        case 2:
            if ext.equalsLowercase("ts") { self = .transportStream }
            else if ext.equalsLowercase("js") { self = .javascript }
            else { self = .octetStream }
        case 3:
            if ext.equalsLowercase("m4s") { self = .mediaSegment }
            else if ext.equalsLowercase("mpd") { self = .dashManifest }
            else if ext.equalsLowercase("mp4") { self = .mp4 }
            else if ext.equalsLowercase("m4a") { self = .audioMP4 }
            else if ext.equalsLowercase("m4v") { self = .videoMP4 }
            else if ext.equalsLowercase("aac") { self = .aac }
            else if ext.equalsLowercase("vtt") { self = .webVTT }
            else if ext.equalsLowercase("jpg") { self = .jpeg }
            else if ext.equalsLowercase("png") { self = .png }
            else if ext.equalsLowercase("cmf") { self = .mediaSegment }
            else if ext.equalsLowercase("css") { self = .css }
            else if ext.equalsLowercase("svg") { self = .svg }
            else if ext.equalsLowercase("htm") { self = .html }
            else { self = .octetStream }
        case 4:
            if ext.equalsLowercase("m3u8") { self = .hlsPlaylist }
            else if ext.equalsLowercase("jpeg") { self = .jpeg }
            else if ext.equalsLowercase("json") { self = .json }
            else if ext.equalsLowercase("html") { self = .html }
            else if ext.equalsLowercase("cmfv") || ext.equalsLowercase("cmfa") { self = .mediaSegment }
            else { self = .octetStream }
        default: self = .octetStream
        }
    }
}
