import Foundation

/// Copies a finished package folder into a store under `titles/<title>/<version>/`, manifests
/// last: players and the origin find `master.m3u8` / `manifest.mpd` only once every segment they
/// name is already there, so a half-published package is never visible.
public enum PackagePublisher {
    /// File names written after everything else, in this order.
    public static let manifests = ["manifest.mpd", "master.m3u8"]

    /// Uploads every regular file below `folder` (hidden files skipped) and returns the keys.
    @discardableResult
    public static func publish(folder: String, to store: any ObjectStore, prefix: String) async throws -> [String] {
        let root = URL(fileURLWithPath: folder).standardizedFileURL
        var files: [String] = []
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles]) else {
            throw StoreError.backend("cannot read \(folder)")
        }
        for case let url as URL in walker where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
            files.append(String(url.standardizedFileURL.path.dropFirst(root.path.count + 1)))
        }
        let rank = { (file: String) -> Int in manifests.firstIndex(of: file).map { $0 + 1 } ?? 0 }
        files.sort { (rank($0), $0) < (rank($1), $1) }
        var keys: [String] = []
        for file in files {
            let key = try ObjectKey(prefix.isEmpty ? file : "\(prefix)/\(file)")
            try await store.put(key, file: root.appendingPathComponent(file).path, contentType: contentType(of: file))
            keys.append(key.value)
        }
        return keys
    }

    static func contentType(of file: String) -> String {
        switch (file as NSString).pathExtension.lowercased() {
        case "m3u8": "application/vnd.apple.mpegurl"
        case "mpd": "application/dash+xml"
        case "m4s", "mp4": "video/mp4"
        case "vtt": "text/vtt"
        case "jpg", "jpeg": "image/jpeg"
        case "png": "image/png"
        default: "application/octet-stream"
        }
    }
}
