-- Admission control counts the bookings still in flight several times a second: a partial index
-- keeps that count proportional to the work in flight, not to every booking ever made.
CREATE INDEX IF NOT EXISTS bookings_pending ON bookings (id) WHERE status = 'PENDING';
