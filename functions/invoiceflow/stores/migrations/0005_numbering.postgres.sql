-- Issue 11, part 5: invoice numbers unique per owner, server-assigned numbers, the completed
-- document. Keep in step with 0005_numbering.sqlite.sql.

-- The document the renderers read (the submitted one completed: its number, the account's
-- defaults); NULL for invoices accepted before it existed (they render from raw_file_id).
ALTER TABLE invoices ADD COLUMN document_file_id TEXT;

-- Numbers are unique per owner. Older databases may hold duplicates (nothing refused them):
-- every one but the first accepted of each (owner, number) is marked number_reused and kept
-- as it is; the unique index covers every other row, so no new duplicate can arrive.
ALTER TABLE invoices ADD COLUMN number_reused BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE invoices SET number_reused = TRUE
WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (
            PARTITION BY owner_id, number ORDER BY created_at, id) AS nth
        FROM invoices) ranked
    WHERE nth > 1);
CREATE UNIQUE INDEX invoices_owner_number ON invoices (owner_id, number)
    WHERE NOT number_reused;

-- An owner's series (absent: numbering.DEFAULT_SERIES).
CREATE TABLE number_series (
    owner_id     TEXT PRIMARY KEY REFERENCES users (id),
    pattern      TEXT NOT NULL,
    yearly_reset BOOLEAN NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- The last sequence number given, per owner and period ('' or the issue year). Taken and
-- raised in the transaction that records the invoice (the row stays locked until it commits),
-- so a rolled-back acceptance gives its number back.
CREATE TABLE number_counters (
    owner_id TEXT NOT NULL REFERENCES users (id),
    period   TEXT NOT NULL,
    last_seq BIGINT NOT NULL CHECK (last_seq > 0),
    PRIMARY KEY (owner_id, period)
);
