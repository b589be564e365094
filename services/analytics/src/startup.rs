//! Builds the analytics application identically for `main` and the tests.

use faultline_contracts::topics;
use faultline_kit::{
    app::{Messaging, Runner},
    readiness::Readiness,
    shutdown::CancellationToken,
    storage::Db,
};
use tokio::net::TcpListener;

use crate::{
    configuration::Settings,
    handler::Projection,
    routes::{self, AppState},
};

/// A built, not yet running, analytics service.
pub struct Application {
    settings: Settings,
    listener: TcpListener,
    db: Db,
    messaging: Messaging,
}

impl Application {
    /// Connects, migrates, binds the port.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db =
            Db::connect_and_migrate(settings.common.database()?, sqlx::migrate!("./migrations"))
                .await?;
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

    /// Runs the HTTP server and the booking-events consumer until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut runner = Runner::new(shutdown);
        let readiness = Readiness::new();
        // Registered before the server starts, so /ready never answers 200 too early. The read
        // model's `freshness` is the same lag figure `/admin/load` reports.
        let consumer =
            self.messaging
                .consumer(&self.db, &[topics::BOOKING_EVENTS], Projection, &readiness);
        let lag = consumer.lag();
        let router = faultline_kit::http::router_layers(
            routes::router(AppState {
                db: self.db.clone(),
                lag,
                readiness,
            }),
            self.settings.common.http.body_limit_bytes,
        );
        runner.spawn_http(self.listener, router);
        runner.spawn_consumer(consumer);
        runner.spawn_janitor(&self.db);
        runner.run_then_close(&self.db).await
    }
}
