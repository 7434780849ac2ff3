// STAND-IN, deleted when `git merge main` brings the real ones: the pure metering core
// (PackageTimeline, MediaInterval, SessionCoverage), with exactly the signatures the lead engineer
// announced, and the least behaviour billing's tests need (HLS media playlists only; coverage as
// a union of delivered intervals).
import Foundation
import MarqueeBus

public struct MediaInterval: Sendable, Hashable, Codable {
    public var start: Int64
    public var end: Int64
    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }
}

/// Stand-in: HLS only. Each media playlist's `#EXTINF` durations, in order, give its segments'
/// intervals; segment paths are relative to the package.
public struct PackageTimeline: Sendable {
    var intervals: [String: MediaInterval] = [:]

    public init(files: [String: String]) throws {
        for (path, text) in files where path.hasSuffix(".m3u8") {
            let folder = path.contains("/") ? String(path[...path.lastIndex(of: "/")!]) : ""
            var clock: Int64 = 0
            var pending: Int64?
            for raw in text.split(whereSeparator: \.isNewline) {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("#EXTINF:") {
                    let value = line.dropFirst(8).split(separator: ",").first.map(String.init) ?? ""
                    pending = Double(value).map { Int64(($0 * 1_000_000).rounded()) }
                } else if !line.isEmpty, !line.hasPrefix("#"), let duration = pending {
                    intervals[folder + line] = MediaInterval(start: clock, end: clock + duration)
                    clock += duration
                    pending = nil
                }
            }
        }
    }

    public func interval(of objectPath: String) -> MediaInterval? { intervals[objectPath] }
}

/// Stand-in: the union of the intervals of successful deliveries.
public struct SessionCoverage: Sendable, Codable, Equatable {
    var spans: [MediaInterval] = []

    public init() {}

    public mutating func apply(_ record: DeliveryRecord, interval: MediaInterval) -> Bool {
        guard (200..<300).contains(Int(record.status)), !record.aborted, interval.end > interval.start else { return false }
        let before = coveredMicroseconds
        var merged: [MediaInterval] = []
        var current = interval
        for span in spans {
            if span.end < current.start || span.start > current.end {
                merged.append(span)
            } else {
                current = MediaInterval(start: min(span.start, current.start), end: max(span.end, current.end))
            }
        }
        merged.append(current)
        spans = merged.sorted { $0.start < $1.start }
        return coveredMicroseconds != before
    }

    public var coveredMicroseconds: Int64 { spans.reduce(0) { $0 + ($1.end - $1.start) } }
    public var billedMinutes: Int64 { (coveredMicroseconds + 59_999_999) / 60_000_000 }
}
