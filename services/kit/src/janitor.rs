//! Retention for the kit's own tables, so they do not grow for ever:
//!
//! - published outbox rows, an hour after publication (kept that long for inspection);
//! - inbox rows, after seven days — Kafka's default retention, so no redelivery can be older
//!   than the row that dedupes it (raise it with the topics' retention);
//! - idempotency keys, once expired.
//!
//! Runs every minute as one of the service's tasks.

use std::time::Duration;

use crate::{
    shutdown::CancellationToken,
    storage::{Db, now_ms},
};

/// How long each kind of row is kept.
#[derive(Debug, Clone)]
pub struct Retention {
    pub published_outbox: Duration,
    pub inbox: Duration,
    pub interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            published_outbox: Duration::from_secs(3600),
            inbox: Duration::from_secs(7 * 24 * 3600),
            interval: Duration::from_secs(60),
        }
    }
}

/// Rows deleted by one pass: (outbox, inbox, idempotency).
pub async fn purge_once(db: &Db, retention: &Retention) -> Result<(u64, u64, u64), sqlx::Error> {
    let now = now_ms();
    let outbox =
        sqlx::query("DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1")
            .bind(now - retention.published_outbox.as_millis() as i64)
            .execute(db.pool())
            .await?
            .rows_affected();
    let inbox = sqlx::query("DELETE FROM inbox WHERE received_at < $1")
        .bind(now - retention.inbox.as_millis() as i64)
        .execute(db.pool())
        .await?
        .rows_affected();
    let keys = sqlx::query("DELETE FROM idempotency WHERE expires_at < $1")
        .bind(now)
        .execute(db.pool())
        .await?
        .rows_affected();
    Ok((outbox, inbox, keys))
}

/// Purges every `retention.interval` until `shutdown`.
pub async fn run(db: Db, retention: Retention, shutdown: CancellationToken) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(retention.interval) => {}
        }
        match purge_once(&db, &retention).await {
            Ok((0, 0, 0)) => {}
            Ok((outbox, inbox, keys)) => {
                tracing::info!(outbox, inbox, idempotency_keys = keys, "retention purge")
            }
            Err(error) => tracing::warn!(%error, "retention purge failed; retrying next round"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseSettings;

    #[tokio::test]
    async fn old_rows_go_and_recent_ones_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = DatabaseSettings::new(format!("sqlite://{}/j.db", dir.path().display()));
        let db = Db::connect_and_migrate(&settings, sqlx::migrate::Migrator::DEFAULT)
            .await
            .expect("db");
        let now = now_ms();
        let day = 24 * 3600 * 1000;
        for (id, published) in [
            ("old", Some(now - 2 * 3600 * 1000)),
            ("recent", Some(now - 60_000)),
            ("pending", None),
        ] {
            sqlx::query("INSERT INTO outbox (id, topic, message_key, payload, headers, created_at, published_at) VALUES ($1, 't', 'k', '{}', '{}', $2, $3)")
                .bind(id)
                .bind(now - 3 * 3600 * 1000)
                .bind(published)
                .execute(db.pool())
                .await
                .expect("outbox row");
        }
        for (id, at) in [("old", now - 8 * day), ("recent", now - day)] {
            sqlx::query("INSERT INTO inbox (consumer, message_id, topic, received_at) VALUES ('c', $1, 't', $2)")
                .bind(id)
                .bind(at)
                .execute(db.pool())
                .await
                .expect("inbox row");
        }
        for (key, expires) in [("expired", now - 1), ("live", now + day)] {
            sqlx::query("INSERT INTO idempotency (scope, idem_key, fingerprint, locked_until, created_at, expires_at) VALUES ('s', $1, 'f', 0, 0, $2)")
                .bind(key)
                .bind(expires)
                .execute(db.pool())
                .await
                .expect("key row");
        }
        assert_eq!(
            purge_once(&db, &Retention::default()).await.expect("purge"),
            (1, 1, 1)
        );
        let outbox: Vec<String> = sqlx::query_scalar("SELECT id FROM outbox ORDER BY id")
            .fetch_all(db.pool())
            .await
            .expect("ids");
        assert_eq!(
            outbox,
            ["pending", "recent"],
            "an unpublished row is never purged"
        );
    }
}
