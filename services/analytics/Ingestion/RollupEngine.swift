import MarqueeBus
import MarqueeMetering

/// What one batch of records changes, worked out in memory: the rollup rows to add to, the
/// sessions changed, the sequences now counted. Pure, so any order of the same records (with
/// replays) can be checked against a direct computation; `RollupBatch` reads its state from the
/// database and writes the result back in one transaction.
struct RollupEngine {
    /// Per gateway, the sequences counted before this batch and in it.
    var seen: [String: SequenceSet]
    /// The batch's sessions as stored before it (loaded by the caller); new ones are added.
    var sessions: [String: ViewSession]
    private(set) var delta = RollupDelta()
    private(set) var changedSessions: Set<String> = []
    private(set) var changedGateways: Set<String> = []
    private(set) var duplicates = 0
    private(set) var newestRecord: Int64?
    /// Gateways met: role and region.
    private(set) var edges: [String: (role: String, region: String)] = [:]

    init(seen: [String: SequenceSet] = [:], sessions: [String: ViewSession] = [:]) {
        self.seen = seen
        self.sessions = sessions
    }

    /// Applies records (with their origins, index for index, or none when the source cannot tell;
    /// then nothing is dropped as a replay). `timelines` by `title/version`.
    mutating func apply(_ records: [DeliveryRecord], origins: [DeliveryOrigin], timelines: [String: PackageTimeline]) {
        var fresh: [Int] = []
        fresh.reserveCapacity(records.count)
        for index in records.indices {
            guard index < origins.count else {
                fresh.append(index)
                continue
            }
            let origin = origins[index]
            if !origin.gateway.isEmpty {
                guard seen[origin.gateway, default: SequenceSet()].insert(origin.sequence) else {
                    duplicates += 1
                    continue
                }
                changedGateways.insert(origin.gateway)
                if edges[origin.gateway] == nil { edges[origin.gateway] = (origin.role, origin.region) }
            }
            fresh.append(index)
        }
        // In delivery order: a session's switches and stalls follow the order its segments went out.
        fresh.sort { records[$0].endMicroseconds < records[$1].endMicroseconds }
        var lastTimeline: (name: String, timeline: PackageTimeline?) = ("", nil)
        for index in fresh {
            let record = records[index]
            var timeline: PackageTimeline?
            if let title = record.titleID, let version = record.packageVersion {
                // Records of one package come together: look its timeline up once for a run of them.
                let name = title + "/" + version
                if name != lastTimeline.name { lastTimeline = (name, timelines[name]) }
                timeline = lastTimeline.timeline
            }
            apply(record, edge: index < origins.count ? origins[index].gateway : "", timeline: timeline)
        }
    }

    private mutating func apply(_ record: DeliveryRecord, edge: String, timeline: PackageTimeline?) {
        newestRecord = max(newestRecord ?? .min, record.endMicroseconds)
        let title = record.titleID ?? ""
        let version = record.packageVersion ?? ""
        let media = timeline?.media(of: record.objectPath)
        let dimensions = RollupDimensions(
            title: title, version: version, rendition: media?.track.name ?? "", country: record.country ?? "", edge: edge,
            cache: Self.cacheNames[Int(record.cache.rawValue)], statusClass: Self.statusClass(record.status))
        let minute = Grain.minute.bucket(Self.floorSeconds(record.endMicroseconds))
        let row = delta.row(minute: minute, dimensions)
        let sent = Int64(clamping: record.bytesSent)
        do {
            var counters = delta.counters[row]
            counters.requests += 1
            counters.bytes &+= sent
            switch record.cache {
            case .hit: counters.hits += 1
            case .miss: counters.misses += 1
            default: break
            }
            if record.aborted { counters.aborted += 1 }
            counters.count(status: Int(record.status))
            if let timeline, let media, media.track.kind == timeline.primaryKind, record.deliveredWhole, media.segments.count == 1,
                media.segments[0].bytes == nil
            {
                counters.mediaRequests += 1
                counters.mediaBytes &+= sent
                counters.mediaMicroseconds += media.segments[0].interval.duration
            }
            delta.counters[row] = counters
        }
        guard let id = record.sessionID, !title.isEmpty, !version.isEmpty else { return }
        // A session plays one package (its token is scoped to it): records of another are counted above only.
        if let known = sessions[id], known.titleID != title || known.packageVersion != version { return }
        // Changed in place in the dictionary: no copy of its coverage.
        sessions[id, default: ViewSession(id: id, titleID: title, packageVersion: version, country: record.country ?? "", edge: edge)].apply(
            record, cmcd: record.cmcd.isEmpty ? nil : CMCD(record.cmcd), timeline: timeline, media: media, minute: minute, row: row, delta: &delta)
        changedSessions.insert(id)
    }

    static let cacheNames = ["none", "hit", "miss"]

    static func statusClass(_ status: UInt16) -> String {
        switch status {
        case 100..<200: "1xx"
        case 200..<300: "2xx"
        case 300..<400: "3xx"
        case 400..<500: "4xx"
        case 500..<600: "5xx"
        default: "other"
        }
    }

    static func floorSeconds(_ microseconds: Int64) -> Int64 {
        microseconds >= 0 ? microseconds / 1_000_000 : (microseconds - 999_999) / 1_000_000
    }
}

extension DeliveryRecord {
    /// All of the object went out: a 200, or a 206 whose range was the whole object (ffmpeg asks
    /// `Range: bytes=0-` for everything), not cut short.
    var deliveredWhole: Bool {
        guard !aborted else { return false }
        if status == 200 { return true }
        return status == 206 && (range?.lowerBound ?? 0) == 0 && bytesSent == objectSize
    }
}
