import Foundation
import HTTPTypes
import Hummingbird
import MarqueeHTTP
import MarqueeServiceKit
import MarqueeStore
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// tus 1.0 resumable uploads (core protocol, `creation`, `termination` and `expiration`) of
/// ingest sources.
///
/// Bytes go to `<folder>/<id>.part` as they arrive, never held whole in memory; the row in
/// `uploads` holds the offset the server vouches for. When the last byte lands the file becomes
/// `<folder>/<id>.source`, is copied to the object store as `sources/<id>` (when there is a
/// source store: workers on other machines fetch it from there), and one ingest job is enqueued in
/// the same database, exactly once even if the final PATCH is retried.
///
/// An unfinished upload expires `expiry` after its creation or its last PATCH that stored bytes
/// (`Upload-Expires` says when); requests for it then get 410 until `sweepExpired` removes it and
/// its files, 404 after. One publisher's unfinished uploads may declare at most
/// `maxBytesInFlightPerPublisher` bytes together, so nobody can fill the upload disk with
/// uploads they never finish.
struct ResumableUploads: Sendable {
    let database: any Database
    let folder: URL
    let maxUploadBytes: Int64
    let sourceStore: (any ObjectStore)?
    /// The catalog asked whether an upload's title exists (nil: not asked).
    let catalog: CatalogTitleLookup?
    let locks = UploadLocks()
    /// How long an unfinished upload lives after its last stored bytes, in ms.
    let expiry: Int64
    /// The quota on one publisher's unfinished Upload-Lengths; 0: none.
    let maxBytesInFlightPerPublisher: Int64

    init(
        database: any Database, folder: URL, maxUploadBytes: Int64, sourceStore: (any ObjectStore)?, catalogURL: String? = nil,
        expiry: Duration = .seconds(86400), maxBytesInFlightPerPublisher: Int64 = 0
    ) throws {
        self.database = database
        let (seconds, attoseconds) = expiry.components
        self.expiry = max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        self.maxBytesInFlightPerPublisher = maxBytesInFlightPerPublisher
        catalog = catalogURL.map(CatalogTitleLookup.init(catalogURL:))
        self.folder = folder
        self.maxUploadBytes = maxUploadBytes
        self.sourceStore = sourceStore
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func partPath(_ id: String) -> String { folder.appendingPathComponent("\(id).part").path }
    func sourcePath(_ id: String) -> String { folder.appendingPathComponent("\(id).source").path }

    func addRoutes(to group: RouterGroup<ServiceRequestContext>) {
        group.add(middleware: TusProtocolMiddleware())
        group.on("", method: .options) { _, _ in options() }
        group.on(":id", method: .options) { _, _ in options() }
        group.post("") { request, context in try await create(request, context) }
        group.head(":id") { _, context in try await status(context) }
        group.patch(":id") { request, context in try await append(request, context) }
        group.delete(":id") { _, context in try await terminate(context) }
    }

    // MARK: - Discovery and creation

    func options() -> Response {
        var headers = HTTPFields()
        headers[.tusVersion] = tusVersion
        headers[.tusExtension] = "creation,termination,expiration"
        headers[.tusMaxSize] = String(maxUploadBytes)
        return Response(status: .noContent, headers: headers)
    }

    func create(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let identity = try context.require(.publisher)
        if request.headers[.uploadDeferLength] != nil {
            throw ServiceError.badRequest("Upload-Defer-Length: this server does not offer creation-defer-length; send Upload-Length")
        }
        guard let lengthText = request.headers[.uploadLength] else {
            throw ServiceError.badRequest("Upload-Length: is required (the size of the source in bytes)")
        }
        guard let length = Self.byteCount(lengthText), length > 0 else {
            throw ServiceError.badRequest("Upload-Length: must be a positive integer number of bytes, not '\(lengthText.prefix(40))'")
        }
        guard length <= maxUploadBytes else {
            throw ServiceError(.contentTooLarge, "Upload-Length: \(length) bytes is over this server's limit of \(maxUploadBytes) bytes")
        }
        let metadata = try UploadMetadata(parsing: request.headers[.uploadMetadata])
        try await requireTitle(metadata.titleID, for: identity, authorization: request.headers[.authorization])
        let now = unixMilliseconds()
        let upload = UploadRecord(
            id: Identifier.make(), titleID: metadata.titleID, filename: metadata.filename, length: length,
            createdBy: identity.userID, createdAt: now, expiresAt: now + expiry)
        // The empty file first: a row never points at a file that cannot exist.
        guard FileManager.default.createFile(atPath: partPath(upload.id), contents: nil) else {
            throw ServiceError(.internalServerError, "the server cannot store uploads right now")
        }
        let quota = maxBytesInFlightPerPublisher
        do {
            try await database.transaction { tx in
                if quota > 0 { try await Self.requireRoom(for: upload, quota: quota, now: now, in: tx) }
                try await tx.execute(
                    """
                    INSERT INTO uploads (id, title_id, filename, upload_length, upload_offset, created_by, created_at, expires_at)
                    VALUES ($1, $2, $3, $4, 0, $5, $6, $7)
                    """, upload.id, upload.titleID, upload.filename, upload.length, upload.createdBy, upload.createdAt, upload.expiresAt)
            }
        } catch {
            unlink(partPath(upload.id))
            throw error
        }
        var headers = HTTPFields()
        headers[.location] = "/api/ingest/uploads/\(upload.id)"
        headers[.uploadOffset] = "0"
        Self.setExpires(upload, in: &headers)
        return Response(status: .created, headers: headers)
    }

    /// Refuses (413, naming the quota) an upload that would take its publisher's unfinished
    /// uploads past `quota` bytes. Creations by one publisher take turns here (a PostgreSQL
    /// advisory lock on the publisher; SQLite's write lock), so two at once cannot both fit in
    /// the same room. Expired uploads no longer count.
    static func requireRoom(for upload: UploadRecord, quota: Int64, now: Int64, in tx: any SQLExecutor) async throws {
        if tx.dialect == .postgres {
            try await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "marquee-ingest-uploads:" + upload.createdBy)
        }
        let row = try await tx.first(
            """
            SELECT CAST(COALESCE(SUM(upload_length), 0) AS BIGINT) AS in_flight FROM uploads
            WHERE created_by = $1 AND completed_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
            """, upload.createdBy, now)
        let inFlight = try row?.int("in_flight") ?? 0
        guard inFlight + upload.length <= quota else {
            throw ServiceError(
                .contentTooLarge,
                "Upload-Length: \(upload.length) bytes would bring your unfinished uploads to \(inFlight + upload.length) bytes, over this server's quota of \(quota) bytes in flight per publisher (ingest.max_bytes_in_flight_per_publisher); finish or terminate an upload first",
                fields: [.init(field: "Upload-Length", reason: "is over the quota of \(quota) bytes in flight per publisher (\(inFlight) in use)")])
        }
    }

