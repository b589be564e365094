-- Reservation: bookings (what users see) and their sagas (the orchestration state machine).
CREATE TABLE IF NOT EXISTS bookings (
    id         TEXT PRIMARY KEY,
    saga_id    TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL,
    seat_id    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED', 'REJECTED')),
    amount     BIGINT,
    concert_id TEXT,
    reason     TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS bookings_by_user ON bookings (user_id, created_at);

CREATE TABLE IF NOT EXISTS sagas (
    id               TEXT PRIMARY KEY,
    booking_id       TEXT NOT NULL UNIQUE REFERENCES bookings (id),
    state            TEXT NOT NULL CHECK (state IN
                       ('HOLDING', 'CHARGING', 'CONFIRMING', 'REFUNDING', 'RELEASING',
                        'CONFIRMED', 'CANCELLED', 'REJECTED')),
    version          BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    -- When the timer must look at the saga next (a deadline or a retry); NULL when waiting
    -- for a reply that the outbox guarantees will be asked for.
    due_at           BIGINT,
    -- The instance running the current attempt (its lease is due_at); NULL between attempts.
    claimed_by       TEXT,
    step_deadline    BIGINT,
    -- 1 once a charge request may have reached payment: compensation must then refund.
    charge_maybe_sent BIGINT NOT NULL DEFAULT 0,
    -- The W3C trace context of the request that created the booking: timer-driven steps
    -- continue that trace.
    trace_headers    TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sagas_due ON sagas (due_at) WHERE due_at IS NOT NULL;

-- Every transition, in order: the evidence for "compensation ran in reverse".
CREATE TABLE IF NOT EXISTS saga_log (
    id         TEXT PRIMARY KEY,   -- UUIDv7: sorts in write order
    saga_id    TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    event      TEXT NOT NULL,
    reason     TEXT,
    at         BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS saga_log_by_saga ON saga_log (saga_id);
