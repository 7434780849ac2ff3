import MarqueeServiceKit

/// The ingest job queue in the SQL database every ingest node shares.
///
/// A worker claims a job with a lease and renews it with heartbeats. A worker that dies stops
/// renewing; once its lease expires another worker may claim the job again, and from then on the
/// first worker's heartbeats and completion are refused, so a job is completed (published) at most
/// once. Each claim counts an attempt; a job whose lease expires on its last attempt fails.
///
/// Every operation takes `now` (Unix milliseconds) so tests can move time without sleeping.
public struct IngestJobs: Sendable {
    let database: any Database

    /// A queue over `database`, which must hold the ingest schema (see `migrate(_:)`).
    public init(database: any Database) {
        self.database = database
    }

    /// Creates or updates the ingest schema (jobs and uploads) in `database`; what a worker
    /// process calls at start when it opens the shared database without the HTTP service.
    public static func migrate(_ database: any Database) async throws {
        try await Migrator.migrate(database, service: "ingest", IngestMigrations.all)
    }

    // MARK: - Producing

    /// Adds a job to the queue, owned by `createdBy` (an account id) when given.
    @discardableResult
    public func enqueue(
        titleID: String, source: String, createdBy: String? = nil, maxAttempts: Int = 3, at now: Int64 = unixMilliseconds()
    ) async throws -> IngestJob {
        try await Self.enqueue(titleID: titleID, source: source, createdBy: createdBy, maxAttempts: maxAttempts, at: now, in: database)
    }

    /// Adds a job inside a caller's transaction (an upload's completion enqueues in the same one).
    static func enqueue(
        titleID: String, source: String, createdBy: String?, maxAttempts: Int = 3, at now: Int64, in executor: any SQLExecutor
    ) async throws -> IngestJob {
        let rows = try await executor.query(
            """
            INSERT INTO ingest_jobs (id, title_id, source, status, attempts, max_attempts, progress_percent, created_at, updated_at, created_by)
            VALUES ($1, $2, $3, 'queued', 0, $4, 0, $5, $5, $6)
            RETURNING \(IngestJob.columns)
            """,
            [
                .text(Identifier.make()), .text(titleID), .text(source), .integer(Int64(max(1, maxAttempts))), .integer(now),
                createdBy.map { .text($0) } ?? .null,
            ])
        return try IngestJob(rows[0])
    }

    // MARK: - Working

    /// Leases the oldest job that is queued, or running under an expired lease (its worker is
    /// presumed dead), to `worker` until `now + lease`, counting an attempt. Jobs whose expired
    /// lease was their last attempt are failed ("worker lost N times") rather than claimed.
    /// Returns nil when there is nothing to do.
    ///
    /// PostgreSQL picks the row with `FOR UPDATE SKIP LOCKED`, so concurrent claimers take
    /// different jobs without waiting on each other; SQLite runs the same statement inside
    /// `BEGIN IMMEDIATE`, which serializes writers.
    public func claim(worker: String, lease: Duration, at now: Int64 = unixMilliseconds()) async throws -> IngestJob? {
        let expires = now + lease.milliseconds
        let skipLocked = database.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        return try await database.transaction { tx in
            try await tx.execute(
                """
                UPDATE ingest_jobs SET status = 'failed', error = 'worker lost ' || attempts || ' times',
                    lease_owner = NULL, lease_expires_at = NULL, updated_at = $1
                WHERE status = 'running' AND lease_expires_at < $1 AND attempts >= max_attempts
                """, now)
            let claimable = "(status = 'queued' OR (status = 'running' AND lease_expires_at < $3 AND attempts < max_attempts))"
            let rows = try await tx.query(
                """
                UPDATE ingest_jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1, lease_expires_at = $2,
                    updated_at = $3
                WHERE id = (SELECT id FROM ingest_jobs WHERE \(claimable) ORDER BY created_at, id LIMIT 1\(skipLocked))
                    AND \(claimable)
                RETURNING \(IngestJob.columns)
                """, [.text(worker), .integer(expires), .integer(now)])
            return try rows.first.map(IngestJob.init)
        }
    }

