import Foundation
import MarqueeStore
import NIOConcurrencyHelpers

/// Each package version's timeline, read once from the package's own playlists in the store
/// (`titles/<title>/<version>/master.m3u8` and the media playlists it names, or `manifest.mpd`)
/// and kept: a package version never changes once published.
public final class PackageTimelines: Sendable {
    let store: any ObjectStore
    private let cache = NIOLockedValueBox<[String: PackageTimeline]>([:])

    public init(store: any ObjectStore) { self.store = store }

    /// The timeline, or nil when the store has no playlist for the package (its records cannot
    /// be metered). Store errors other than a missing object throw, so the batch is retried.
    public func timeline(title: String, version: String) async throws -> PackageTimeline? {
        let name = "\(title)/\(version)"
        if let known = cache.withLockedValue({ $0[name] }) { return known }
        guard Self.isSafe(title), Self.isSafe(version) else { return nil }
        let folder = "titles/\(title)/\(version)/"
        let timeline: PackageTimeline
        do {
            timeline = try await PackageTimeline.load { path in try await self.text(folder + path) }
        } catch is PackageTimeline.Failure {
            return nil  // no playlists, or ones that cannot be used: nothing of it can be metered
        }
        cache.withLockedValue { $0[name] = timeline }
        return timeline
    }

    func text(_ key: String) async throws -> String? {
        guard let objectKey = try? ObjectKey(key) else { return nil }  // a path no store may hold
        do {
            return String(decoding: try await store.get(objectKey), as: UTF8.self)
        } catch StoreError.notFound(_) {
            return nil
        }
    }

    static func isSafe(_ part: String) -> Bool {
        (1...128).contains(part.utf8.count) && !part.hasPrefix(".")
            && part.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
    }
}
