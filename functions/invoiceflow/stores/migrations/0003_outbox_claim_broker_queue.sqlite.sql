-- Issue 9, findings 7 and 8.
-- outbox.claimed_until: one relay owns a pending row until then (a relay that dies leaves
-- the row to the next one once the lease ends).
ALTER TABLE outbox ADD COLUMN claimed_until TEXT;

-- The embedded broker's durable queue: one row per (event, matching trigger), deleted only
-- after the subscriber's 2xx (or the dead-letter sink's); 'parked' when both failed.
CREATE TABLE broker_queue (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    broker       TEXT NOT NULL,
    trigger_name TEXT NOT NULL,
    source       TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    headers      TEXT NOT NULL,
    body         BLOB NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'parked')),
    phase        TEXT NOT NULL DEFAULT 'subscriber',
    attempt      INTEGER NOT NULL DEFAULT 0,
    due_at       TEXT NOT NULL,
    outgoing     TEXT,
    created_at   TEXT NOT NULL,
    last_error   TEXT,
    CONSTRAINT broker_queue_event UNIQUE (broker, trigger_name, source, event_id)
);
CREATE INDEX broker_queue_pending ON broker_queue (broker, id) WHERE state = 'pending';
