//! Runs one service inside this process: the child side of [`crate::stack`]. The binary thereby
//! carries all five services, so one `cargo build -p faultline` builds everything `up` starts.

use faultline_kit::app::run_main;

/// The services, in start order.
pub const ALL: [&str; 5] = [
    "payment",
    "inventory",
    "reservation",
    "analytics",
    "gateway",
];

/// Runs service `name` until SIGTERM or Ctrl-C, configured by `$FAULTLINE_CONFIG` and the
/// `FAULTLINE__…` environment.
pub async fn run(name: &str) -> anyhow::Result<()> {
    match name {
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
