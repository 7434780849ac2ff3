import MarqueeServiceKit

/// The auth schema. Times are Unix milliseconds.
enum AuthMigrations {
    static let all: [Migration] = [
        Migration(1, "users, refresh tokens, signing keys, login throttle") { dialect in
            let bytes = dialect == .postgres ? "BYTEA" : "BLOB"
            return [
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY,
                    email TEXT NOT NULL UNIQUE,
                    password_hash TEXT NOT NULL,
                    role TEXT NOT NULL,
                    disabled BIGINT NOT NULL DEFAULT 0,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    password_changed_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE refresh_tokens (
                    token_hash \(bytes) PRIMARY KEY,
                    family_id TEXT NOT NULL,
                    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    issued_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    spent_at BIGINT,
                    revoked_at BIGINT
                )
                """,
                "CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id)",
                "CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id)",
                """
                CREATE TABLE signing_keys (
                    kid TEXT PRIMARY KEY,
                    private_key TEXT NOT NULL,
                    public_key TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    activates_at BIGINT NOT NULL,
                    retires_at BIGINT
                )
                """,
                """
                CREATE TABLE login_throttle (
                    key TEXT PRIMARY KEY,
                    failures BIGINT NOT NULL,
                    window_started_at BIGINT NOT NULL,
                    blocked_until BIGINT NOT NULL
                )
                """,
            ]
        }
    ]
}
