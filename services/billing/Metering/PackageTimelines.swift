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
        var files: [String: String] = [:]
        if let master = try await text(folder + "master.m3u8") {
            files["master.m3u8"] = master
            for path in Self.references(in: master) where files[path] == nil {
                if let playlist = try await text(folder + path) { files[path] = playlist }
            }
        } else if let manifest = try await text(folder + "manifest.mpd") {
            files["manifest.mpd"] = manifest
        } else {
            return nil
        }
        let timeline = try PackageTimeline(files: files)
        cache.withLockedValue { $0[name] = timeline }
        return timeline
    }

    func text(_ key: String) async throws -> String? {
        do {
            return String(decoding: try await store.get(try ObjectKey(key)), as: UTF8.self)
        } catch StoreError.notFound(_) {
            return nil
        }
    }

    /// The playlists a master playlist names: URI lines and `URI="..."` attributes, relative
    /// paths inside the package only.
    static func references(in master: String) -> [String] {
        var paths: [String] = []
        for raw in master.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if !line.hasPrefix("#") {
                paths.append(line)
            } else if let range = line.range(of: "URI=\"") {
                let rest = line[range.upperBound...]
                if let end = rest.firstIndex(of: "\"") { paths.append(String(rest[..<end])) }
            }
        }
        return paths.filter { path in
            path.hasSuffix(".m3u8") && !path.hasPrefix("/") && !path.contains("://") && !path.split(separator: "/").contains("..")
        }
    }

    static func isSafe(_ part: String) -> Bool {
        (1...128).contains(part.utf8.count) && !part.hasPrefix(".")
            && part.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
    }
}
