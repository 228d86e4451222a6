-- An account's branding settings (GET/PUT /settings/branding, invoiceflow.branding): one JSON
-- document per owner, validated against branding.v1.schema.json before it is stored; applied to
-- a document when it is accepted. Keep in step with 0004_branding.postgres.sql.

CREATE TABLE branding_settings (
    owner_id   TEXT PRIMARY KEY NOT NULL REFERENCES users (id),
    settings   TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
