//! `spawn_app`: a broker, a database and the inventory application, as `main` builds it.

use faultline_harness::{Backend, broker::EmbeddedBroker};
use faultline_kit::{messaging::Producer, storage::Db};
use inventory::{
    configuration::{ConcertSeed, ScheduleSeed, SeedSettings, Settings},
    startup::Application,
};

pub struct TestApp {
    /// First: the application stops before anything it uses goes.
    _running: faultline_harness::Running,
    pub address: String,
    pub db: Db,
    pub broker: EmbeddedBroker,
    pub producer: Producer,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    faultline_harness::init_test_log();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = EmbeddedBroker::start(3).await.expect("broker");
    let url = faultline_harness::database_url(backend, dir.path(), "inventory")
        .await
        .expect("database");
    let settings = Settings {
        common: faultline_harness::service_settings(
            "inventory",
            Some(url),
            Some(broker.kafka_settings()),
        ),
        seed: SeedSettings {
            concerts: vec![ConcertSeed {
                id: "concert-1".into(),
                title: "Test Concert".into(),
                schedules: vec![ScheduleSeed {
                    id: "sched-1".into(),
                    starts_at: "2027-01-01T19:00:00Z".into(),
                    seats: 5,
                    price: 100,
                }],
            }],
        },
    };
    let app = Application::build(settings).await.expect("build");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.db().clone();
    let running = faultline_harness::Running::spawn(|stop| app.run_until_stopped(stop));
    let producer = Producer::new(&broker.kafka_settings(), "test").expect("producer");
    TestApp {
        address,
        db,
        broker,
        producer,
        http: reqwest::Client::new(),
        _running: running,
        _dir: dir,
    }
}

impl TestApp {
    pub async fn seat_status(&self, seat_id: &str) -> String {
        let seat: serde_json::Value = self
            .http
            .get(format!("{}/seats/{seat_id}", self.address))
            .send()
            .await
            .expect("GET seat")
            .json()
            .await
            .expect("seat json");
        seat["status"].as_str().unwrap_or_default().to_owned()
    }

    pub async fn count(&self, sql: &'static str, bind: &str) -> i64 {
        sqlx::query_scalar(sql)
            .bind(bind.to_owned())
            .fetch_one(self.db.pool())
            .await
            .expect("count")
    }
}
