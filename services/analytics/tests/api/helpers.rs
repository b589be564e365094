//! `spawn_app`: a broker, a database and the analytics application, as `main` builds it.

use std::time::Duration;

use analytics::{configuration::Settings, startup::Application};
use faultline_contracts::{Message, http::AnalyticsSummary};
use faultline_harness::{Backend, broker::EmbeddedBroker};
use faultline_kit::messaging::{OutboundMessage, Producer};

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    producer: Producer,
    _running: faultline_harness::Running,
    pub broker: EmbeddedBroker,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    faultline_harness::init_test_log();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = EmbeddedBroker::start(3).await.expect("broker");
    let url = faultline_harness::database_url(backend, dir.path(), "analytics")
        .await
        .expect("database");
    let settings = Settings {
        common: faultline_harness::service_settings(
            "analytics",
            Some(url),
            Some(broker.kafka_settings()),
        ),
    };
    let app = Application::build(settings).await.expect("build");
    let address = format!("http://127.0.0.1:{}", app.port());
    let running = faultline_harness::Running::spawn(|stop| app.run_until_stopped(stop));
    let producer = Producer::new(&broker.kafka_settings(), "test").expect("producer");
    TestApp {
        address,
        http: reqwest::Client::new(),
        producer,
        _running: running,
        broker,
        _dir: dir,
    }
}

impl TestApp {
    /// Publishes `message` to its topic, as reservation's outbox would.
    pub async fn publish<M: Message>(&self, message: &M) {
        self.producer
            .send_message(&OutboundMessage::new(message))
            .await
            .expect("send");
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("GET")
    }

    pub async fn summary(&self) -> AnalyticsSummary {
        self.get("/stats/summary")
            .await
            .json()
            .await
            .expect("summary json")
    }

    /// Waits until the consumer has applied `events` events.
    pub async fn applied(&self, events: i64) -> AnalyticsSummary {
        faultline_harness::wait::eventually(
            &format!("{events} events applied"),
            Duration::from_secs(30),
            || async {
                let summary = self.summary().await;
                if summary.events_applied >= events {
                    Ok(summary)
                } else {
                    Err(format!("{summary:?}"))
                }
            },
        )
        .await
    }
}
