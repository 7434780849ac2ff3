/// What to remove from a read-through cache: one object, or every object under a prefix (a
/// title, a package version). Paths are the cache's keys, the served path without its token;
/// a leading slash is accepted and dropped.
public enum PurgeRequest: Sendable, Equatable {
    case path(String)
    case prefix(String)

    /// The key or key prefix, without a leading slash; nil (with why) when it could not name a
    /// cached object. The prefix `/` (empty once normalised) names everything.
    func normalised() -> Result<String, GatewayError> {
        switch self {
        case .path(let path):
            let key = path.hasPrefix("/") ? String(path.dropFirst()) : path
            let valid = Array(key.utf8).withUnsafeBytes { ReadThroughCache.isValidKey($0) }
            return valid ? .success(key) : .failure(.invalid("path", "\(path.debugDescription) is not a cacheable path"))
        case .prefix(let prefix):
            guard !prefix.isEmpty else { return .failure(.invalid("prefix", "must not be empty (use prefix=/ to purge everything)")) }
            let key = prefix.hasPrefix("/") ? String(prefix.dropFirst()) : prefix
            // A prefix is a path or its beginning (a folder ends with `/`): the characters a key may hold.
            let checked = key.hasSuffix("/") ? key.dropLast() : Substring(key)
            let valid = key.isEmpty || Array(checked.utf8).withUnsafeBytes { ReadThroughCache.isValidKey($0) }
            return valid ? .success(key) : .failure(.invalid("prefix", "\(prefix.debugDescription) is not a cacheable path prefix"))
        }
    }
}
