-- A charge first asks whether its booking is already charged under another key (a booking is
-- charged once): an index keeps that lookup from scanning every charge ever made.
CREATE INDEX IF NOT EXISTS charges_by_booking ON charges (booking_id, status);