    /// Renews `worker`'s lease on `job` until `now + lease` and records its progress. False when
    /// the job is no longer this worker's (reclaimed after its lease expired, failed, or done):
    /// the worker must stop and must not publish.
    public func heartbeat(job: String, worker: String, progress: JobProgress, lease: Duration, at now: Int64 = unixMilliseconds())
        async throws -> Bool
    {
        let rows = try await database.query(
            """
            UPDATE ingest_jobs SET progress_percent = $3, frames_per_second = $4, eta_seconds = $5, lease_expires_at = $6, updated_at = $7
            WHERE id = $1 AND lease_owner = $2 AND status = 'running'
            RETURNING id
            """,
            [
                .text(job), .text(worker), .real(progress.percent), progress.framesPerSecond.map { .real($0) } ?? .null,
                progress.etaSeconds.map { .integer(Int64($0)) } ?? .null, .integer(now + lease.milliseconds), .integer(now),
            ])
        return !rows.isEmpty
    }

    /// Marks `job` succeeded with the package version it published, if `worker` still holds it.
    /// One conditional UPDATE, so exactly one completion can ever happen per job; false means
    /// another worker owns (or finished) the job and this worker's output must be discarded.
    public func complete(job: String, worker: String, packageVersion: String, at now: Int64 = unixMilliseconds()) async throws -> Bool {
        let rows = try await database.query(
            """
            UPDATE ingest_jobs SET status = 'succeeded', package_version = $3, progress_percent = 100, eta_seconds = 0,
                error = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = $4
            WHERE id = $1 AND lease_owner = $2 AND status = 'running'
            RETURNING id
            """, [.text(job), .text(worker), .text(packageVersion), .integer(now)])
        return !rows.isEmpty
    }

    /// Records a failure by `worker`: a retryable one re-queues the job while it has attempts
    /// left, anything else fails it for good. False when the job was not this worker's.
    public func fail(job: String, worker: String, error: String, retryable: Bool, at now: Int64 = unixMilliseconds()) async throws -> Bool {
        let rows = try await database.query(
            """
            UPDATE ingest_jobs SET status = CASE WHEN $4 = 1 AND attempts < max_attempts THEN 'queued' ELSE 'failed' END,
                error = $3, lease_owner = NULL, lease_expires_at = NULL, eta_seconds = NULL, frames_per_second = NULL, updated_at = $5
            WHERE id = $1 AND lease_owner = $2 AND status = 'running'
            RETURNING id
            """, [.text(job), .text(worker), .text(String(error.prefix(2000))), .integer(retryable ? 1 : 0), .integer(now)])
        return !rows.isEmpty
    }

    /// Gives `job` back to the queue because `worker` is shutting down (not because it failed):
    /// the attempt is not counted and the next worker may claim it at once, without waiting for
    /// the lease to expire. False when the job was not this worker's.
    public func release(job: String, worker: String, at now: Int64 = unixMilliseconds()) async throws -> Bool {
        let rows = try await database.query(
            """
            UPDATE ingest_jobs SET status = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                lease_owner = NULL, lease_expires_at = NULL, eta_seconds = NULL, frames_per_second = NULL, updated_at = $3
            WHERE id = $1 AND lease_owner = $2 AND status = 'running'
            RETURNING id
            """, [.text(job), .text(worker), .integer(now)])
        return !rows.isEmpty
    }

    // MARK: - Reading

    /// One job, or nil.
    public func job(_ id: String) async throws -> IngestJob? {
        guard Identifier.isValid(id) else { return nil }
        return try await database.first("SELECT \(IngestJob.columns) FROM ingest_jobs WHERE id = $1", id).map(IngestJob.init)
    }

    /// Jobs newest first, `limit` of them after the job `cursor` names (ids sort by creation),
    /// only those `createdBy` owns when it is given. Returns the page and whether more follow.
    public func list(limit: Int, after cursor: String? = nil, createdBy owner: String? = nil) async throws -> (jobs: [IngestJob], more: Bool) {
        var conditions: [String] = []
        var binds: [SQLValue] = []
        if let cursor {
            binds.append(.text(cursor))
            conditions.append("id < $\(binds.count)")
        }
        if let owner {
            binds.append(.text(owner))
            conditions.append("created_by = $\(binds.count)")
        }
        binds.append(.integer(Int64(limit + 1)))
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let rows = try await database.query(
            "SELECT \(IngestJob.columns) FROM ingest_jobs\(filter) ORDER BY id DESC LIMIT $\(binds.count)", binds)
        let jobs = try rows.map(IngestJob.init)
        return (Array(jobs.prefix(limit)), jobs.count > limit)
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
