-- Evidence for the exactly-once checker: how often each message was delivered to this consumer
-- and how often its effect was committed (1 unless deduplication is broken), with what links
-- it back to a booking and its trace.
ALTER TABLE inbox ADD COLUMN deliveries BIGINT NOT NULL DEFAULT 1;
ALTER TABLE inbox ADD COLUMN applied BIGINT NOT NULL DEFAULT 1;
ALTER TABLE inbox ADD COLUMN message_key TEXT;
ALTER TABLE inbox ADD COLUMN booking_id TEXT;
ALTER TABLE inbox ADD COLUMN trace_id TEXT;
