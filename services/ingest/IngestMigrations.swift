import MarqueeServiceKit

/// The ingest schema. Times are Unix milliseconds. `upload_offset` and `upload_length` carry the
/// tus names because `offset` is a reserved word in both engines.
enum IngestMigrations {
    static let all: [Migration] = [
        Migration(
            1, "ingest jobs and uploads",
            [
                """
                CREATE TABLE ingest_jobs (
                    id TEXT PRIMARY KEY,
                    title_id TEXT NOT NULL,
                    source TEXT NOT NULL,
                    status TEXT NOT NULL,
                    attempts BIGINT NOT NULL,
                    max_attempts BIGINT NOT NULL DEFAULT 3,
                    lease_owner TEXT,
                    lease_expires_at BIGINT,
                    progress_percent DOUBLE PRECISION NOT NULL DEFAULT 0,
                    frames_per_second DOUBLE PRECISION,
                    eta_seconds BIGINT,
                    error TEXT,
                    package_version TEXT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                // Claiming scans the queue in creation order among queued and running jobs.
                "CREATE INDEX ingest_jobs_status_created ON ingest_jobs (status, created_at, id)",
                """
                CREATE TABLE uploads (
                    id TEXT PRIMARY KEY,
                    title_id TEXT NOT NULL,
                    filename TEXT,
                    upload_length BIGINT NOT NULL,
                    upload_offset BIGINT NOT NULL,
                    created_by TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    completed_at BIGINT,
                    job_id TEXT
                )
                """,
            ]),
        // A job belongs to the publisher whose upload made it: they see it, other publishers do not.
        // Jobs made before this migration take their upload's owner.
        Migration(
            2, "ingest job owners",
            [
                "ALTER TABLE ingest_jobs ADD COLUMN created_by TEXT",
                "UPDATE ingest_jobs SET created_by = (SELECT uploads.created_by FROM uploads WHERE uploads.job_id = ingest_jobs.id)",
                "CREATE INDEX ingest_jobs_created_by ON ingest_jobs (created_by, id)",
            ]),
        // tus expiration and the per-publisher quota. Rows from before have no expiry: the first
        // sweep gives them a full `ingest.upload_expiry`.
        Migration(
            3, "upload expiry",
            [
                "ALTER TABLE uploads ADD COLUMN expires_at BIGINT",
                "CREATE INDEX uploads_unfinished ON uploads (completed_at, expires_at)",
                "CREATE INDEX uploads_creator ON uploads (created_by, completed_at)",
            ]),
    ]
}
