//! Charges, refunds and seeding: each one transaction that moves a balance and writes the
//! matching ledger entry, so a wallet's ledger always sums to its balance.
//!
//! The database enforces the rest: `balance >= 0` (CHECK), one ledger entry per kind and key
//! (UNIQUE), one charge row per charge key (PRIMARY KEY). The charge row also closes the race
//! between a slow charge and its refund: a refund that finds no charge leaves a VOIDED row, and
//! a charge that arrives later with that key is declined instead of taking points.

use faultline_contracts::http::{BookingNet, PaymentSummary, WalletView};
use faultline_kit::storage::{Db, Dialect, Tx, now_ms};
use sqlx::Row as _;

use crate::{
    configuration::SeedSettings,
    domain::{Points, UserId},
};

/// What a charge came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Charged {
        charge_id: String,
        balance_after: i64,
    },
    Declined {
        charge_id: String,
        balance: i64,
        reason: String,
    },
    UnknownWallet,
}

/// What a refund came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    Refunded {
        amount: i64,
    },
    /// Never charged (declined, voided, or not seen at all — which voids the key).
    NothingToRefund,
    /// Refunded before, under another refund key.
    AlreadyRefunded {
        amount: i64,
    },
}

async fn wallet_balance(tx: &mut Tx, user: &UserId) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT balance FROM wallets WHERE user_id = $1")
        .bind(user.as_str())
        .fetch_optional(&mut **tx)
        .await
}

