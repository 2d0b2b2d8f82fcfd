//! The `opsdeck` command line (DESIGN.md "The contract": CLI).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "opsdeck", version, about = "Deploy, roll back, rotate secrets, sweep and tail logs of systemd apps — with an audit log")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the dashboard.
    Serve {
        #[arg(long, env = "OPSDECK_CONFIG", default_value = "/etc/opsdeck/opsdeck.toml")]
        config: PathBuf,
    },
    /// Create a demo app and config, then serve them on http://127.0.0.1:8080 with a dev login.
    Demo {
        #[arg(long, default_value = "opsdeck-demo")]
        dir: PathBuf,
    },
    /// Validate a config file: prints every error at once, or `ok`.
    Check {
        #[arg(long, env = "OPSDECK_CONFIG", default_value = "/etc/opsdeck/opsdeck.toml")]
        config: PathBuf,
    },
    /// Create or upgrade the database, then exit.
    Migrate {
        #[arg(long, env = "OPSDECK_CONFIG", default_value = "/etc/opsdeck/opsdeck.toml")]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match opsdeck::config::Config::load(&config) {
            Ok(_) => {
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprint!("{e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("not built yet");
            ExitCode::FAILURE
        }
    }
}
