import Foundation
import Glibc

/// Objects as files under a root folder. A put writes a temporary file in the same folder,
/// flushes it, and renames it over the key, so a reader (the origin) sees the whole old file or
/// the whole new one; temporary files start with `.incoming-` and are never listed.
public struct FileSystemStore: ObjectStore {
    public let root: URL

    public init(root: String) throws {
        self.root = URL(fileURLWithPath: root).standardizedFileURL
        try FileManager.default.createDirectory(at: self.root, withIntermediateDirectories: true)
    }

    func url(_ key: ObjectKey) -> URL { root.appendingPathComponent(key.value) }

    public func put(_ key: ObjectKey, bytes: [UInt8], contentType: String?) async throws {
        try await write(key) { file in try bytes.withUnsafeBytes { try file.write($0) } }
    }

    public func put(_ key: ObjectKey, file path: String, contentType: String?) async throws {
        let source = open(path, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else { throw StoreError.backend("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(source) }
        try await write(key) { file in try file.copy(from: source, named: path) }
    }

    /// A new file for `key` (its folders made), written whole, then renamed over the key.
    private func write(_ key: ObjectKey, _ body: (PartialFile) throws -> Void) async throws {
        let target = url(key)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try await PartialFile.writing(target.path) { try body($0) }
    }

    public func get(_ key: ObjectKey, range: ClosedRange<Int>?) async throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: url(key).path) else { throw StoreError.notFound(key.value) }
        guard let range else { return [UInt8](data) }
        guard range.lowerBound >= 0, range.lowerBound < data.count else {
            throw StoreError.invalidRange("\(range) is outside the \(data.count)-byte object \(key)")
        }
        return [UInt8](data[range.lowerBound...min(range.upperBound, data.count - 1)])
    }

    public func download(_ key: ObjectKey, toFile path: String) async throws -> ObjectInfo {
        let source = open(url(key).path, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw StoreError.notFound(key.value) }
            throw StoreError.backend("cannot open \(key): \(String(cString: strerror(errno)))")
        }
        defer { close(source) }
        var st = stat()
        guard fstat(source, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw StoreError.notFound(key.value) }
        let modified = Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec))
        try await PartialFile.writing(path, modified: modified) { file in try file.copy(from: source, named: key.value) }
        return ObjectInfo(key: key.value, size: Int(st.st_size), modified: modified)
    }

    public func head(_ key: ObjectKey) async throws -> ObjectInfo? {
        var st = stat()
        guard stat(url(key).path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return ObjectInfo(key: key.value, size: Int(st.st_size), modified: Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec)))
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        var found: [ObjectInfo] = []
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey, .fileSizeKey]) else {
            return []
        }
        let rootPath = root.path.hasSuffix("/") ? root.path : root.path + "/"
        for case let url as URL in walker {
            guard url.lastPathComponent.hasPrefix(".incoming-") == false else { continue }
            let values = try url.resourceValues(forKeys: [.isRegularFileKey, .fileSizeKey, .contentModificationDateKey])
            guard values.isRegularFile == true else { continue }
            let key = String(url.standardizedFileURL.path.dropFirst(rootPath.count))
            if key.hasPrefix(prefix) { found.append(ObjectInfo(key: key, size: values.fileSize ?? 0, modified: values.contentModificationDate)) }
        }
        return found.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
    }

    public func delete(_ key: ObjectKey) async throws {
        if unlink(url(key).path) != 0 && errno != ENOENT {
            throw StoreError.backend("cannot delete \(key): \(String(cString: strerror(errno)))")
        }
    }
}
