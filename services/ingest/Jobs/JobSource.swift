import MarqueeStore

/// Where a job's source is. Sources handed to the object store (`sources/<upload id>`) can be
/// fetched by a worker on any machine; a plain file path is only readable on the node that has
/// that file (single-machine set-ups, and jobs queued by hand).
///
/// Stored in `ingest_jobs.source` as text: `store:<key>` for an object, the path otherwise.
public enum JobSource: Sendable, Equatable {
    case file(String)
    case object(ObjectKey)

    static let objectPrefix = "store:"

    /// The key an upload's source gets in the store.
    static func uploadKey(_ uploadID: String) throws -> ObjectKey { try ObjectKey("sources/\(uploadID)") }

    /// Reads the column; text that names a bad key is kept as a path (it then fails as a missing file).
    public init(column: String) {
        if column.hasPrefix(Self.objectPrefix), let key = try? ObjectKey(String(column.dropFirst(Self.objectPrefix.count))) {
            self = .object(key)
        } else {
            self = .file(column)
        }
    }

    public var column: String {
        switch self {
        case .file(let path): path
        case .object(let key): Self.objectPrefix + key.value
        }
    }
}
