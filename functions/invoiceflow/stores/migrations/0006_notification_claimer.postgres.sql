-- Who holds a notification claim: the CloudEvent (JSON [source, id]) whose delivery claimed
-- it. A delivery of another event that finds the claim fresh answers 2xx (the claimer's
-- event stays with the broker until it is answered, and takes the claim over if its sender
-- died); a redelivery of the claimer's own event answers 409. NULL: claimed by a version
-- before this one (treated as unknown: 409). Keep in step with
-- 0006_notification_claimer.sqlite.sql.
ALTER TABLE notifications ADD COLUMN claimed_by TEXT;
