-- The kit's own tables, present in every service's database. Portable SQL: runs on SQLite and
-- PostgreSQL unchanged (TEXT ids, BIGINT epoch milliseconds, no booleans).

-- Transactional outbox: written in the business transaction, published by the relay.
CREATE TABLE IF NOT EXISTS outbox (
    id            TEXT PRIMARY KEY,   -- UUIDv7: sorts in write order
    topic         TEXT NOT NULL,
    message_key   TEXT NOT NULL,      -- the aggregate id: Kafka key
    payload       TEXT NOT NULL,      -- the JSON envelope
    headers       TEXT NOT NULL,      -- JSON object: message-id, event-type, schema-version, traceparent, …
    created_at    BIGINT NOT NULL,
    claimed_until BIGINT,             -- a relay holds the row until then
    claimed_by    TEXT,               -- which instance's relay
    published_at  BIGINT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Inbox: one row per (consumer, message id) ever processed; the insert is the dedupe.
CREATE TABLE IF NOT EXISTS inbox (
    consumer    TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    topic       TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, message_id)
);

-- HTTP idempotency keys: the stored response of the first request with a key.
CREATE TABLE IF NOT EXISTS idempotency (
    scope          TEXT NOT NULL,     -- who may use the key (a user, a calling service)
    idem_key       TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,     -- SHA-256 of method, path and body
    status_code    BIGINT,            -- NULL while the first request is in flight
    response_body  TEXT,
    locked_until   BIGINT NOT NULL,   -- an in-flight claim older than this may be taken over
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
