-- invoiceflow initial schema (SQLite). Keep in step with 0001_initial.postgres.sql.
-- Timestamps are ISO-8601 UTC text with microseconds (they sort as text); booleans 0/1.

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    TEXT NOT NULL
);
-- emails are unique case-insensitively
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE invoices (
    id              TEXT PRIMARY KEY NOT NULL,
    owner_id        TEXT NOT NULL REFERENCES users (id),
    number          TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'received'
                    CHECK (status IN ('received', 'ready', 'failed')),
    source          TEXT NOT NULL CHECK (source IN ('http', 'event')),
    raw_file_id     TEXT NOT NULL,
    formats         TEXT NOT NULL,
    error           TEXT,
    idempotency_key TEXT,
    request_sha256  TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    CONSTRAINT invoices_owner_idempotency_key UNIQUE (owner_id, idempotency_key)
);
CREATE INDEX invoices_owner_newest ON invoices (owner_id, created_at DESC, id DESC);

CREATE TABLE artifacts (
    invoice_id TEXT NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    format     TEXT NOT NULL,
    file_id    TEXT NOT NULL,
    size       INTEGER NOT NULL CHECK (size >= 0),
    sha256     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (invoice_id, format)
);
CREATE INDEX artifacts_file_id ON artifacts (file_id);

CREATE TABLE notifications (
    invoice_id          TEXT NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    kind                TEXT NOT NULL CHECK (kind IN ('ready', 'failed')),
    recipient           TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('claimed', 'sent', 'released')),
    claimed_at          TEXT,
    sent_at             TEXT,
    provider_message_id TEXT,
    PRIMARY KEY (invoice_id, kind)
);

CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    source       TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (consumer, source, event_id)
);

CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   TEXT NOT NULL,
    type       TEXT NOT NULL,
    source     TEXT NOT NULL,
    subject    TEXT,
    data       TEXT NOT NULL,
    extensions TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    sent_at    TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    CONSTRAINT outbox_source_event_id UNIQUE (source, event_id)
);
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL;
