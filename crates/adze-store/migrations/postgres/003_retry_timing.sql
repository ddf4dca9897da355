-- Retries with backoff and schedule timeouts must survive a restart, and a replay starts
-- a fresh retry count (the same columns as the SQLite store's 002_retry_timing).
--
-- queued_at: when the current attempt may first be assigned (when it was queued, or when
--   a retry's backoff ends); the schedule timeout counts from it.
-- retries_from: the attempt the retry policy counts from (0, or the attempt a replay
--   started).
ALTER TABLE tasks ADD COLUMN queued_at bigint;
ALTER TABLE tasks ADD COLUMN retries_from bigint NOT NULL DEFAULT 0;
