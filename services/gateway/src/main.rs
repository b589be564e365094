//! The gateway process: serves the public API, or mints a token for a user.

use clap::{Parser, Subcommand};
use gateway::{configuration::Settings, startup::Application};

#[derive(Parser)]
#[command(about = "Faultline's public API gateway")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Print a bearer token for a user, signed with the configured secret.
    MintToken {
        /// The user id (e.g. user-1).
        #[arg(long)]
        user: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => {
            faultline_kit::app::run_main(|settings: Settings, shutdown| async move {
                Application::build(settings)
                    .await?
                    .run_until_stopped(shutdown)
                    .await
            })
            .await
        }
        Command::MintToken { user } => {
            let settings: Settings = faultline_kit::config::load(None)?;
            let user =
                faultline_contracts::ids::UserId::parse(&user).map_err(anyhow::Error::msg)?;
            let token = gateway::startup::tokens(&settings).mint(user.as_str())?;
            #[allow(clippy::print_stdout)]
            {
                println!("{token}");
            }
            Ok(())
        }
    }
}
