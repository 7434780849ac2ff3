import MarqueeServiceKit

/// Where a job is in its life: `queued` → `running` (leased by one worker) → `succeeded` or
/// `failed`; a retryable failure or a lost worker puts it back to `queued`/reclaimable.
public enum IngestJobStatus: String, Codable, Sendable, CaseIterable {
    case queued
    case running
    case succeeded
    case failed
}

/// One row of `ingest_jobs`: a source to turn into a package for a title.
public struct IngestJob: Sendable, Equatable {
    public let id: String
    public let titleID: String
    /// A file path on the ingest nodes' shared data folder, or an object store key.
    public let source: String
    /// The account whose upload made the job (nil for jobs enqueued directly); only they and
    /// admins see it.
    public let createdBy: String?
    public var status: IngestJobStatus
    public var attempts: Int
    public var maxAttempts: Int
    public var leaseOwner: String?
    public var leaseExpiresAt: Int64?
    public var progressPercent: Double
    public var framesPerSecond: Double?
    public var etaSeconds: Int?
    public var error: String?
    public var packageVersion: String?
    public var createdAt: Int64
    public var updatedAt: Int64

    static let columns = """
        id, title_id, source, status, attempts, max_attempts, lease_owner, lease_expires_at, progress_percent, \
        frames_per_second, eta_seconds, error, package_version, created_at, updated_at, created_by
        """

    init(_ row: SQLRow) throws {
        id = try row.string("id")
        titleID = try row.string("title_id")
        source = try row.string("source")
        createdBy = row.optionalString("created_by")
        let statusText = try row.string("status")
        guard let status = IngestJobStatus(rawValue: statusText) else { throw DatabaseError.column("status", "unknown status \(statusText)") }
        self.status = status
        attempts = Int(try row.int("attempts"))
        maxAttempts = Int(try row.int("max_attempts"))
        leaseOwner = row.optionalString("lease_owner")
        leaseExpiresAt = row.optionalInt("lease_expires_at")
        progressPercent = Self.double(row["progress_percent"]) ?? 0
        framesPerSecond = Self.double(row["frames_per_second"])
        etaSeconds = row.optionalInt("eta_seconds").map(Int.init)
        error = row.optionalString("error")
        packageVersion = row.optionalString("package_version")
        createdAt = try row.int("created_at")
        updatedAt = try row.int("updated_at")
    }

    static func double(_ value: SQLValue) -> Double? {
        switch value {
        case .real(let v): v
        case .integer(let v): Double(v)
        case .text(let s): Double(s)
        default: nil
        }
    }

    /// The JSON the API answers with (the source path stays internal).
    public var view: View {
        View(
            id: id, title_id: titleID, status: status.rawValue, attempts: attempts, max_attempts: maxAttempts,
            progress_percent: progressPercent, frames_per_second: framesPerSecond, eta_seconds: etaSeconds, error: error,
            package_version: packageVersion, created_at: rfc3339(milliseconds: createdAt), updated_at: rfc3339(milliseconds: updatedAt))
    }

    public struct View: Codable, Sendable {
        public let id: String
        public let title_id: String
        public let status: String
        public let attempts: Int
        public let max_attempts: Int
        public let progress_percent: Double
        public let frames_per_second: Double?
        public let eta_seconds: Int?
        public let error: String?
        public let package_version: String?
        public let created_at: String
        public let updated_at: String

        // Nulls are written, not omitted, so clients see every field.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(title_id, forKey: .title_id)
            try c.encode(status, forKey: .status)
            try c.encode(attempts, forKey: .attempts)
            try c.encode(max_attempts, forKey: .max_attempts)
            try c.encode(progress_percent, forKey: .progress_percent)
            try c.encode(frames_per_second, forKey: .frames_per_second)
            try c.encode(eta_seconds, forKey: .eta_seconds)
            try c.encode(error, forKey: .error)
            try c.encode(package_version, forKey: .package_version)
            try c.encode(created_at, forKey: .created_at)
            try c.encode(updated_at, forKey: .updated_at)
        }
    }
}

/// What a worker reports with each heartbeat.
public struct JobProgress: Sendable, Equatable {
    /// 0...100.
    public var percent: Double
    public var framesPerSecond: Double?
    public var etaSeconds: Int?

    public init(percent: Double, framesPerSecond: Double? = nil, etaSeconds: Int? = nil) {
        self.percent = min(100, max(0, percent))
        self.framesPerSecond = framesPerSecond
        self.etaSeconds = etaSeconds
    }
}
