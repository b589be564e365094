//! Builds the inventory application identically for `main` and the tests.

use faultline_contracts::topics;
use faultline_kit::{
    app::{Messaging, Runner},
    shutdown::CancellationToken,
    storage::Db,
};
use tokio::net::TcpListener;

use crate::{
    configuration::Settings,
    handler::CommandHandler,
    routes::{self, AppState},
    store,
};

/// A built, not yet running, inventory service.
pub struct Application {
    settings: Settings,
    listener: TcpListener,
    db: Db,
    messaging: Messaging,
}

impl Application {
    /// Connects, migrates, seeds, binds the port.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db =
            Db::connect_and_migrate(settings.common.database()?, sqlx::migrate!("./migrations"))
                .await?;
        store::seed(&db, &settings.seed).await?;
        let messaging = Messaging::new(&settings.common)?;
        let listener = faultline_kit::app::bind(&settings.common).await?;
        Ok(Self {
            settings,
            listener,
            db,
            messaging,
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

    /// Runs the HTTP server, the outbox relay and the command consumer until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let common = &self.settings.common;
        let mut runner = Runner::new(shutdown);
        let readiness = faultline_kit::readiness::Readiness::new();
        // Registered before the server starts, so /ready never answers 200 too early.
        let consumer = self.messaging.consumer(
            &self.db,
            &[topics::INVENTORY_COMMANDS],
            CommandHandler {
                outbox: self.messaging.outbox.clone(),
            },
            &readiness,
        );
        let router = faultline_kit::http::router_layers(
            routes::router(AppState {
                db: self.db.clone(),
                readiness: readiness.clone(),
            }),
            common.http.body_limit_bytes,
        );
        runner.spawn_http(self.listener, router);
        runner.spawn_relay(self.messaging.relay(&self.db));
        runner.spawn_consumer(consumer);
        runner.spawn_janitor(&self.db);
        runner.run_then_close(&self.db).await
    }
}
