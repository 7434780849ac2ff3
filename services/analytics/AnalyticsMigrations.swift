import MarqueeServiceKit

/// The analytics schema. Times are Unix seconds for buckets, microseconds for media and
/// delivery times, milliseconds for session starts (as billing keeps them).
///
/// - `analytics_rollups`: counters by grain (`hour`, `day`), bucket start and every dimension;
///   every column a sum, so a batch adds to its rows (`RollupCounters`).
/// - `analytics_title_rollups`: the same counters by grain (`minute`, `hour`, `day`), title,
///   country and edge only: what a publisher's dashboard reads (`RollupTable`).
/// - `analytics_breakdowns`: the same counters over every title, by grain, bucket and one
///   dimension (`total`, `title`, `country`, `edge`) and its value: what an admin's dashboard reads.
/// - `analytics_sessions`: each playback session seen in the records: its coverage (as billing
///   stores it), position, experience, and who watched (learned from billing afterwards); its
///   `version` goes up with every write.
/// - `analytics_viewer_days`: (title, day, viewer) once each: unique viewers.
/// - `analytics_titles`, `analytics_edges`: titles' owners and durations; gateways' role and region.
/// - `analytics_seen`: per gateway, the record sequences already counted (replays are dropped).
/// - `analytics_positions`: the committed position in a local delivery log.
/// - `analytics_revenue`: charged minutes per day, title and currency, copied from billing.
enum AnalyticsMigrations {
    static let all: [Migration] = [
        Migration(1, "rollups, sessions, viewers, revenue") { dialect in
            // On SQLite the rollups are stored in their key's order (a range of buckets is one
            // run of pages, and an upsert touches one b-tree, not a table and its key's index).
            // On PostgreSQL they leave room in each page, so that adding to a row's counters is a
            // heap-only update (no new index entries): rows are rewritten batch after batch.
            let clustered = dialect == .sqlite ? " WITHOUT ROWID" : " WITH (fillfactor = 70)"
            let dimensions = RollupDimensions.columns.map { "\($0) TEXT NOT NULL" }.joined(separator: ", ")
            let counters = RollupCounters.columns.map { "\($0) BIGINT NOT NULL DEFAULT 0" }.joined(separator: ", ")
            return [
                """
                CREATE TABLE analytics_rollups (
                    grain TEXT NOT NULL, bucket BIGINT NOT NULL, \(dimensions), \(counters),
                    PRIMARY KEY (grain, bucket, \(RollupDimensions.columns.joined(separator: ", ")))
                )\(clustered)
                """,
                "CREATE INDEX analytics_rollups_title ON analytics_rollups (grain, title_id, bucket)",
                """
                CREATE TABLE analytics_title_rollups (
                    grain TEXT NOT NULL, bucket BIGINT NOT NULL, title_id TEXT NOT NULL, country TEXT NOT NULL, edge TEXT NOT NULL, \(counters),
                    PRIMARY KEY (grain, bucket, title_id, country, edge)
                )\(clustered)
                """,
                "CREATE INDEX analytics_title_rollups_title ON analytics_title_rollups (grain, title_id, bucket)",
                """
                CREATE TABLE analytics_breakdowns (
                    grain TEXT NOT NULL, bucket BIGINT NOT NULL, dimension TEXT NOT NULL, value TEXT NOT NULL, \(counters),
                    PRIMARY KEY (grain, bucket, dimension, value)
                )\(clustered)
                """,
                """
                CREATE TABLE analytics_sessions (
                    id TEXT PRIMARY KEY,
                    title_id TEXT NOT NULL,
                    package_version TEXT NOT NULL,
                    country TEXT NOT NULL,
                    edge TEXT NOT NULL,
                    user_id TEXT,
                    started_at BIGINT,
                    lookup TEXT NOT NULL,
                    first_media BIGINT,
                    last_seen BIGINT NOT NULL,
                    coverage TEXT NOT NULL,
                    watch_us BIGINT NOT NULL,
                    duration_us BIGINT NOT NULL,
                    position_us BIGINT NOT NULL,
                    bytes BIGINT NOT NULL,
                    requests BIGINT NOT NULL,
                    errors BIGINT NOT NULL,
                    switches BIGINT NOT NULL,
                    last_track TEXT NOT NULL,
                    rebuffers BIGINT NOT NULL,
                    rebuffer_us BIGINT NOT NULL,
                    inferred_rebuffers BIGINT NOT NULL,
                    cmcd BIGINT NOT NULL,
                    startup_us BIGINT,
                    completed BIGINT NOT NULL,
                    active_minute BIGINT NOT NULL,
                    playhead TEXT NOT NULL
                )\(dialect == .postgres ? " WITH (fillfactor = 70)" : "")
                """,
                "CREATE INDEX analytics_sessions_viewer ON analytics_sessions (user_id, last_seen)",
                "CREATE INDEX analytics_sessions_lookup ON analytics_sessions (lookup)",
                "CREATE INDEX analytics_sessions_recent ON analytics_sessions (last_seen, id)",
                "CREATE INDEX analytics_sessions_title ON analytics_sessions (title_id, last_seen, id)",
                "CREATE TABLE analytics_viewer_days (title_id TEXT NOT NULL, day BIGINT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (title_id, day, user_id))",
                "CREATE TABLE analytics_titles (title_id TEXT PRIMARY KEY, owner TEXT, duration_us BIGINT NOT NULL DEFAULT 0)",
                "CREATE INDEX analytics_titles_owner ON analytics_titles (owner)",
                "CREATE TABLE analytics_edges (edge TEXT PRIMARY KEY, role TEXT NOT NULL, region TEXT NOT NULL)",
                "CREATE TABLE analytics_seen (gateway TEXT PRIMARY KEY, sequences TEXT NOT NULL)",
                "CREATE TABLE analytics_positions (consumer TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
                """
                CREATE TABLE analytics_revenue (
                    day TEXT NOT NULL, title_id TEXT NOT NULL, currency TEXT NOT NULL, owner TEXT NOT NULL,
                    minutes BIGINT NOT NULL, gross BIGINT NOT NULL, publisher BIGINT NOT NULL, platform_fee BIGINT NOT NULL,
                    PRIMARY KEY (day, title_id, currency)
                )
                """,
            ]
        },
        // `version`: every statement that writes a session bumps it; the ingestor reads only the
        // versions of sessions it remembers (`CommittedMemory`). `starved`: the player's last CMCD
        // said `bs` (a run of them is one rebuffer).
        Migration(2, "session versions for the ingestor's memory; CMCD starvation runs") { _ in
            [
                "ALTER TABLE analytics_sessions ADD COLUMN version BIGINT NOT NULL DEFAULT 0",
                "ALTER TABLE analytics_sessions ADD COLUMN starved BIGINT NOT NULL DEFAULT 0",
            ]
        },
    ]
}
