-- outbox.set_aside_at: when a relay set the row aside because the broker refused its event
-- for good (an answer about the event itself: errors.EventRefused). A set-aside row is
-- neither pending (no relay claims it) nor sent; `invoiceflow outbox set-aside` lists such
-- rows and `invoiceflow outbox retry` makes them pending again. The pending index leaves
-- them out; their own index keeps the listing cheap however large the outbox grows. Keep in
-- step with 0007_outbox_set_aside.sqlite.sql.
ALTER TABLE outbox ADD COLUMN set_aside_at TIMESTAMPTZ;
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL AND set_aside_at IS NULL;
CREATE INDEX outbox_set_aside ON outbox (id) WHERE set_aside_at IS NOT NULL;
