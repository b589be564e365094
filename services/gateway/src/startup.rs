//! Builds the gateway identically for `main` and the tests.

use std::time::Duration;

use faultline_kit::{app::Runner, readiness::Readiness, shutdown::CancellationToken};
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;

use crate::{
    auth::{RateLimiter, Tokens},
    configuration::Settings,
    routes::{self, AppState},
    upstream::Upstreams,
};

/// A built, not yet running, gateway.
pub struct Application {
    settings: Settings,
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Builds the upstream clients and binds the port.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let state = AppState {
            tokens: tokens(&settings),
            rate_limiter: RateLimiter::new(&settings.rate_limit),
            upstreams: Upstreams::new(&settings.upstream)?,
            readiness: Readiness::new(),
            users: crate::users::Users::default(),
        };
        let listener = faultline_kit::app::bind(&settings.common).await?;
        Ok(Self {
            settings,
            listener,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Serves until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let router = faultline_kit::http::router_layers(
            routes::router(self.state),
            self.settings.common.http.body_limit_bytes,
        );
        let mut runner = Runner::new(shutdown);
        runner.spawn_http(self.listener, router);
        runner.run(Duration::from_secs(10)).await
    }
}

/// The token signer/verifier configured by `settings`.
pub fn tokens(settings: &Settings) -> Tokens {
    Tokens::new(
        settings.auth.secret.expose_secret().as_bytes(),
        Duration::from_secs(settings.auth.token_ttl_secs),
    )
}
