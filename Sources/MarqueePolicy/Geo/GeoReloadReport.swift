/// What `GeoDatabaseHandle.reloadIfChanged()` did, for the gateway's log and metrics.
public struct GeoReloadReport: Hashable, Sendable {
    /// What happened to one file.
    public enum Outcome: Hashable, Sendable {
        /// The file is the one already loaded (or another reload was running).
        case unchanged
        /// The file changed and the new database is now current.
        case reloaded
        /// The file changed but could not be opened; the previous database stays current.
        case failed(GeoError)
    }

    /// The main (City/Country) database.
    public var database: Outcome
    /// The Anonymous IP database; nil when the handle has none.
    public var anonymousDatabase: Outcome?
    /// The main database's file.
    public var databasePath: String
    /// The Anonymous IP database's file; nil when the handle has none.
    public var anonymousDatabasePath: String?

    /// A report; `reloadIfChanged` builds these.
    public init(database: Outcome, anonymousDatabase: Outcome?, databasePath: String, anonymousDatabasePath: String?) {
        self.database = database
        self.anonymousDatabase = anonymousDatabase
        self.databasePath = databasePath
        self.anonymousDatabasePath = anonymousDatabasePath
    }

    /// Whether any database was replaced.
    public var didReload: Bool { database == .reloaded || anonymousDatabase == .reloaded }

    /// The errors of failed reloads (each names its file); empty when nothing failed.
    public var errors: [GeoError] {
        [database, anonymousDatabase].compactMap { outcome in
            if case .failed(let error)? = outcome { return error }
            return nil
        }
    }

    /// One log line per file that was reloaded or failed to; empty when nothing changed.
    public var messages: [String] {
        var lines: [String] = []
        for (outcome, path) in [(database, databasePath), (anonymousDatabase, anonymousDatabasePath)] {
            switch outcome {
            case .reloaded?: lines.append("reloaded geo database \(path ?? "")")
            case .failed(let error)?: lines.append("\(error); keeping the loaded database")
            case .unchanged?, nil: break
            }
        }
        return lines
    }
}
