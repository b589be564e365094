//! `spawn_app`: a broker, inventory, payment and reservation built by their own `startup`s, and
//! the gateway in front of them, as `main` builds it.

use std::time::Duration;

use faultline_harness::{Backend, broker::EmbeddedBroker};
use faultline_kit::config::CommonSettings;
use gateway::{
    auth::Tokens,
    configuration::{AuthSettings, RateLimitSettings, Settings, UpstreamSettings},
    startup::Application,
};

pub const SECRET: &str = "gateway-test-secret";

pub struct TestApp {
    pub address: String,
    pub inventory: String,
    pub http: reqwest::Client,
    pub tokens: Tokens,
    _running: Vec<faultline_harness::Running>,
    _broker: EmbeddedBroker,
    _dir: tempfile::TempDir,
}

fn common(name: &str, url: String, broker: &EmbeddedBroker) -> CommonSettings {
    faultline_harness::service_settings(name, Some(url), Some(broker.kafka_settings()))
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    faultline_harness::init_test_log();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = EmbeddedBroker::start(3).await.expect("broker");
    let db = |service| faultline_harness::database_url(backend, dir.path(), service);

    let inventory = inventory::startup::Application::build(inventory::configuration::Settings {
        common: common("inventory", db("inventory").await.expect("db"), &broker),
        seed: inventory::configuration::SeedSettings {
            concerts: vec![inventory::configuration::ConcertSeed {
                id: "concert-1".into(),
                title: "Gateway Live".into(),
                schedules: vec![inventory::configuration::ScheduleSeed {
                    id: "sched-1".into(),
                    starts_at: "2027-01-01T19:00:00Z".into(),
                    seats: 3,
                    price: 100,
                }],
            }],
        },
    })
    .await
    .expect("inventory");
    let inventory_url = format!("http://127.0.0.1:{}", inventory.port());

    let mut payment_common = common("payment", db("payment").await.expect("db"), &broker);
    payment_common.kafka = None;
    let payment = payment::startup::Application::build(payment::configuration::Settings {
        common: payment_common,
        seed: payment::configuration::SeedSettings {
            wallets: vec![payment::configuration::WalletSeed {
                user_id: "user-1".into(),
                points: 700,
            }],
        },
        idempotency_ttl_secs: 3600,
    })
    .await
    .expect("payment");
    let payment_url = format!("http://127.0.0.1:{}", payment.port());

    let reservation =
        reservation::startup::Application::build(reservation::configuration::Settings {
            common: common("reservation", db("reservation").await.expect("db"), &broker),
            payment: reservation::configuration::PaymentSettings::new(payment_url.clone()),
            saga: reservation::configuration::SagaSettings::default(),
            admission: faultline_kit::admission::AdmissionSettings::default(),
            idempotency_ttl_secs: 3600,
        })
        .await
        .expect("reservation");
    let reservation_url = format!("http://127.0.0.1:{}", reservation.port());

    let mut running = vec![
        faultline_harness::Running::spawn(|t| inventory.run_until_stopped(t)),
        faultline_harness::Running::spawn(|t| payment.run_until_stopped(t)),
        faultline_harness::Running::spawn(|t| reservation.run_until_stopped(t)),
    ];

    let settings = Settings {
        common: faultline_harness::service_settings("gateway", None, None),
        auth: AuthSettings {
            secret: SECRET.to_owned().into(),
            token_ttl_secs: 60,
        },
        upstream: UpstreamSettings {
            reservation_url,
            inventory_url: inventory_url.clone(),
            payment_url,
            client: Default::default(),
        },
        rate_limit: RateLimitSettings::default(),
    };
    let tokens = gateway::startup::tokens(&settings);
    let app = Application::build(settings).await.expect("gateway");
    let address = format!("http://127.0.0.1:{}", app.port());
    running.push(faultline_harness::Running::spawn(|t| {
        app.run_until_stopped(t)
    }));
    TestApp {
        address,
        inventory: inventory_url,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        tokens,
        _running: running,
        _broker: broker,
        _dir: dir,
    }
}

impl TestApp {
    /// `GET path` on the gateway with `authorization` as the whole header, if any.
    pub async fn get_with(&self, path: &str, authorization: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.address));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send().await.expect("GET")
    }

    /// `GET path` on the gateway as `user`, with a token the gateway itself would mint.
    pub async fn get_as(&self, user: &str, path: &str) -> reqwest::Response {
        let token = self.tokens.mint(user).expect("mint");
        self.get_with(path, Some(&format!("Bearer {token}"))).await
    }
}

/// Asserts a problem+json answer with `status` and returns its `detail`.
pub async fn problem(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: serde_json::Value = response.json().await.expect("problem json");
    body["detail"].as_str().unwrap_or_default().to_owned()
}
