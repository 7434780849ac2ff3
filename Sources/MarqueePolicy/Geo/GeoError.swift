/// Why a geolocation database could not be opened or reloaded. The message names the file and
/// the cause, since it ends up in the gateway's log when an operator ships a bad file.
public enum GeoError: Error, Sendable, Hashable, CustomStringConvertible {
    /// libmaxminddb refused the file: missing, unreadable, or not a MaxMind DB.
    case openFailed(path: String, reason: String)
    /// The file's identity (stat) could not be read, so a change could not be detected.
    case statFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .openFailed(let path, let reason): "cannot open geo database \(path): \(reason)"
        case .statFailed(let path, let reason): "cannot stat geo database \(path): \(reason)"
        }
    }
}
