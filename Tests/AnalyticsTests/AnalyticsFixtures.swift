import MarqueeBus
import MarqueeMetering
import MarqueeTestSupport

@testable import MarqueeAnalytics

/// A package as `marquee package` writes it (two video renditions and an audio track of 2-second
/// segments) and random delivery records of it, with an oracle computed directly from them.
enum AnalyticsFixtures {
    static let segmentCount = 12
    static let segmentBytes: UInt64 = 10_000
    static let renditions = ["media_0.m3u8": "360p", "media_1.m3u8": "720p", "media_2.m3u8": "Audio"]

    static func files() -> [String: String] {
        var files: [String: String] = [
            "master.m3u8": """
            #EXTM3U
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Audio",DEFAULT=YES,URI="media_2.m3u8"
            #EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=640x360,AUDIO="audio"
            media_0.m3u8
            #EXT-X-STREAM-INF:BANDWIDTH=1600000,RESOLUTION=1280x720,AUDIO="audio"
            media_1.m3u8

            """
        ]
        for stream in 0..<3 {
            var text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init-\(stream).m4s\"\n"
            for k in 0..<segmentCount { text += "#EXTINF:2.000,\nchunk-\(stream)-\(k).m4s\n" }
            files["media_\(stream).m3u8"] = text + "#EXT-X-ENDLIST\n"
        }
        return files
    }

    static func timeline() throws -> PackageTimeline { try PackageTimeline(files: files()) }

    /// Records of `sessions` sessions over two titles (same package layout), some without a
    /// session, with refusals, aborted and ranged responses, each with a unique origin.
    static func records(sessions: Int, seed: UInt64) -> [(DeliveryRecord, DeliveryOrigin)] {
        var generator = SeededGenerator(seed: seed)
        var out: [(DeliveryRecord, DeliveryOrigin)] = []
        var sequences = ["g1": UInt64(0), "g2": UInt64(100)]
        let start: Int64 = 1_796_000_000_000_000
        func origin(_ gateway: String) -> DeliveryOrigin {
            defer { sequences[gateway]! += 1 }
            return DeliveryOrigin(gateway: gateway, role: gateway == "g1" ? "origin" : "edge", region: gateway == "g1" ? "eu" : "us", sequence: sequences[gateway]!)
        }
        for s in 0..<sessions {
            let title = s % 3 == 0 ? "title-b" : "title-a"
            let session = "s\(s)"
            let country = ["DE", "FR", nil, "US"][s % 4]
            var time = start + Int64.random(in: 0..<600_000_000, using: &generator)
            for _ in 0..<Int.random(in: 1...30, using: &generator) {
                time += Int64.random(in: 10_000...9_000_000, using: &generator)
                let stream = Int.random(in: 0...2, using: &generator)
                let k = Int.random(in: 0..<segmentCount, using: &generator)
                let path = Int.random(in: 0...9, using: &generator) == 0 ? "media_\(stream).m3u8" : "chunk-\(stream)-\(k).m4s"
                let gateway = Bool.random(using: &generator) ? "g1" : "g2"
                let cache: DeliveryRecord.CacheStatus = gateway == "g1" ? .none : (Bool.random(using: &generator) ? .hit : .miss)
                func record(_ status: UInt16, sent: UInt64, range: ClosedRange<UInt64>? = nil, aborted: Bool = false) -> DeliveryRecord {
                    DeliveryRecord(
                        endMicroseconds: time, durationMicroseconds: 1000, status: status, bytesSent: sent, objectSize: segmentBytes, range: range,
                        aborted: aborted, cache: cache, country: country, sessionID: session, titleID: title, packageVersion: "v1", objectPath: path)
                }
                switch Int.random(in: 0...9, using: &generator) {
                case 0: out.append((record([403, 410, 429, 451, 402, 500][Int.random(in: 0...5, using: &generator)], sent: 0), origin(gateway)))
                case 1: out.append((record(200, sent: segmentBytes / 3, aborted: true), origin(gateway)))
                case 2:
                    // In two ranges, maybe on two gateways.
                    out.append((record(206, sent: 4_000, range: 0...3_999), origin(gateway)))
                    time += 1_000
                    out.append((record(206, sent: 6_000, range: 4_000...9_999), origin(Bool.random(using: &generator) ? "g1" : "g2")))
                case 3: out.append((record(206, sent: segmentBytes, range: 0...(segmentBytes - 1)), origin(gateway)))
                default: out.append((record(200, sent: segmentBytes), origin(gateway)))
                }
            }
        }
        // Requests without a session or title (a public page, a refused path).
        for n in 0..<20 {
            let record = DeliveryRecord(
                endMicroseconds: start + Int64(n) * 30_000_000, durationMicroseconds: 10, status: n % 5 == 0 ? 404 : 200, bytesSent: 100, objectSize: 100,
                objectPath: "player/index.html")
            out.append((record, origin("g1")))
        }
        return out
    }

