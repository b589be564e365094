//! Fresh PostgreSQL databases, one per service per test.
//!
//! The server is `$FAULTLINE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it is unreachable the caller gets an
//! error that says so; tests turn it into a failure, never a skip.

use anyhow::Context as _;
use sqlx::{Connection as _, Executor as _, PgConnection};

/// The admin URL of the PostgreSQL server the tests use.
pub fn server_url() -> String {
    std::env::var("FAULTLINE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates an empty database named `fl_{prefix}_{random}` on the tests' server and returns its
/// URL.
pub async fn fresh_database(prefix: &str) -> anyhow::Result<String> {
    fresh_database_on(&server_url(), prefix).await
}

/// Creates an empty database named `fl_{prefix}_{random}` on `server` (an admin URL ending in a
/// database name, e.g. `postgres://postgres@127.0.0.1:5432/postgres`) and returns its URL.
pub async fn fresh_database_on(server: &str, prefix: &str) -> anyhow::Result<String> {
    let server = server.to_owned();
    let mut conn = PgConnection::connect(&server).await.with_context(|| {
        format!(
            "PostgreSQL is required and unreachable at {server} \
             (start it, or point FAULTLINE_TEST_POSTGRES_URL at one)"
        )
    })?;
    let name = format!(
        "fl_{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await
        .with_context(|| format!("creating database {name}"))?;
    let base = server
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(&server);
    Ok(format!("{base}/{name}"))
}
