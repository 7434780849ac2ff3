import MarqueeServiceKit

/// The catalog schema. Times are Unix milliseconds; lists are JSON text. Full-text search runs over
/// `search_text`, which the service writes already folded (lowercase, no diacritics) so both
/// engines match the same way: a generated tsvector with a GIN index on PostgreSQL, an FTS5 table
/// kept by triggers on SQLite.
enum CatalogMigrations {
    static let all: [Migration] = [
        Migration(1, "titles, genres, search, change counter") { dialect in
            var statements = [
                """
                CREATE TABLE titles (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    description TEXT NOT NULL,
                    genres TEXT NOT NULL,
                    cast_members TEXT NOT NULL,
                    year BIGINT,
                    duration_seconds BIGINT,
                    price_per_minute BIGINT NOT NULL,
                    currency TEXT NOT NULL,
                    geo_mode TEXT,
                    geo_countries TEXT NOT NULL,
                    available_from BIGINT,
                    available_until BIGINT,
                    status TEXT NOT NULL,
                    package_version TEXT,
                    renditions TEXT NOT NULL,
                    created_by TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    revision BIGINT NOT NULL,
                    search_text TEXT NOT NULL
                )
                """,
                "CREATE INDEX titles_status_created ON titles (status, created_at, id)",
                "CREATE TABLE title_genres (title_id TEXT NOT NULL REFERENCES titles(id) ON DELETE CASCADE, genre TEXT NOT NULL, PRIMARY KEY (title_id, genre))",
                "CREATE INDEX title_genres_genre ON title_genres (genre, title_id)",
                "CREATE TABLE catalog_state (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
                "INSERT INTO catalog_state (key, value) VALUES ('rules_version', 1)",
            ]
            switch dialect {
            case .postgres:
                statements += [
                    """
                    ALTER TABLE titles ADD COLUMN search tsvector GENERATED ALWAYS AS (
                        to_tsvector('simple', search_text)) STORED
                    """,
                    "CREATE INDEX titles_search ON titles USING GIN (search)",
                ]
            case .sqlite:
                statements += [
                    """
                    CREATE VIRTUAL TABLE titles_fts USING fts5(search_text, content='titles', content_rowid='rowid', tokenize='unicode61')
                    """,
                    """
                    CREATE TRIGGER titles_fts_insert AFTER INSERT ON titles BEGIN
                        INSERT INTO titles_fts (rowid, search_text) VALUES (new.rowid, new.search_text);
                    END
                    """,
                    """
                    CREATE TRIGGER titles_fts_delete AFTER DELETE ON titles BEGIN
                        INSERT INTO titles_fts (titles_fts, rowid, search_text) VALUES ('delete', old.rowid, old.search_text);
                    END
                    """,
                    """
                    CREATE TRIGGER titles_fts_update AFTER UPDATE ON titles BEGIN
                        INSERT INTO titles_fts (titles_fts, rowid, search_text) VALUES ('delete', old.rowid, old.search_text);
                        INSERT INTO titles_fts (rowid, search_text) VALUES (new.rowid, new.search_text);
                    END
                    """,
                ]
            }
            return statements
        }
    ]
}
