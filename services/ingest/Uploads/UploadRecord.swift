import MarqueeServiceKit

/// One row of `uploads`: a tus upload in progress or finished.
struct UploadRecord: Sendable {
    let id: String
    let titleID: String
    let filename: String?
    let length: Int64
    var offset: Int64
    let createdBy: String
    let createdAt: Int64
    var completedAt: Int64?
    var jobID: String?
    /// When an unfinished upload expires (nil: a row from before expiry, given one by the sweep).
    var expiresAt: Int64?

    static let columns = "id, title_id, filename, upload_length, upload_offset, created_by, created_at, completed_at, job_id, expires_at"

    init(id: String, titleID: String, filename: String?, length: Int64, createdBy: String, createdAt: Int64, expiresAt: Int64?) {
        self.id = id
        self.titleID = titleID
        self.filename = filename
        self.length = length
        offset = 0
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }

    init(_ row: SQLRow) throws {
        id = try row.string("id")
        titleID = try row.string("title_id")
        filename = row.optionalString("filename")
        length = try row.int("upload_length")
        offset = try row.int("upload_offset")
        createdBy = try row.string("created_by")
        createdAt = try row.int("created_at")
        completedAt = row.optionalInt("completed_at")
        jobID = row.optionalString("job_id")
        expiresAt = row.optionalInt("expires_at")
    }

    /// Every byte has arrived (the completion may still be pending if the server stopped in between).
    var isFull: Bool { offset == length }

    /// Unfinished and past its expiry.
    func isExpired(at now: Int64) -> Bool { completedAt == nil && (expiresAt.map { $0 <= now } ?? false) }
}
