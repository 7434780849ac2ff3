import Glibc

/// What `stat` says about a file, enough to notice that it was replaced (new inode after a
/// rename) or rewritten (size or modification time changed).
struct FileIdentity: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int

    /// The identity of the file at `path` now.
    static func of(path: String) throws(GeoError) -> FileIdentity {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw .statFailed(path: path, reason: String(cString: strerror(errno)))
        }
        return FileIdentity(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modifiedSeconds: Int(info.st_mtim.tv_sec), modifiedNanoseconds: Int(info.st_mtim.tv_nsec))
    }
}