    /// `Upload-Expires` (RFC 9110 IMF-fixdate) for an unfinished upload; a finished one never expires.
    static func setExpires(_ upload: UploadRecord, in headers: inout HTTPFields) {
        guard upload.completedAt == nil, !upload.isFull, let expiresAt = upload.expiresAt else { return }
        headers[.uploadExpires] = HTTPDate.string(expiresAt / 1000)
    }

    /// Refuses an upload for a title the uploader cannot see in the catalog (422), or that another
    /// publisher owns (403, as the catalog refuses them changing it), before a byte is taken, rather
    /// than after a transcode that would replace someone else's package.
    func requireTitle(_ titleID: String, for identity: Identity, authorization: String?) async throws {
        guard let catalog else { return }
        guard let body = try await catalog.titleJSON(titleID, authorization: authorization) else {
            throw ServiceError.invalid("title_id", "\(titleID) is not a title in the catalog; create the title first")
        }
        guard identity.role < .admin else { return }
        struct Owner: Decodable { let created_by: String? }
        guard let owner = try? JSONDecoder().decode(Owner.self, from: Data(body.readableBytesView)).created_by else {
            throw ServiceError(.badGateway, "the catalog did not say who owns title \(titleID)")
        }
        guard owner == identity.userID else {
            throw ServiceError.forbidden("title_id: title \(titleID) belongs to another publisher; upload to your own titles")
        }
    }

    /// A tus byte count: ASCII digits only (no sign, no spaces inside), fitting in 63 bits.
    static func byteCount(_ text: String) -> Int64? {
        guard (1...19).contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(text)
    }

    // MARK: - Offset, append, termination

    /// The caller's upload (its creator's, or any for an admin); 404 otherwise, so ids do not leak.
    func requireUpload(_ context: ServiceRequestContext) async throws -> UploadRecord {
        let identity = try context.require(.publisher)
        let id = try context.parameters.require("id")
        guard Identifier.isValid(id), let row = try await database.first("SELECT \(UploadRecord.columns) FROM uploads WHERE id = $1", id) else {
            throw ServiceError.notFound("no upload \(id)")
        }
        let upload = try UploadRecord(row)
        guard upload.createdBy == identity.userID || identity.role >= .admin else { throw ServiceError.notFound("no upload \(id)") }
        if upload.isExpired(at: unixMilliseconds()), let expiresAt = upload.expiresAt {
            // tus expiration: 410 until the sweep removes it, 404 after.
            throw ServiceError(.gone, "upload \(id) expired at \(HTTPDate.string(expiresAt / 1000)) unfinished; start a new upload")
        }
        return upload
    }

