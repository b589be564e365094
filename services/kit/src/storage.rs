//! Storage: one sqlx `Any` pool that is either SQLite (the embedded default, one file per
//! service) or PostgreSQL (compose and CI, one database per service), behind the same code.
//!
//! Why `Any`: the services' SQL is written once in the common subset of both dialects (TEXT ids,
//! BIGINT epoch-millisecond timestamps, `$n` placeholders, `ON CONFLICT`, `RETURNING`); the few
//! places that differ ask [`Db::dialect`] (`FOR UPDATE SKIP LOCKED` exists only on PostgreSQL).
//!
//! Why SQLite gets one connection: SQLite has one writer at a time. With several pooled
//! connections, writers wait in SQLite's busy handler (sleeping up to 100 ms per retry), and a
//! deferred transaction that reads before it writes can fail with SQLITE_BUSY outright. A single
//! connection turns that into a fair FIFO queue in the pool, which is both faster and never busy.
//! Invariant that follows: code never acquires a second connection while holding a transaction.

use std::{str::FromStr, time::Duration};

use anyhow::Context as _;
use secrecy::ExposeSecret;
use sqlx::{
    Any, AnyPool, Executor as _,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
};

use crate::config::DatabaseSettings;

/// A transaction on the service's database.
pub type Tx = sqlx::Transaction<'static, Any>;

/// Which backend a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The backend a transaction runs on. Stores use it to write several tables in one
    /// statement on PostgreSQL (a data-modifying `WITH`), where every statement costs a server
    /// wake-up and a proxy hop; SQLite runs the same writes as separate statements, which cost
    /// it no network hop.
    pub fn of(tx: &Tx) -> Self {
        // `AnyConnection::backend_name` is sqlx's own name for the driver behind `Any`.
        let conn: &sqlx::AnyConnection = tx;
        if conn.backend_name() == "PostgreSQL" {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }
}

/// The service's database.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
}

impl Db {
    /// Connects (creating the SQLite file if needed) without running migrations.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let url = settings.url.expose_secret();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            anyhow::bail!(
                "unsupported database URL {} (use sqlite://FILE or postgres://…)",
                settings.redacted_url()
            );
        };
        let url = match dialect {
            Dialect::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("bad database URL {}", settings.redacted_url()))?;
        let pool_options = match dialect {
            Dialect::Sqlite => AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // WAL lets the file be read (by sqlite3, by a checker) while we write;
                        // NORMAL sync is durable across process crashes, which is what the
                        // chaos runner's SIGKILL exercises.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        Ok(())
                    })
                }),
            Dialect::Postgres => AnyPoolOptions::new().max_connections(settings.max_connections),
        };
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot connect to {}", settings.redacted_url()))?;
        Ok(Self { pool, dialect })
    }

    /// Connects and applies the kit's migrations (outbox, inbox, idempotency), then the
    /// service's own. The two sets share sqlx's history table with disjoint version numbers
    /// (kit below 100, services from 100), so each ignores the other's entries.
    pub async fn connect_and_migrate(
        settings: &DatabaseSettings,
        mut service_migrations: Migrator,
    ) -> anyhow::Result<Self> {
        let db = Self::connect(settings).await?;
        let mut kit_migrations = sqlx::migrate!("./migrations");
        kit_migrations.set_ignore_missing(true);
        service_migrations.set_ignore_missing(true);
        for migrator in [&kit_migrations, &service_migrations] {
            migrator
                .run(&db.pool)
                .await
                .with_context(|| format!("migrating {}", settings.redacted_url()))?;
        }
        Ok(db)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Begins a transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`), so a
    /// transaction that reads and then writes cannot fail half-way on lock upgrade.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch: every timestamp in every table is one of these.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_scheme_is_refused_with_the_url_in_the_error() {
        let err = Db::connect(&DatabaseSettings::new("mysql://x@y/z"))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("unsupported database URL"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn sqlite_transactions_commit_and_roll_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let db = Db::connect(&DatabaseSettings::new(url))
            .await
            .expect("connect");
        assert_eq!(db.dialect(), Dialect::Sqlite);
        sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY)")
            .execute(db.pool())
            .await
            .expect("create");
        let mut tx = db.begin().await.expect("begin");
        sqlx::query("INSERT INTO t (id) VALUES ($1)")
            .bind("a")
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.rollback().await.expect("rollback");
        let mut tx = db.begin().await.expect("begin");
        sqlx::query("INSERT INTO t (id) VALUES ($1)")
            .bind("b")
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM t")
            .fetch_all(db.pool())
            .await
            .expect("select");
        assert_eq!(ids, vec!["b".to_owned()]);
        let err = sqlx::query("INSERT INTO t (id) VALUES ($1)")
            .bind("b")
            .execute(db.pool())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, sqlx::Error::Database(db) if db.is_unique_violation()),
            "{err}"
        );
    }
}
