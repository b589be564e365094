//! Builds the payment application identically for `main` and the tests.

use std::time::Duration;

use faultline_kit::{
    app::Runner, idempotency::IdempotencyStore, shutdown::CancellationToken, storage::Db,
};
use tokio::net::TcpListener;

use crate::{
    configuration::Settings,
    ledger,
    routes::{self, AppState},
};

/// A built, not yet running, payment service.
pub struct Application {
    settings: Settings,
    listener: TcpListener,
    db: Db,
}

impl Application {
    /// Connects, migrates, seeds the wallets, binds the port.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db =
            Db::connect_and_migrate(settings.common.database()?, sqlx::migrate!("./migrations"))
                .await?;
        ledger::seed(&db, &settings.seed).await?;
        let listener = faultline_kit::app::bind(&settings.common).await?;
        Ok(Self {
            settings,
            listener,
            db,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Runs the HTTP server until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let common = &self.settings.common;
        let state = AppState {
            // Payment has no consumer: ready as soon as it serves.
            readiness: faultline_kit::readiness::Readiness::new(),
            db: self.db.clone(),
            idempotency: IdempotencyStore::new(
                Duration::from_secs(self.settings.idempotency_ttl_secs),
                Duration::from_secs(30),
            ),
        };
        let router =
            faultline_kit::http::router_layers(routes::router(state), common.http.body_limit_bytes);
        let mut runner = Runner::new(shutdown);
        runner.spawn_http(self.listener, router);
        runner.spawn_janitor(&self.db);
        runner.run_then_close(&self.db).await
    }
}
