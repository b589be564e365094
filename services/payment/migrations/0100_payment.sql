-- Payment: point wallets and their ledger. The balance can never go negative (CHECK), and every
-- balance change writes a ledger entry in the same transaction, so a wallet's ledger always sums
-- to its balance.
CREATE TABLE IF NOT EXISTS wallets (
    user_id    TEXT PRIMARY KEY,
    balance    BIGINT NOT NULL CHECK (balance >= 0),
    initial    BIGINT NOT NULL CHECK (initial >= 0),
    updated_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS ledger (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES wallets (user_id),
    booking_id TEXT,
    kind       TEXT NOT NULL CHECK (kind IN ('SEED', 'CHARGE', 'REFUND')),
    amount     BIGINT NOT NULL,            -- signed: charges are negative
    op_key     TEXT NOT NULL,              -- the charge or refund key; one entry per kind and key
    created_at BIGINT NOT NULL,
    UNIQUE (kind, op_key)
);
CREATE INDEX IF NOT EXISTS ledger_by_user ON ledger (user_id);
CREATE INDEX IF NOT EXISTS ledger_by_booking ON ledger (booking_id);

-- One row per charge key: CHARGED, DECLINED, REFUNDED, or VOIDED (a refund arrived first, so a
-- late charge with this key must not take points).
CREATE TABLE IF NOT EXISTS charges (
    charge_key  TEXT PRIMARY KEY,
    charge_id   TEXT NOT NULL UNIQUE,
    user_id     TEXT,
    booking_id  TEXT NOT NULL,
    amount      BIGINT NOT NULL CHECK (amount >= 0),
    status      TEXT NOT NULL CHECK (status IN ('CHARGED', 'DECLINED', 'REFUNDED', 'VOIDED')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
