//! Runs one service inside this process: the child side of [`crate::stack`]. The binary thereby
//! carries all five services, so one `cargo build -p faultline` builds everything `up` starts.

use faultline_contracts::topology::Service;
use faultline_kit::app::run_main;

/// The processes of a stack, in start order: the telemetry capture first (so nothing the
/// services export is lost, and it stops last), then the five services.
pub const ALL: [&str; 6] = [
    CAPTURE,
    Service::ALL_NAMES[0],
    Service::ALL_NAMES[1],
    Service::ALL_NAMES[2],
    Service::ALL_NAMES[3],
    Service::ALL_NAMES[4],
];

/// The telemetry capture (the embedded stand-in for Tempo and Loki).
pub const CAPTURE: &str = "capture";

/// The embedded Toxiproxy: started before everything else, stopped after everything else.
pub const TOXIPROXY: &str = "toxiproxy";

/// The Kafka-protocol broker (`faultline-broker`): started after the proxy, stopped after the
/// services.
pub const BROKER: &str = "broker";

/// The broker's settings: `http` is where its Kafka listener binds, `advertised` the address it
/// tells clients (its proxy's), `partitions` those of every topic.
#[derive(Debug, Clone, serde::Deserialize)]
struct BrokerSettings {
    #[serde(flatten)]
    common: faultline_kit::config::CommonSettings,
    advertised: String,
    partitions: i32,
}

impl faultline_kit::app::ServiceSettings for BrokerSettings {
    fn common(&self) -> &faultline_kit::config::CommonSettings {
        &self.common
    }
}

/// The proxy's settings: only the common sections (it keeps no database and uses no broker).
#[derive(Debug, Clone, serde::Deserialize)]
struct ProxySettings {
    #[serde(flatten)]
    common: faultline_kit::config::CommonSettings,
}

impl faultline_kit::app::ServiceSettings for ProxySettings {
    fn common(&self) -> &faultline_kit::config::CommonSettings {
        &self.common
    }
}

/// The capture's settings: the common sections and how much it keeps (`[retention]`,
/// `FAULTLINE__RETENTION__MAX_SPANS`…).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct CaptureSettings {
    #[serde(flatten)]
    pub common: faultline_kit::config::CommonSettings,
    #[serde(default)]
    pub retention: faultline_capture::store::Retention,
}

impl faultline_kit::app::ServiceSettings for CaptureSettings {
    fn common(&self) -> &faultline_kit::config::CommonSettings {
        &self.common
    }
}

/// Runs service `name` until SIGTERM or Ctrl-C, configured by `$FAULTLINE_CONFIG` and the
/// `FAULTLINE__…` environment.
pub async fn run(name: &str) -> anyhow::Result<()> {
    match name {
        TOXIPROXY => {
            run_main(|s: ProxySettings, stop| async move {
                let listener = faultline_kit::app::bind(&s.common).await?;
                faultline_toxiproxy::server::serve(listener, async move { stop.cancelled().await })
                    .await
            })
            .await
        }
        BROKER => {
            run_main(|s: BrokerSettings, stop| async move {
                let listener = faultline_kit::app::bind(&s.common).await?;
                let config = faultline_harness::broker::config(&s.advertised, s.partitions)?;
                Ok(
                    faultline_broker::serve(
                        listener,
                        config,
                        async move { stop.cancelled().await },
                    )
                    .await?,
                )
            })
            .await
        }
        CAPTURE => {
            run_main(|s: CaptureSettings, stop| async move {
                let listener = faultline_kit::app::bind(&s.common).await?;
                let store = faultline_capture::store::Store::new(s.retention);
                Ok(faultline_capture::server::serve(listener, store, stop).await?)
            })
            .await
        }
        "payment" => {
            run_main(|s: payment::configuration::Settings, stop| async move {
                payment::startup::Application::build(s)
                    .await?
                    .run_until_stopped(stop)
                    .await
            })
            .await
        }
        "inventory" => {
            run_main(|s: inventory::configuration::Settings, stop| async move {
                inventory::startup::Application::build(s)
                    .await?
                    .run_until_stopped(stop)
                    .await
            })
            .await
        }
        "reservation" => {
            run_main(|s: reservation::configuration::Settings, stop| async move {
                reservation::startup::Application::build(s)
                    .await?
                    .run_until_stopped(stop)
                    .await
            })
            .await
        }
        "analytics" => {
            run_main(|s: analytics::configuration::Settings, stop| async move {
                analytics::startup::Application::build(s)
                    .await?
                    .run_until_stopped(stop)
                    .await
            })
            .await
        }
        "gateway" => {
            run_main(|s: gateway::configuration::Settings, stop| async move {
                gateway::startup::Application::build(s)
                    .await?
                    .run_until_stopped(stop)
                    .await
            })
            .await
        }
        other => anyhow::bail!("no service {other:?} (one of {})", ALL.join(", ")),
    }
}
