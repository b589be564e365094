//! The reservation service process.

use reservation::{configuration::Settings, startup::Application};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: Settings = faultline_kit::config::load(None)?;
    let telemetry = faultline_kit::telemetry::init(&settings.common.service_name)?;
    let shutdown = faultline_kit::shutdown::on_signal();
    let result = match Application::build(settings).await {
        Ok(app) => app.run_until_stopped(shutdown).await,
        Err(error) => Err(error),
    };
    if let Err(error) = &result {
        tracing::error!(error = %format!("{error:#}"), "reservation stopped with an error");
    }
    telemetry.shutdown().await;
    result
}
