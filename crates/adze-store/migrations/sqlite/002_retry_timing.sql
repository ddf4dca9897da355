-- Retries with backoff and schedule timeouts must survive a restart, and a replay starts
-- a fresh retry count.
--
-- queued_at: when the current attempt may first be assigned: the moment it was queued,
--   or, for a retry waiting out its backoff, the moment the backoff ends. The schedule
--   timeout counts from it.
-- retries_from: the attempt the retry policy counts from (0, or the attempt a replay
--   started).
ALTER TABLE tasks ADD COLUMN queued_at INTEGER;
ALTER TABLE tasks ADD COLUMN retries_from INTEGER NOT NULL DEFAULT 0;
