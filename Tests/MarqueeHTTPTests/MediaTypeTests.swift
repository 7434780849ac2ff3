import MarqueeHTTP
import Testing

@Suite("MediaType")
struct MediaTypeTests {
    private func mediaType(_ path: String) -> MediaType {
        withBytes(path) { MediaType(path: $0) }
    }

    @Test(arguments: [
        ("/live/index.m3u8", MediaType.hlsPlaylist, "application/vnd.apple.mpegurl", MediaType.CacheClass.manifest),
        ("/vod/manifest.mpd", .dashManifest, "application/dash+xml", .manifest),
        ("/vod/seg-1.m4s", .mediaSegment, "video/iso.segment", .segment),
        ("/vod/seg-1.cmfv", .mediaSegment, "video/iso.segment", .segment),
        ("/vod/seg-1.cmfa", .mediaSegment, "video/iso.segment", .segment),
        ("/vod/seg-1.cmf", .mediaSegment, "video/iso.segment", .segment),
        ("/vod/movie.mp4", .mp4, "video/mp4", .segment),
        ("/vod/audio.m4a", .audioMP4, "audio/mp4", .segment),
        ("/vod/video.m4v", .videoMP4, "video/mp4", .segment),
        ("/live/seg-9.ts", .transportStream, "video/mp2t", .segment),
        ("/live/audio.aac", .aac, "audio/aac", .segment),
        ("/subs/en.vtt", .webVTT, "text/vtt; charset=utf-8", .segment),
        ("/img/poster.jpg", .jpeg, "image/jpeg", .other),
        ("/img/poster.jpeg", .jpeg, "image/jpeg", .other),
        ("/img/thumb.png", .png, "image/png", .other),
        ("/api/info.json", .json, "application/json", .other),
        ("/player/index.html", .html, "text/html; charset=utf-8", .manifest),
        ("/player/old.htm", .html, "text/html; charset=utf-8", .manifest),
        ("/player/player.css", .css, "text/css; charset=utf-8", .other),
        ("/player/player.js", .javascript, "text/javascript; charset=utf-8", .other),
        ("/player/logo.svg", .svg, "image/svg+xml", .other),
    ])
    func knownExtensions(path: String, type: MediaType, contentType: String, cacheClass: MediaType.CacheClass) {
        let found = mediaType(path)
        #expect(found == type)
        #expect(found.contentType.description == contentType)
        #expect(found.cacheClass == cacheClass)
    }

    @Test(arguments: [
        ("INDEX.M3U8", MediaType.hlsPlaylist), ("Manifest.MPD", .dashManifest), ("s.M4S", .mediaSegment),
        ("m.Mp4", .mp4), ("a.M4A", .audioMP4), ("v.M4v", .videoMP4), ("x.TS", .transportStream), ("a.AAC", .aac),
        ("s.VTT", .webVTT), ("p.JPG", .jpeg), ("p.JpEg", .jpeg), ("p.PNG", .png), ("d.JSON", .json),
    ])
    func extensionsAreCaseInsensitive(path: String, type: MediaType) {
        #expect(mediaType(path) == type)
    }

    @Test(arguments: [
        "/file.exe", "/file", "/file.", "/", "", "/dir.m3u8/file", "/archive.tar.gz", "/a.m3u", "/a.m3u8x",
        "/a.mp", "/a.t", "/a.mp4 ", "/a.m3u8/", "/a.json5", "m3u8", "/a_m3u8",
    ])
    func unknownOrMissingExtensionsAreOctetStream(path: String) {
        let found = mediaType(path)
        #expect(found == .octetStream)
        #expect(found.contentType.description == "application/octet-stream")
        #expect(found.cacheClass == .other)
    }

    @Test func onlyTheLastExtensionCounts() {
        #expect(mediaType("/a.mp4.m3u8") == .hlsPlaylist)
        #expect(mediaType("/a.m3u8.bak") == .octetStream)
        #expect(mediaType("relative/name.ts") == .transportStream)
    }
}
