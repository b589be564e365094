-- Analytics: a read model of booking outcomes, built from booking.events (CQRS). Rebuildable
-- from the topic; never written by anything but the consumer.
CREATE TABLE IF NOT EXISTS user_stats (
    user_id      TEXT PRIMARY KEY,
    confirmed    BIGINT NOT NULL DEFAULT 0,
    cancelled    BIGINT NOT NULL DEFAULT 0,
    rejected     BIGINT NOT NULL DEFAULT 0,
    points_spent BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS concert_stats (
    concert_id TEXT PRIMARY KEY,
    confirmed  BIGINT NOT NULL DEFAULT 0,
    cancelled  BIGINT NOT NULL DEFAULT 0,
    revenue    BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);

-- One row per consumed topic: how many events went in and the newest event's time.
CREATE TABLE IF NOT EXISTS stream_position (
    topic           TEXT PRIMARY KEY,
    events          BIGINT NOT NULL,
    last_event_at   BIGINT,
    last_applied_at BIGINT NOT NULL
);
