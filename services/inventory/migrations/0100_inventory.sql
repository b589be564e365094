-- Inventory: concerts, schedules, seats. A seat is AVAILABLE, or HELD / SOLD by exactly one
-- booking; every change is a conditional UPDATE, so a seat can never be held or sold twice.
CREATE TABLE IF NOT EXISTS concerts (
    id    TEXT PRIMARY KEY,
    title TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS schedules (
    id         TEXT PRIMARY KEY,
    concert_id TEXT NOT NULL REFERENCES concerts (id),
    starts_at  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS seats (
    id          TEXT PRIMARY KEY,
    schedule_id TEXT NOT NULL REFERENCES schedules (id),
    concert_id  TEXT NOT NULL REFERENCES concerts (id),
    label       TEXT NOT NULL,
    price       BIGINT NOT NULL CHECK (price >= 0),
    status      TEXT NOT NULL CHECK (status IN ('AVAILABLE', 'HELD', 'SOLD')),
    booking_id  TEXT,
    updated_at  BIGINT NOT NULL,
    CHECK ((status = 'AVAILABLE' AND booking_id IS NULL) OR (status <> 'AVAILABLE' AND booking_id IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS seats_by_schedule ON seats (schedule_id);

-- Bookings whose release was processed: a hold that arrives after its own release is refused.
CREATE TABLE IF NOT EXISTS released_bookings (
    booking_id  TEXT PRIMARY KEY,
    seat_id     TEXT NOT NULL,
    released_at BIGINT NOT NULL
);

-- Every seat transition, for the checkers (which booking had the seat when).
CREATE TABLE IF NOT EXISTS seat_history (
    id          TEXT PRIMARY KEY,
    seat_id     TEXT NOT NULL,
    booking_id  TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS seat_history_by_seat ON seat_history (seat_id);