    /// What the records add up to, computed directly: per title, the counters that do not depend
    /// on the order records arrive in.
    struct Totals: Equatable, CustomStringConvertible {
        var requests: Int64 = 0
        var bytes: Int64 = 0
        var hits: Int64 = 0
        var misses: Int64 = 0
        var aborted: Int64 = 0
        var errors: Int64 = 0
        var mediaRequests: Int64 = 0
        var mediaBytes: Int64 = 0
        var views: Int64 = 0
        var completions: Int64 = 0
        var watchMicroseconds: Int64 = 0

        var description: String {
            "requests \(requests) bytes \(bytes) hits \(hits) misses \(misses) aborted \(aborted) errors \(errors) media \(mediaRequests)/\(mediaBytes) views \(views) completions \(completions) watch \(watchMicroseconds)"
        }

        init() {}

        init(_ c: RollupCounters) {
            (requests, bytes, hits, misses, aborted, errors) = (c.requests, c.bytes, c.hits, c.misses, c.aborted, c.errors)
            (mediaRequests, mediaBytes, views, completions, watchMicroseconds) = (c.mediaRequests, c.mediaBytes, c.views, c.completions, c.watchMicroseconds)
        }
    }

    static func oracle(_ records: [(DeliveryRecord, DeliveryOrigin)], timeline: PackageTimeline) -> [String: Totals] {
        var totals: [String: Totals] = [:]
        var unique: [DeliveryOrigin: DeliveryRecord] = [:]
        for (record, origin) in records { unique[origin] = record }
        var coverage: [String: SessionCoverage] = [:]
        var viewed: Set<String> = []
        var sessionTitle: [String: String] = [:]
        for record in unique.values {
            let title = record.titleID ?? ""
            var t = totals[title, default: Totals()]
            t.requests += 1
            t.bytes += Int64(record.bytesSent)
            if record.cache == .hit { t.hits += 1 }
            if record.cache == .miss { t.misses += 1 }
            if record.aborted { t.aborted += 1 }
            if record.status >= 400 { t.errors += 1 }
            let track = title.isEmpty ? nil : timeline.track(of: record.objectPath)
            if let track, track.kind == .video, record.deliveredWhole {
                t.mediaRequests += 1
                t.mediaBytes += Int64(record.bytesSent)
            }
            totals[title] = t
            guard let session = record.sessionID, !title.isEmpty else { continue }
            sessionTitle[session] = title
            if track != nil, record.status == 200 || record.status == 206 { viewed.insert(session) }
            _ = coverage[session, default: SessionCoverage()].apply(record, timeline: timeline)
        }
        for (session, title) in sessionTitle {
            let covered = coverage[session]?.coveredMicroseconds ?? 0
            totals[title]!.watchMicroseconds += covered
            if viewed.contains(session) { totals[title]!.views += 1 }
            if Double(covered) >= ViewSession.completionShare * Double(timeline.durationMicroseconds) { totals[title]!.completions += 1 }
        }
        return totals
    }
}