async fn write_ledger(
    tx: &mut Tx,
    user_id: &str,
    booking_id: Option<&str>,
    kind: &str,
    amount: i64,
    op_key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ledger (id, user_id, booking_id, kind, amount, op_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(user_id)
    .bind(booking_id)
    .bind(kind)
    .bind(amount)
    .bind(op_key)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Takes `amount` points from `user` for `booking_id`, once per `charge_key`.
pub async fn charge(
    tx: &mut Tx,
    charge_key: &str,
    user: &UserId,
    booking_id: &str,
    amount: Points,
) -> Result<ChargeOutcome, sqlx::Error> {
    if Dialect::of(tx) == Dialect::Postgres
        && let Some(charged) =
            charge_in_one_statement(tx, charge_key, user, booking_id, amount).await?
    {
        return Ok(charged);
    }
    let existing = sqlx::query("SELECT charge_id, status FROM charges WHERE charge_key = $1")
        .bind(charge_key)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(row) = existing {
        let charge_id: String = row.try_get("charge_id")?;
        let status: String = row.try_get("status")?;
        let balance = wallet_balance(tx, user).await?.unwrap_or_default();
        return Ok(match status.as_str() {
            "CHARGED" | "REFUNDED" => ChargeOutcome::Charged {
                charge_id,
                balance_after: balance,
            },
            "VOIDED" => ChargeOutcome::Declined {
                charge_id,
                balance,
                reason: "voided: this charge was already refunded before it arrived".into(),
            },
            _ => ChargeOutcome::Declined {
                charge_id,
                balance,
                reason: "declined earlier".into(),
            },
        });
    }
    let charge_id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    // A booking is charged once: the saga retries under its one key (answered above), so a
    // second key for a booking already charged is a caller's mistake, declined before any
    // points move. The debit's guard says so in the same statement; only a refused debit asks
    // why (no extra statement on the common path).
    let debited: Option<i64> = sqlx::query_scalar(
        "UPDATE wallets SET balance = balance - $1, updated_at = $2 \
         WHERE user_id = $3 AND balance >= $1 \
           AND NOT EXISTS (SELECT 1 FROM charges WHERE booking_id = $4 AND status = 'CHARGED') \
         RETURNING balance",
    )
    .bind(amount.value())
    .bind(now)
    .bind(user.as_str())
    .bind(booking_id)
    .fetch_optional(&mut **tx)
    .await?;
    let already_charged: Option<String> = match debited {
        Some(_) => None,
        None => sqlx::query_scalar(
            "SELECT charge_key FROM charges WHERE booking_id = $1 AND status = 'CHARGED' LIMIT 1",
        )
        .bind(booking_id)
        .fetch_optional(&mut **tx)
        .await?,
    };
    let (status, outcome) = match debited {
        Some(balance_after) => {
            write_ledger(
                tx,
                user.as_str(),
                Some(booking_id),
                "CHARGE",
                -amount.value(),
                charge_key,
            )
            .await?;
            (
                "CHARGED",
                ChargeOutcome::Charged {
                    charge_id: charge_id.clone(),
                    balance_after,
                },
            )
        }
        None => match wallet_balance(tx, user).await? {
            None => return Ok(ChargeOutcome::UnknownWallet),
            Some(balance) => (
                "DECLINED",
                ChargeOutcome::Declined {
                    charge_id: charge_id.clone(),
                    balance,
                    reason: match &already_charged {
                        Some(key) => format!(
                            "booking {booking_id} is already charged under another key ({key})"
                        ),
                        None => format!(
                            "insufficient points: balance {balance} < amount {}",
                            amount.value()
                        ),
                    },
                },
            ),
        },
    };
    sqlx::query(
        "INSERT INTO charges (charge_key, charge_id, user_id, booking_id, amount, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(charge_key)
    .bind(&charge_id)
    .bind(user.as_str())
    .bind(booking_id)
    .bind(amount.value())
    .bind(status)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(outcome)
}

/// The common charge — a new key and enough points — in one round trip on PostgreSQL: the key
/// check, the debit, its ledger entry and the charge row, each write only if the debit
/// matched. Every statement costs the server a wake-up and a proxy hop, and statements per
/// saga bound the rate there (ARCHITECTURE.md). `None` when the key exists, the booking is
/// already charged, or the debit did not match (nothing was written): the step-by-step path
/// answers those.
async fn charge_in_one_statement(
    tx: &mut Tx,
    charge_key: &str,
    user: &UserId,
    booking_id: &str,
    amount: Points,
) -> Result<Option<ChargeOutcome>, sqlx::Error> {
    let charge_id = uuid::Uuid::now_v7().to_string();
    let balance_after: Option<i64> = sqlx::query_scalar(
        "WITH existing AS (SELECT 1 FROM charges WHERE charge_key = $1), \
         debited AS (UPDATE wallets SET balance = balance - $2, updated_at = $3 \
           WHERE user_id = $4 AND balance >= $2 AND NOT EXISTS (SELECT 1 FROM existing) \
             AND NOT EXISTS (SELECT 1 FROM charges WHERE booking_id = $6 AND status = 'CHARGED') \
           RETURNING balance), \
         entry AS (INSERT INTO ledger (id, user_id, booking_id, kind, amount, op_key, created_at) \
           SELECT $5, $4, $6, 'CHARGE', -$2, $1, $3 FROM debited), \
         charge AS (INSERT INTO charges (charge_key, charge_id, user_id, booking_id, amount, status, created_at, updated_at) \
           SELECT $1, $7, $4, $6, $2, 'CHARGED', $3, $3 FROM debited) \
         SELECT balance FROM debited",
    )
    .bind(charge_key)
    .bind(amount.value())
    .bind(now_ms())
    .bind(user.as_str())
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(booking_id)
    .bind(&charge_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(balance_after.map(|balance_after| ChargeOutcome::Charged {
        charge_id,
        balance_after,
    }))
}

/// Gives back what was charged under `charge_key`, at most once whatever the refund key.
pub async fn refund(
    tx: &mut Tx,
    charge_key: &str,
    booking_id: &str,
) -> Result<RefundOutcome, sqlx::Error> {
    let now = now_ms();
    let voided = sqlx::query(
        "INSERT INTO charges (charge_key, charge_id, user_id, booking_id, amount, status, created_at, updated_at) \
         VALUES ($1, $2, NULL, $3, 0, 'VOIDED', $4, $4) ON CONFLICT (charge_key) DO NOTHING",
    )
    .bind(charge_key)
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(booking_id)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if voided == 1 {
        return Ok(RefundOutcome::NothingToRefund);
    }
    let row = sqlx::query(
        "UPDATE charges SET status = 'REFUNDED', updated_at = $1 \
         WHERE charge_key = $2 AND status = 'CHARGED' RETURNING user_id, amount",
    )
    .bind(now)
    .bind(charge_key)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = row {
        let user_id: String = row.try_get("user_id")?;
        let amount: i64 = row.try_get("amount")?;
        sqlx::query(
            "UPDATE wallets SET balance = balance + $1, updated_at = $2 WHERE user_id = $3",
        )
        .bind(amount)
        .bind(now)
        .bind(&user_id)
        .execute(&mut **tx)
        .await?;
        write_ledger(tx, &user_id, Some(booking_id), "REFUND", amount, charge_key).await?;
        return Ok(RefundOutcome::Refunded { amount });
    }
    let row = sqlx::query("SELECT status, amount FROM charges WHERE charge_key = $1")
        .bind(charge_key)
        .fetch_one(&mut **tx)
        .await?;
    let status: String = row.try_get("status")?;
    Ok(if status == "REFUNDED" {
        RefundOutcome::AlreadyRefunded {
            amount: row.try_get("amount")?,
        }
    } else {
        RefundOutcome::NothingToRefund
    })
}

/// Creates the seeded wallets that do not exist yet, each with its SEED ledger entry.
pub async fn seed(db: &Db, seed: &SeedSettings) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    for wallet in &seed.wallets {
        let user = UserId::parse(&wallet.user_id).map_err(anyhow::Error::msg)?;
        let points = Points::parse(wallet.points).map_err(anyhow::Error::msg)?;
        let created = sqlx::query(
            "INSERT INTO wallets (user_id, balance, initial, updated_at) VALUES ($1, $2, $2, $3) \
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user.as_str())
        .bind(points.value())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if created == 1 {
            write_ledger(
                &mut tx,
                user.as_str(),
                None,
                "SEED",
                points.value(),
                &format!("seed:{}", user.as_str()),
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

pub async fn wallet(db: &Db, user: &UserId) -> Result<Option<WalletView>, sqlx::Error> {
    let balance: Option<i64> = sqlx::query_scalar("SELECT balance FROM wallets WHERE user_id = $1")
        .bind(user.as_str())
        .fetch_optional(db.pool())
        .await?;
    Ok(balance.map(|balance| WalletView {
        user_id: user.as_str().to_owned(),
        balance,
    }))
}

/// The figures the points invariant is checked from. SUMs are cast to BIGINT: PostgreSQL would
/// return NUMERIC, which the `Any` driver cannot decode.
pub async fn summary(db: &Db) -> Result<PaymentSummary, sqlx::Error> {
    let totals = sqlx::query(
        "SELECT CAST(COALESCE(SUM(initial), 0) AS BIGINT) AS initial_total, \
                CAST(COALESCE(SUM(balance), 0) AS BIGINT) AS balance_total FROM wallets",
    )
    .fetch_one(db.pool())
    .await?;
    let ledger_total: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger")
            .fetch_one(db.pool())
            .await?;
    let mismatched_wallets: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM wallets w WHERE w.balance <> \
         (SELECT CAST(COALESCE(SUM(l.amount), 0) AS BIGINT) FROM ledger l WHERE l.user_id = w.user_id)",
    )
    .fetch_one(db.pool())
    .await?;
    let rows = sqlx::query(
        "SELECT booking_id, \
                CAST(COALESCE(SUM(CASE WHEN kind = 'CHARGE' THEN -amount ELSE 0 END), 0) AS BIGINT) AS charged, \
                CAST(COALESCE(SUM(CASE WHEN kind = 'REFUND' THEN amount ELSE 0 END), 0) AS BIGINT) AS refunded, \
                CAST(COALESCE(SUM(CASE WHEN kind = 'CHARGE' THEN 1 ELSE 0 END), 0) AS BIGINT) AS charges \
         FROM ledger WHERE booking_id IS NOT NULL GROUP BY booking_id ORDER BY booking_id",
    )
    .fetch_all(db.pool())
    .await?;
    let net_by_booking = rows
        .iter()
        .map(|row| {
            Ok(BookingNet {
                booking_id: row.try_get("booking_id")?,
                charged: row.try_get("charged")?,
                refunded: row.try_get("refunded")?,
                charges: row.try_get("charges")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(PaymentSummary {
        initial_total: totals.try_get("initial_total")?,
        balance_total: totals.try_get("balance_total")?,
        ledger_total,
        mismatched_wallets,
        net_by_booking,
    })
}
