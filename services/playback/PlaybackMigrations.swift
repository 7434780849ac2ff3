import MarqueeServiceKit

/// The playback schema: one row per session started. Times are Unix milliseconds.
enum PlaybackMigrations {
    static let all: [Migration] = [
        Migration(1, "playback sessions") { _ in
            [
                """
                CREATE TABLE playback_sessions (
                    id TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL,
                    title_id TEXT NOT NULL,
                    package_version TEXT NOT NULL,
                    country TEXT,
                    client_address TEXT,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX playback_sessions_user ON playback_sessions (user_id, id)",
                "CREATE INDEX playback_sessions_title ON playback_sessions (title_id, id)",
            ]
        }
    ]
}
