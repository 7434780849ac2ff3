import Foundation

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
