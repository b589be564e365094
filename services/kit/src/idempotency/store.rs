//! The idempotency table: claim, complete, expire.

use std::time::Duration;

use sqlx::Row as _;

use crate::storage::{Tx, now_ms};

/// A stored response, replayed verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedResponse {
    pub status: u16,
    pub body: String,
}

/// What the caller should do with a request carrying a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextAction {
    /// First time (or a dead claim taken over): run it, then `complete` in the effect's tx.
    Start,
    /// Done before: answer with this.
    Replay(SavedResponse),
    /// The first request with this key is still running: 409.
    InFlight,
    /// The key was used with a different request: 422.
    Mismatch,
}

/// Idempotency keys stored in the service's database.
#[derive(Debug, Clone)]
pub struct IdempotencyStore {
    /// How long a completed key is remembered.
    ttl: Duration,
    /// How long an in-flight claim blocks others before it may be taken over.
    lease: Duration,
}

impl IdempotencyStore {
    pub fn new(ttl: Duration, lease: Duration) -> Self {
        Self { ttl, lease }
    }

    /// Claims `key` for a request with `fingerprint` inside `tx`, or says why not.
    ///
    /// The claim commits with the effect and its stored response (see [`Self::run`]), so no
    /// committed row is ever a bare claim: a concurrent repeat on PostgreSQL waits on the key's
    /// unique-index lock until the first request commits (then replays it) or rolls back (then
    /// runs itself); SQLite's single writer serialises them the same way. Rows without a response
    /// are left only by an older protocol (a claim in its own transaction); a live one answers
    /// 409, an expired one is taken over.
    pub async fn claim(
        &self,
        tx: &mut Tx,
        scope: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<NextAction, sqlx::Error> {
        let now = now_ms();
        let lease_until = now + self.lease.as_millis() as i64;
        // One statement claims a new key or replaces an expired one (same syntax on SQLite and
        // PostgreSQL); a live key is left alone and read below.
        let inserted = sqlx::query(
            "INSERT INTO idempotency (scope, idem_key, fingerprint, locked_until, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, idem_key) DO UPDATE SET \
             fingerprint = excluded.fingerprint, status_code = NULL, response_body = NULL, \
             locked_until = excluded.locked_until, created_at = excluded.created_at, \
             expires_at = excluded.expires_at \
             WHERE idempotency.expires_at < excluded.created_at",
        )
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .bind(lease_until)
        .bind(now)
        .bind(now + self.ttl.as_millis() as i64)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(NextAction::Start);
        }
        // The conflicting row exists and is committed (the insert waited for it): no janitor can
        // purge it under our feet, since it is not expired.
        let row = sqlx::query(
            "SELECT fingerprint, status_code, response_body, locked_until FROM idempotency \
             WHERE scope = $1 AND idem_key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_one(&mut **tx)
        .await?;
        let stored_fingerprint: String = row.try_get("fingerprint")?;
        if stored_fingerprint != fingerprint {
            return Ok(NextAction::Mismatch);
        }
        let status: Option<i64> = row.try_get("status_code")?;
        if let Some(status) = status {
            let body: Option<String> = row.try_get("response_body")?;
            return Ok(NextAction::Replay(SavedResponse {
                status: status as u16,
                body: body.unwrap_or_default(),
            }));
        }
        let locked_until: i64 = row.try_get("locked_until")?;
        if locked_until > now {
            return Ok(NextAction::InFlight);
        }
        // A bare claim whose process died mid-way: take it over, once.
        let taken = sqlx::query(
            "UPDATE idempotency SET locked_until = $1 WHERE scope = $2 AND idem_key = $3 \
             AND status_code IS NULL AND locked_until = $4",
        )
        .bind(lease_until)
        .bind(scope)
        .bind(key)
        .bind(locked_until)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(if taken == 1 {
            NextAction::Start
        } else {
            NextAction::InFlight
        })
    }

    /// Stores the response inside the transaction that made the effect.
    pub async fn complete(
        &self,
        tx: &mut Tx,
        scope: &str,
        key: &str,
        response: &SavedResponse,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE idempotency SET status_code = $1, response_body = $2 WHERE scope = $3 AND idem_key = $4",
        )
        .bind(i64::from(response.status))
        .bind(&response.body)
        .bind(scope)
        .bind(key)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Runs `effect` in `tx` (which holds the key's claim, see [`Self::claim`]), stores its
    /// response under the key and commits: claim, effect and response land together or not at
    /// all, so a failure leaves nothing behind and a retry runs at once.
    ///
    /// `effect` returns the response to store and anything else the handler wants back. It is a
    /// closure returning a boxed future (rather than an async closure) because the handler's
    /// future must be `Send`, which an async closure's future cannot yet promise.
    pub async fn run<T, F>(
        &self,
        mut tx: Tx,
        scope: &str,
        key: &str,
        effect: F,
    ) -> Result<(SavedResponse, T), crate::http::ApiError>
    where
        F: for<'t> FnOnce(
            &'t mut Tx,
        ) -> futures::future::BoxFuture<
            't,
            Result<(SavedResponse, T), sqlx::Error>,
        >,
    {
        async {
            let (saved, extra) = effect(&mut tx).await?;
            self.complete(&mut tx, scope, key, &saved).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>((saved, extra))
        }
        .await
        .map_err(crate::http::ApiError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::DatabaseSettings, storage::Db};

    async fn store(ttl: Duration) -> (IdempotencyStore, Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = DatabaseSettings::new(format!("sqlite://{}/i.db", dir.path().display()));
        let db = Db::connect_and_migrate(&settings, sqlx::migrate::Migrator::DEFAULT)
            .await
            .expect("db");
        (IdempotencyStore::new(ttl, Duration::from_secs(30)), db, dir)
    }

    /// A claim committed on its own: what the older protocol left when its process died.
    async fn claim(store: &IdempotencyStore, db: &Db, key: &str, fingerprint: &str) -> NextAction {
        let mut tx = db.begin().await.expect("begin");
        let next = store
            .claim(&mut tx, "s", key, fingerprint)
            .await
            .expect("claim");
        tx.commit().await.expect("commit");
        next
    }

    async fn finish(store: &IdempotencyStore, db: &Db, key: &str) {
        let mut tx = db.begin().await.expect("begin");
        let saved = SavedResponse {
            status: 201,
            body: "{}".into(),
        };
        store
            .complete(&mut tx, "s", key, &saved)
            .await
            .expect("complete");
        tx.commit().await.expect("commit");
    }

    #[tokio::test]
    async fn a_live_key_replays_or_refuses_and_an_expired_one_starts_over() {
        let (live, db, _dir) = store(Duration::from_secs(3600)).await;
        assert_eq!(claim(&live, &db, "k", "f1").await, NextAction::Start);
        assert_eq!(claim(&live, &db, "k", "f1").await, NextAction::InFlight);
        finish(&live, &db, "k").await;
        assert!(matches!(
            claim(&live, &db, "k", "f1").await,
            NextAction::Replay(_)
        ));
        assert_eq!(claim(&live, &db, "k", "f2").await, NextAction::Mismatch);

        let (expiring, db, _dir) = store(Duration::from_millis(0)).await;
        assert_eq!(claim(&expiring, &db, "k", "f1").await, NextAction::Start);
        finish(&expiring, &db, "k").await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            claim(&expiring, &db, "k", "f2").await,
            NextAction::Start,
            "an expired key is a new key, whatever its old request"
        );
        let rows: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM idempotency WHERE status_code IS NULL")
                .fetch_one(db.pool())
                .await
                .expect("count");
        assert_eq!(
            rows, 1,
            "the expired row was replaced, its stored answer gone"
        );
    }

    #[tokio::test]
    async fn a_failed_effect_takes_its_claim_with_it_and_a_retry_runs() {
        let (store, db, _dir) = store(Duration::from_secs(3600)).await;
        let mut tx = db.begin().await.expect("begin");
        assert_eq!(
            store.claim(&mut tx, "s", "k", "f1").await.expect("claim"),
            NextAction::Start
        );
        let failed = store
            .run(tx, "s", "k", |_tx| {
                Box::pin(async { Err::<(SavedResponse, ()), _>(sqlx::Error::PoolClosed) })
            })
            .await;
        assert!(failed.is_err());
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idempotency")
            .fetch_one(db.pool())
            .await
            .expect("count");
        assert_eq!(rows, 0, "nothing of the failed request was committed");
        let mut tx = db.begin().await.expect("begin");
        assert_eq!(
            store.claim(&mut tx, "s", "k", "f1").await.expect("claim"),
            NextAction::Start,
            "the retry runs at once"
        );
    }
}
