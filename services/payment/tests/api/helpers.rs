//! `spawn_app`: a database and the payment application, as `main` builds it.

use faultline_harness::Backend;
use faultline_kit::config::{CommonSettings, HttpSettings};
use payment::{
    configuration::{SeedSettings, Settings, WalletSeed},
    startup::Application,
};

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub http: reqwest::Client,
    _running: faultline_harness::Running,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    faultline_harness::init_test_log();
    let dir = tempfile::tempdir().expect("tempdir");
    let database_url = faultline_harness::database_url(backend, dir.path(), "payment")
        .await
        .expect("database");
    let common = faultline_harness::service_settings("payment", Some(database_url.clone()), None);
    let settings = Settings {
        common: CommonSettings {
            // A small body limit, so the 413 test needs no huge body.
            http: HttpSettings {
                body_limit_bytes: 4 * 1024,
                ..common.http
            },
            ..common
        },
        seed: SeedSettings {
            wallets: vec![
                WalletSeed {
                    user_id: "alice".into(),
                    points: 500,
                },
                WalletSeed {
                    user_id: "bob".into(),
                    points: 100,
                },
            ],
        },
        idempotency_ttl_secs: 3600,
    };
    let app = Application::build(settings).await.expect("build");
    let address = format!("http://127.0.0.1:{}", app.port());
    let running = faultline_harness::Running::spawn(|stop| app.run_until_stopped(stop));
    TestApp {
        address,
        database_url,
        http: reqwest::Client::new(),
        _running: running,
        _dir: dir,
    }
}

impl TestApp {
    pub async fn charge(&self, key: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}/charges", self.address))
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .expect("POST /charges")
    }

    pub async fn balance(&self, user: &str) -> i64 {
        let wallet: serde_json::Value = self
            .http
            .get(format!("{}/wallets/{user}", self.address))
            .send()
            .await
            .expect("GET wallet")
            .json()
            .await
            .expect("wallet json");
        wallet["balance"].as_i64().expect("balance")
    }

    pub async fn summary(&self) -> faultline_contracts::http::PaymentSummary {
        self.http
            .get(format!("{}/admin/summary", self.address))
            .send()
            .await
            .expect("GET summary")
            .json()
            .await
            .expect("summary json")
    }
}

pub fn charge_body(user: &str, booking: &str, amount: i64) -> serde_json::Value {
    serde_json::json!({ "user_id": user, "booking_id": booking, "saga_id": format!("saga-{booking}"), "amount": amount })
}
