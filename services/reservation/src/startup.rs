//! Builds the reservation application identically for `main` and the tests.

use std::time::Duration;

use faultline_contracts::topics;
use faultline_kit::{
    app::{Messaging, Runner},
    idempotency::IdempotencyStore,
    shutdown::CancellationToken,
    storage::Db,
};
use tokio::{net::TcpListener, sync::mpsc};

use crate::{
    configuration::Settings,
    handler::ReplyHandler,
    payment_client::PaymentClient,
    routes::{self, AppState},
    saga::{self, Orchestrator},
};

/// A built, not yet running, reservation service.
pub struct Application {
    settings: Settings,
    listener: TcpListener,
    db: Db,
    messaging: Messaging,
    orchestrator: Orchestrator,
    triggers: mpsc::UnboundedReceiver<crate::saga::orchestrator::Wake>,
}

impl Application {
    /// Connects, migrates, binds the port, builds the payment client.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db =
            Db::connect_and_migrate(settings.common.database()?, sqlx::migrate!("./migrations"))
                .await?;
        let messaging = Messaging::new(&settings.common)?;
        let payment = PaymentClient::new(
            &settings.payment.base_url,
            &settings.payment.client.policy(),
        )?;
        let (orchestrator, triggers) = Orchestrator::new(
            &settings.common.instance_id(),
            db.clone(),
            messaging.outbox.clone(),
            payment,
            settings.saga.clone(),
        );
        let listener = faultline_kit::app::bind(&settings.common).await?;
        Ok(Self {
            settings,
            listener,
            db,
            messaging,
            orchestrator,
            triggers,
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

    /// Runs the HTTP server, the outbox relay, the reply consumer and the saga timer until
    /// `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let common = &self.settings.common;
        let mut runner = Runner::new(shutdown);
        let readiness = faultline_kit::readiness::Readiness::new();
        // Registered before the server starts, so /ready never answers 200 too early.
        let consumer = self.messaging.consumer(
            &self.db,
            &[topics::INVENTORY_EVENTS],
            ReplyHandler {
                orchestrator: self.orchestrator.clone(),
            },
            &readiness,
        );
        let admission = faultline_kit::admission::Admission::new(
            Default::default(),
            self.settings.admission.clone(),
        );
        readiness.load().set_in_flight(admission.in_flight());
        let router = faultline_kit::http::router_layers(
            routes::router(AppState {
                idempotency: IdempotencyStore::new(
                    Duration::from_secs(self.settings.idempotency_ttl_secs),
                    Duration::from_secs(30),
                ),
                orchestrator: self.orchestrator.clone(),
                readiness: readiness.clone(),
                admission: admission.clone(),
            }),
            common.http.body_limit_bytes,
        );
        runner.spawn_http(self.listener, router);
        runner.spawn_relay(self.messaging.relay(&self.db));
        runner.spawn_consumer(consumer);
        runner.spawn(
            "saga-timer",
            saga::timer::run(self.orchestrator.clone(), self.triggers, runner.shutdown()),
        );
        runner.spawn_janitor(&self.db);
        let (db, token) = (self.db.clone(), runner.shutdown());
        runner.spawn("admission", async move {
            admission
                .refresh(|| saga::store::in_flight(&db), token)
                .await
        });
        runner.run_then_close(&self.db).await
    }
}