    func status(_ context: ServiceRequestContext) async throws -> Response {
        let upload = try await requireUpload(context)
        var headers = HTTPFields()
        headers[.uploadOffset] = String(upload.offset)
        headers[.uploadLength] = String(upload.length)
        headers[.cacheControl] = "no-store"
        Self.setExpires(upload, in: &headers)
        return Response(status: .ok, headers: headers)
    }

    func append(_ request: Request, _ context: ServiceRequestContext) async throws -> Response {
        let contentType = request.headers[.contentType] ?? ""
        guard contentType.lowercased() == "application/offset+octet-stream" else {
            throw ServiceError(
                .unsupportedMediaType, "Content-Type: a PATCH must be application/offset+octet-stream, not '\(contentType.prefix(80))'")
        }
        guard let offset = request.headers[.uploadOffset].flatMap(Self.byteCount) else {
            throw ServiceError.badRequest("Upload-Offset: is required, a non-negative integer (ask HEAD for the current offset)")
        }
        var upload = try await requireUpload(context)
        guard offset == upload.offset else {
            throw ServiceError.conflict("Upload-Offset: \(offset) is not the upload's offset, \(upload.offset); resume from HEAD's Upload-Offset")
        }
        if let declared = request.headers[.contentLength].flatMap({ Int64($0) }), declared > upload.length - offset {
            throw ServiceError(.contentTooLarge, "the body (\(declared) bytes) goes past Upload-Length (\(upload.length)) from offset \(offset)")
        }
        let current = upload
        let expiresAt = unixMilliseconds() + expiry
        upload.offset = try await exclusively(upload.id, busy: "another PATCH is writing to upload \(upload.id); wait for it, then resume from HEAD's Upload-Offset") {
            if !current.isFull { return try await receive(request.body, into: current, expiresAt: expiresAt) }
            // A retried final PATCH: nothing more may arrive, but the completion must still happen.
            for try await chunk in request.body where chunk.readableBytes > 0 {
                throw ServiceError(.contentTooLarge, "upload \(current.id) already holds all \(current.length) bytes")
            }
            return current.offset
        }
        if upload.isFull { try await finish(upload) }
        var headers = HTTPFields()
        headers[.uploadOffset] = String(upload.offset)
        if upload.offset > current.offset { upload.expiresAt = expiresAt }
        Self.setExpires(upload, in: &headers)
        return Response(status: .noContent, headers: headers)
    }

