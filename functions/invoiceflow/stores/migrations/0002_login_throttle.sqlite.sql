-- Login throttling (accounts.login): per account and per client address. Keys are sha256 hex
-- digests (of the normalised email, of the client address), never the raw values. Keep in step
-- with 0002_login_throttle.postgres.sql.

CREATE TABLE login_accounts (
    account      TEXT PRIMARY KEY NOT NULL,
    failures     INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    locked_until TEXT,
    updated_at   TEXT NOT NULL
);
CREATE INDEX login_accounts_updated_at ON login_accounts (updated_at);

CREATE TABLE login_clients (
    client     TEXT PRIMARY KEY NOT NULL,
    tokens     REAL NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX login_clients_updated_at ON login_clients (updated_at);
