import Foundation
import Glibc

/// Where packaged titles live: a folder on disk (the embedded default) or an S3 bucket. Keys are
/// `/`-separated relative paths (`titles/<id>/<version>/master.m3u8`).
public protocol ObjectStore: Sendable {
    /// Stores `bytes` under `key`, replacing any object there. Readers see the old object or the
    /// new one, never a part.
    func put(_ key: ObjectKey, bytes: [UInt8], contentType: String?) async throws
    /// Stores the file at `path` (S3: multipart upload when it is large).
    func put(_ key: ObjectKey, file path: String, contentType: String?) async throws
    /// The object's bytes, or the `range` of them (inclusive byte offsets, as HTTP writes them).
    func get(_ key: ObjectKey, range: ClosedRange<Int>?) async throws -> [UInt8]
    /// Streams the whole object into a new file at `path` (a temporary file beside it, renamed into
    /// place once complete, so `path` never holds a part), without holding it in memory. The file's
    /// modification time is the object's, set before the rename (so an ETag made from it is stable).
    /// Throws `StoreError.notFound` when there is no such object.
    @discardableResult
    func download(_ key: ObjectKey, toFile path: String) async throws -> ObjectInfo
    /// Size and modification time, or nil when there is no such object.
    func head(_ key: ObjectKey) async throws -> ObjectInfo?
    /// Every object whose key starts with `prefix`, in key order.
    func list(prefix: String) async throws -> [ObjectInfo]
    /// Removes the object; removing a missing object is not an error.
    func delete(_ key: ObjectKey) async throws
}

extension ObjectStore {
    public func get(_ key: ObjectKey) async throws -> [UInt8] { try await get(key, range: nil) }
}

/// A file being written beside its final path (as `.incoming-<random>` in the same folder, a name
/// store listings skip), flushed and renamed into place by `commit`, removed by `abandon`: a
/// reader sees the whole old file or the whole new one, never a part.
struct PartialFile {
    let path: String
    let temporary: String
    let fd: Int32

    init(finalPath path: String) throws {
        self.path = path
        let folder = path.lastIndex(of: "/").map { String(path[...$0]) } ?? ""
        temporary = folder + ".incoming-\(UInt64.random(in: 0...UInt64.max))"
        fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError.backend("cannot create \(temporary): \(String(cString: strerror(errno)))") }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var written = 0
        while written < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + written, bytes.count - written)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw StoreError.backend("write failed for \(path): \(String(cString: strerror(errno)))") }
            written += n
        }
    }

    /// Appends everything `source` holds from its current offset to its end.
    func copy(from source: Int32, named name: String) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress!, $0.count) }
            if n == 0 { return }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw StoreError.backend("read failed for \(name): \(String(cString: strerror(errno)))") }
            try buffer.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }

    /// Flushes, gives the file `modified` as its modification time when there is one, and
    /// renames it over `path`.
    func commit(modified: Date? = nil) throws {
        if let modified {
            let seconds = modified.timeIntervalSince1970
            let whole = seconds.rounded(.down)
            var times = [timespec](
                repeating: timespec(tv_sec: Int(whole), tv_nsec: Int((seconds - whole) * 1e9)), count: 2)
            _ = futimens(fd, &times)
        }
        guard fsync(fd) == 0 else { throw StoreError.backend("fsync failed for \(path): \(String(cString: strerror(errno)))") }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw StoreError.backend("cannot rename into \(path): \(reason)")
        }
    }

    func abandon() {
        close(fd)
        unlink(temporary)
    }

    /// Runs `body` on a new partial file for `path` and commits it; nothing is left on failure.
    static func writing(_ path: String, modified: Date? = nil, _ body: (PartialFile) async throws -> Void) async throws {
        let file = try PartialFile(finalPath: path)
        do {
            try await body(file)
            try file.commit(modified: modified)
        } catch {
            file.abandon()
            throw error
        }
    }
}

public struct ObjectInfo: Sendable, Equatable {
    public let key: String
    public let size: Int
    public let modified: Date?
    public init(key: String, size: Int, modified: Date?) {
        self.key = key
        self.size = size
        self.modified = modified
    }
}

/// A validated object key: 1 to 1024 bytes, relative, no empty, `.` or `..` segments, no
/// backslash or control characters. Both backends map keys to paths, so a key that could climb
/// out of the store is refused here, once.
public struct ObjectKey: Sendable, Hashable, CustomStringConvertible {
    public let value: String

    public init(_ value: String) throws(StoreError) {
        let bytes = Array(value.utf8)
        guard (1...1024).contains(bytes.count) else { throw .invalidKey(value, "must be 1 to 1024 bytes") }
        guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\\") }) else {
            throw .invalidKey(value, "must not contain control characters or backslashes")
        }
        for segment in value.split(separator: "/", omittingEmptySubsequences: false) {
            guard !segment.isEmpty, segment != ".", segment != ".." else {
                throw .invalidKey(value, "must be a relative path without empty, '.' or '..' segments")
            }
        }
        self.value = value
    }

    public var description: String { value }
}

public enum StoreError: Error, CustomStringConvertible, Sendable {
    case invalidKey(String, String)
    case notFound(String)
    case invalidRange(String)
    /// The backend refused or failed: its status and message.
    case backend(String)

    public var description: String {
        switch self {
        case .invalidKey(let key, let reason): "object key \(key.debugDescription) \(reason)"
        case .notFound(let key): "no object \(key)"
        case .invalidRange(let reason): "invalid range: \(reason)"
        case .backend(let message): message
        }
    }
}