    /// Streams `body` to the end of the upload's part file and records the new offset. Bytes a
    /// dropped connection did deliver are kept (the client resumes after them); a body that goes
    /// past Upload-Length is refused whole. Stored bytes push the expiry to `expiresAt`. Returns
    /// the new offset.
    func receive(_ body: RequestBody, into upload: UploadRecord, expiresAt: Int64) async throws -> Int64 {
        let path = partPath(upload.id)
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ServiceError(.internalServerError, "the server cannot write upload \(upload.id)") }
        defer { close(fd) }
        // The file may hold bytes past the recorded offset if the server stopped between writing
        // them and recording them; the database is the truth.
        guard ftruncate(fd, off_t(upload.offset)) == 0, lseek(fd, off_t(upload.offset), SEEK_SET) >= 0 else {
            throw ServiceError(.internalServerError, "the server cannot write upload \(upload.id)")
        }
        let room = upload.length - upload.offset
        var written: Int64 = 0
        do {
            for try await chunk in body {
                guard written + Int64(chunk.readableBytes) <= room else {
                    _ = ftruncate(fd, off_t(upload.offset))
                    throw ServiceError(.contentTooLarge, "the body goes past Upload-Length (\(upload.length)) from offset \(upload.offset)")
                }
                try Self.write(chunk, to: fd)
                written += Int64(chunk.readableBytes)
            }
        } catch let error as ServiceError {
            throw error
        } catch {
            // The connection broke: keep what arrived so the client can resume after it.
            try await record(upload, offset: upload.offset + written, expiresAt: expiresAt)
            throw error
        }
        try await record(upload, offset: upload.offset + written, expiresAt: expiresAt)
        return upload.offset + written
    }

    static func write(_ chunk: ByteBuffer, to fd: Int32) throws {
        try chunk.withUnsafeReadableBytes { bytes in
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ServiceError(.init(code: 507, reasonPhrase: "Insufficient Storage"), "the server could not store the upload (errno \(errno))")
                }
                done += n
            }
        }
    }

    func record(_ upload: UploadRecord, offset: Int64, expiresAt: Int64) async throws {
        guard offset != upload.offset else { return }
        try await database.execute(
            "UPDATE uploads SET upload_offset = $2, expires_at = $4 WHERE id = $1 AND upload_offset = $3", upload.id, offset, upload.offset, expiresAt)
    }

    /// Renames the full part file to the source, hands it to the source store, and enqueues its
    /// ingest job, once: the `completed_at IS NULL` guard in the same transaction as the job's
    /// insert makes a retried final PATCH (or a crash between the steps) harmless. The local copy
    /// is removed only once the job that points at the stored one is committed.
    func finish(_ upload: UploadRecord) async throws {
        let part = partPath(upload.id)
        let local = sourcePath(upload.id)
        if FileManager.default.fileExists(atPath: part) {
            guard rename(part, local) == 0 else { throw ServiceError(.internalServerError, "the server could not finish upload \(upload.id)") }
        }
        var stored = JobSource.file(local)
        if let sourceStore {
            let key = try JobSource.uploadKey(upload.id)
            if FileManager.default.fileExists(atPath: local) {
                do {
                    try await sourceStore.put(key, file: local, contentType: nil)
                } catch {
                    // Every byte is kept: the client's retried final PATCH (an empty body at the
                    // full offset) finishes the upload.
                    throw ServiceError(
                        .serviceUnavailable, "upload \(upload.id) is whole but could not be handed to the object store (\(error)); retry the final PATCH")
                }
            }
            stored = .object(key)
        }
        let source = stored
        try await database.transaction { tx in
            let claimed = try await tx.query(
                "UPDATE uploads SET completed_at = $2 WHERE id = $1 AND completed_at IS NULL RETURNING id", upload.id, unixMilliseconds())
            guard !claimed.isEmpty else { return }
            let job = try await IngestJobs.enqueue(
                titleID: upload.titleID, source: source.column, createdBy: upload.createdBy, at: unixMilliseconds(), in: tx)
            try await tx.execute("UPDATE uploads SET job_id = $2 WHERE id = $1", upload.id, job.id)
        }
        if sourceStore != nil { unlink(local) }
    }

    func terminate(_ context: ServiceRequestContext) async throws -> Response {
        let upload = try await requireUpload(context)
        guard upload.completedAt == nil else {
            throw ServiceError.conflict("upload \(upload.id) is complete and its ingest job \(upload.jobID ?? "") owns the source")
        }
        try await exclusively(upload.id, busy: "a PATCH is writing to upload \(upload.id); terminate it after the PATCH ends") {
            try await database.execute("DELETE FROM uploads WHERE id = $1 AND completed_at IS NULL", upload.id)
            unlink(partPath(upload.id))
        }
        return Response(status: .noContent)
    }

    // MARK: - Expiry

    /// Removes the unfinished uploads whose expiry has passed: their rows, `.part` files and any
    /// whole `.source` left by a failed hand-over. An upload a PATCH of this process is writing to
    /// is left for the next sweep. Rows from before expiry existed get a full expiry from now.
    /// Returns how many uploads it removed.
    @discardableResult
    func sweepExpired(now: Int64 = unixMilliseconds()) async throws -> Int {
        try await database.execute("UPDATE uploads SET expires_at = $1 WHERE expires_at IS NULL AND completed_at IS NULL", now + expiry)
        let expired = try await database.query(
            "SELECT id FROM uploads WHERE completed_at IS NULL AND expires_at <= $1 ORDER BY expires_at LIMIT 1000", now
        ).map { try $0.string("id") }
        var removed = 0
        for id in expired {
            guard await locks.acquire(id) else { continue }
            do {
                let deleted = try await database.query(
                    "DELETE FROM uploads WHERE id = $1 AND completed_at IS NULL AND expires_at <= $2 RETURNING id", id, now)
                if !deleted.isEmpty {
                    unlink(partPath(id))
                    unlink(sourcePath(id))
                    removed += 1
                }
                await locks.release(id)
            } catch {
                await locks.release(id)
                throw error
            }
        }
        return removed
    }

    /// Runs `body` while no other request of this process writes to upload `id`; 409 with `busy` otherwise.
    func exclusively<T: Sendable>(_ id: String, busy: String, _ body: () async throws -> T) async throws -> T {
        guard await locks.acquire(id) else { throw ServiceError.conflict(busy) }
        do {
            let value = try await body()
            await locks.release(id)
            return value
        } catch {
            await locks.release(id)
            throw error
        }
    }
}
