//! The analytics service process.

use analytics::{configuration::Settings, startup::Application};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    faultline_kit::app::run_main(|settings: Settings, shutdown| async move {
        Application::build(settings)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
    .await
}
