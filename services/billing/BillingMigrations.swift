import MarqueeMetering
import MarqueeServiceKit

/// The billing schema. Amounts are integer minor units (cents); times are Unix milliseconds.
///
/// - `billing_accounts`: every ledger account with its balance. Wallets and holds never go below
///   zero: the debit is a conditional update in the transfer's own transaction, and a CHECK
///   refuses anything that slipped past it.
/// - `billing_transfers`: the double-entry ledger. One row per movement, from one account to
///   another, its id chosen by its cause (a retry with the same id inserts nothing).
/// - `billing_sessions`: billed playback sessions with their price (fixed at start), coverage
///   (`SessionCoverage.text`), minutes billed and state. `version` grows with every write of the
///   row (migration 2): the meter keeps the sessions it wrote in memory and reads a batch's
///   versions instead of whole rows, so every statement that writes a session must bump it.
/// - `billing_idempotency`: deposits' answers by (caller, Idempotency-Key).
/// - `billing_positions`: the meter's committed position in the delivery log.
enum BillingMigrations {
    static let all: [Migration] = [
        Migration(1, "ledger, sessions, idempotency, meter positions") { _ in
            [
                """
                CREATE TABLE billing_accounts (
                    id TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    owner TEXT,
                    currency TEXT NOT NULL,
                    balance BIGINT NOT NULL,
                    CHECK (kind NOT IN ('wallet', 'hold') OR balance >= 0)
                )
                """,
                "CREATE INDEX billing_accounts_kind ON billing_accounts (kind, owner, currency)",
                """
                CREATE TABLE billing_transfers (
                    id TEXT PRIMARY KEY,
                    debit_account TEXT NOT NULL REFERENCES billing_accounts(id),
                    credit_account TEXT NOT NULL REFERENCES billing_accounts(id),
                    amount BIGINT NOT NULL CHECK (amount > 0),
                    currency TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    session_id TEXT,
                    title_id TEXT,
                    owner TEXT,
                    minute BIGINT,
                    day TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX billing_transfers_debit ON billing_transfers (debit_account, created_at, id)",
                "CREATE INDEX billing_transfers_credit ON billing_transfers (credit_account, created_at, id)",
                "CREATE INDEX billing_transfers_session ON billing_transfers (session_id, kind)",
                "CREATE INDEX billing_transfers_revenue ON billing_transfers (kind, day, title_id)",
                """
                CREATE TABLE billing_sessions (
                    id TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL,
                    title_id TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    package_version TEXT NOT NULL,
                    price_per_minute BIGINT NOT NULL,
                    currency TEXT NOT NULL,
                    state TEXT NOT NULL,
                    coverage TEXT NOT NULL,
                    covered_us BIGINT NOT NULL,
                    billed_minutes BIGINT NOT NULL,
                    charged BIGINT NOT NULL,
                    written_off BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    last_activity BIGINT NOT NULL,
                    ended_at BIGINT,
                    end_reason TEXT,
                    revoke_pending TEXT
                )
                """,
                "CREATE INDEX billing_sessions_user ON billing_sessions (user_id, state, id)",
                "CREATE INDEX billing_sessions_state ON billing_sessions (state, last_activity)",
                """
                CREATE TABLE billing_idempotency (
                    caller TEXT NOT NULL,
                    idem_key TEXT NOT NULL,
                    request TEXT NOT NULL,
                    status BIGINT NOT NULL,
                    response TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (caller, idem_key)
                )
                """,
                "CREATE INDEX billing_idempotency_created ON billing_idempotency (created_at)",
                "CREATE TABLE billing_positions (consumer TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
            ]
        },
        Migration(2, "session versions for the meter's memory") { _ in
            ["ALTER TABLE billing_sessions ADD COLUMN version BIGINT NOT NULL DEFAULT 0"]
        },
    ]
}
