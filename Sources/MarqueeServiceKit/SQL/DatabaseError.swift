/// What went wrong in the SQL layer, in terms a service can map to a status: a uniqueness
/// conflict becomes 409, everything else is the server's problem (500 without details to the
/// client, the full reason to the log).
public enum DatabaseError: Error, CustomStringConvertible, Sendable {
    /// A UNIQUE or PRIMARY KEY constraint refused the write. `constraint` names the index or the
    /// column list when the engine says which.
    case uniqueViolation(constraint: String)
    /// A row did not have the column or type the code expected.
    case column(String, String)
    /// The database URL cannot be used.
    case configuration(String)
    /// Applied migrations disagree with the code (a migration was edited after it ran, or the
    /// database is newer than this binary).
    case migration(String)
    /// The engine's own error, with its message.
    case engine(String)

    public var description: String {
        switch self {
        case .uniqueViolation(let constraint): "unique constraint violated: \(constraint)"
        case .column(let column, let reason): "column \(column): \(reason)"
        case .configuration(let reason): "database: \(reason)"
        case .migration(let reason): "migration: \(reason)"
        case .engine(let message): message
        }
    }
}
