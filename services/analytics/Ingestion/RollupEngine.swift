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
        var fresh: [(record: DeliveryRecord, edge: String)] = []
        fresh.reserveCapacity(records.count)
        for (index, record) in records.enumerated() {
            guard index < origins.count else {
                fresh.append((record, ""))
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
            fresh.append((record, origin.gateway))
        }
        // In delivery order: a session's switches and stalls follow the order its segments went out.
        fresh.sort { $0.record.endMicroseconds < $1.record.endMicroseconds }
        for (record, edge) in fresh { apply(record, edge: edge, timelines: timelines) }
    }

    private mutating func apply(_ record: DeliveryRecord, edge: String, timelines: [String: PackageTimeline]) {
        newestRecord = max(newestRecord ?? .min, record.endMicroseconds)
        let title = record.titleID ?? ""
        let version = record.packageVersion ?? ""
        let timeline = title.isEmpty ? nil : timelines["\(title)/\(version)"]
        let track = timeline?.track(of: record.objectPath)
        var dimensions = RollupDimensions(
            title: title, version: version, rendition: track?.name ?? "", country: record.country ?? "", edge: edge,
            cache: Self.cacheNames[Int(record.cache.rawValue)] ?? "none", statusClass: Self.statusClass(record.status))
        if record.status >= 600 { dimensions.statusClass = "other" }
        let minute = Grain.minute.bucket(Self.floorSeconds(record.endMicroseconds))
        let sent = Int64(clamping: record.bytesSent)
        var mediaMicroseconds: Int64?
        if let timeline, let track, track.kind == timeline.primaryKind, record.deliveredWhole {
            let segments = timeline.segments(of: record.objectPath)
            if segments.count == 1, segments[0].bytes == nil { mediaMicroseconds = segments[0].interval.duration }
        }
        delta.add(minute: minute, dimensions) { row in
            row.requests += 1
            row.bytes &+= sent
            switch record.cache {
            case .hit: row.hits += 1
            case .miss: row.misses += 1
            default: break
            }
            if record.aborted { row.aborted += 1 }
            row.count(status: Int(record.status))
            if let mediaMicroseconds {
                row.mediaRequests += 1
                row.mediaBytes &+= sent
                row.mediaMicroseconds += mediaMicroseconds
            }
        }
        guard let id = record.sessionID, !title.isEmpty, !version.isEmpty else { return }
        var session = sessions[id] ?? ViewSession(id: id, titleID: title, packageVersion: version, country: record.country ?? "", edge: edge)
        // A session plays one package (its token is scoped to it): records of another are counted above only.
        guard session.titleID == title, session.packageVersion == version else { return }
        session.apply(record, cmcd: record.cmcd.isEmpty ? nil : CMCD(record.cmcd), timeline: timeline, dimensions: dimensions, minute: minute, delta: &delta)
        sessions[id] = session
        changedSessions.insert(id)
    }

    static let cacheNames = [0: "none", 1: "hit", 2: "miss"]

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
