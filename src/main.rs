//! The `opsdeck` command line (DESIGN.md "The contract": CLI). Every error is
//! one clear sentence on stderr and a non-zero exit code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use opsdeck::audit::{self, Event, FilterInput, Format};
use opsdeck::auth::{Actor, Role, Via, token};
use opsdeck::config::Config;

#[derive(Parser)]
#[command(
    name = "opsdeck",
    version,
    about = "Deploy, roll back, rotate secrets, sweep and tail logs of systemd apps — with an audit log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct ConfigArg {
    /// The configuration file.
    #[arg(
        long,
        env = "OPSDECK_CONFIG",
        default_value = "/etc/opsdeck/opsdeck.toml"
    )]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the dashboard.
    Serve(ConfigArg),
    /// Create a demo app and config, then serve them on http://127.0.0.1:8080 with a dev login.
    Demo {
        #[arg(long, default_value = "opsdeck-demo")]
        dir: PathBuf,
    },
    /// Validate a config file: prints every error at once, or `ok`.
    Check(ConfigArg),
    /// Create or upgrade the database, then exit.
    Migrate(ConfigArg),
    /// API tokens for `Authorization: Bearer`.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check or export the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The demo app's service (what `opsdeck demo` runs and its deploys restart).
    #[command(subcommand, hide = true)]
    DemoService(DemoServiceCommand),
}

#[derive(Subcommand)]
enum DemoServiceCommand {
    /// Stop the running demo service and start a new one; fails unless it answers.
    Restart(DemoServiceArgs),
    /// Be the demo service.
    Serve(DemoServiceArgs),
}

#[derive(Args)]
struct DemoServiceArgs {
    /// The demo directory.
    #[arg(long)]
    dir: PathBuf,
    /// The `opsdeck demo` process: the service ends with it.
    #[arg(long)]
    owner: u32,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (shown only this once).
    Create {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        name: String,
        /// viewer, operator, admin or owner.
        #[arg(long)]
        role: String,
    },
    /// List tokens (never their values).
    List(ConfigArg),
    /// Revoke a token by name.
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        name: String,
    },
}

// Parsed once per run: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain of the database, or of a JSON Lines export.
    Verify {
        #[command(flatten)]
        config: ConfigArg,
        /// Verify this export instead of the database.
        #[arg(long, conflicts_with = "config")]
        file: Option<PathBuf>,
    },
    /// Write the audit log (or the rows matching the filters), oldest first.
    Export {
        #[command(flatten)]
        config: ConfigArg,
        /// jsonl or csv.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Write here instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        filter: FilterInput,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve(_) | Command::Demo { .. });
    init_tracing(if serving { "info" } else { "warn" });
    match run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, so stdout carries only what a command prints (a token,
/// an export). `RUST_LOG` overrides the level: `debug`, or per target,
/// `info,opsdeck=debug,tower_http=warn`. (`Targets`, not `EnvFilter`: the
/// latter's span and field filters cost a regex engine, ~1 MB of the
/// 20 MB binary budget.)
fn init_tracing(default: &str) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let given = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let filter = match given.as_deref().map(str::parse::<Targets>) {
        Some(Ok(filter)) => filter,
        Some(Err(e)) => {
            eprintln!("warning: RUST_LOG is not understood ({e}); logging at {default:?}");
            default.parse().unwrap_or_default()
        }
        None => default.parse().unwrap_or_default(),
    };
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    tracing_subscriber::registry()
        .with(output)
        .with(filter)
        .init();
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check(c) => Ok(match Config::load(&c.config) {
            Ok(config) => {
                // Warnings do not fail the check: opsdeck would start, but
                // some button would not work.
                let host = opsdeck::host::preflight::run(&config).await;
                for warning in config.warnings().iter().chain(&host.warnings) {
                    eprintln!("warning: {warning}");
                }
                for error in &host.errors {
                    eprintln!("error: {error}");
                }
                if host.errors.is_empty() {
                    println!("ok");
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprint!("{e}");
                ExitCode::FAILURE
            }
        }),
        Command::Serve(c) => {
            let config = load(&c.config)?;
            for warning in config.warnings() {
                eprintln!("warning: {warning}");
            }
            opsdeck::server::run(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { dir } => {
            let config = opsdeck::demo::prepare(&dir)?;
            opsdeck::demo::start(&dir);
            eprintln!("{}", opsdeck::demo::welcome(&config));
            let served = opsdeck::server::run_then(config, opsdeck::demo::first_deploy).await;
            opsdeck::demo::stop(&dir);
            served?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DemoService(DemoServiceCommand::Restart(a)) => {
            println!("{}", opsdeck::demo::service::restart(&a.dir, a.owner)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::DemoService(DemoServiceCommand::Serve(a)) => {
            opsdeck::demo::service::serve(&a.dir, a.owner).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate(c) => {
            let config = load(&c.config)?;
            opsdeck::db::open(&config.server.data_dir).await?;
            println!("database ready: {}", database_file(&config).display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(t) => token_command(t).await,
        Command::Audit(a) => audit_command(a).await,
    }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    // ConfigErrors prints one line per problem; keep them on their own lines.
    Config::load(path).map_err(|e| anyhow::anyhow!("the configuration is invalid:\n{e}"))
}

fn database_file(config: &Config) -> PathBuf {
    config.server.data_dir.join("opsdeck.db")
}

/// An existing database, unmigrated: reading the audit log must not change it.
async fn existing_database(config: &Config) -> anyhow::Result<sqlx::SqlitePool> {
    let file = database_file(config);
    anyhow::ensure!(
        file.exists(),
        "there is no database at {}: run `opsdeck migrate` or `opsdeck serve` first",
        file.display()
    );
    opsdeck::db::connect(&file).await
}

/// Whoever runs the CLI has the config and the database: an owner, named
/// `cli:<unix user>` in the audit log.
fn cli_actor() -> Actor {
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name);
    Actor {
        login: format!("cli:{user}"),
        role: Role::Owner,
        via: Via::System,
        remote: String::new(),
    }
}

async fn token_command(t: TokenCommand) -> anyhow::Result<ExitCode> {
    match t {
        TokenCommand::Create { config, name, role } => {
            let config = load(&config.config)?;
            let role = Role::parse(&role).with_context(|| {
                format!("role {role:?} is not one of viewer, operator, admin, owner")
            })?;
            let db = opsdeck::db::open(&config.server.data_dir).await?;
            let value = token::create(&db, &name, role).await?;
            let event = Event::new(&cli_actor(), "token.create", "")
                .detail(serde_json::json!({"name": name, "role": role}));
            if let Err(e) = audit::Audit::new(db.clone(), &config.audit)
                .record(event)
                .await
            {
                // Nothing happens unaudited: take the token back.
                token::revoke(&db, &name).await?;
                return Err(anyhow::Error::from(e)
                    .context("cannot write the audit log, so the token was revoked"));
            }
            println!("{value}");
            eprintln!(
                "token {name:?} (role {role}) created. It is shown only this once: \
                 send it as `Authorization: Bearer <token>`; revoke it with `opsdeck token revoke --name {name}`."
            );
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List(c) => {
            let config = load(&c.config)?;
            let db = opsdeck::db::open(&config.server.data_dir).await?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<24} {:<9} {:<24} {:<24} state",
                "name", "role", "created", "last used"
            )?;
            for t in token::list(&db).await? {
                let state = match t.revoked_at {
                    Some(at) => format!("revoked {}", audit::format_time(at)),
                    None => "active".to_string(),
                };
                writeln!(
                    out,
                    "{:<24} {:<9} {:<24} {:<24} {state}",
                    t.name,
                    t.role,
                    audit::format_time(t.created_at),
                    t.last_used_at
                        .map_or_else(|| "never".into(), audit::format_time),
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { config, name } => {
            let config = load(&config.config)?;
            let db = opsdeck::db::open(&config.server.data_dir).await?;
            anyhow::ensure!(
                token::revoke(&db, &name).await?,
                "there is no active token named {name:?} (see `opsdeck token list`)"
            );
            audit::Audit::new(db, &config.audit)
                .record(
                    Event::new(&cli_actor(), "token.revoke", "")
                        .detail(serde_json::json!({"name": name})),
                )
                .await
                .context("the token was revoked, but the audit log could not record it")?;
            println!("token {name:?} revoked");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn audit_command(a: AuditCommand) -> anyhow::Result<ExitCode> {
    match a {
        AuditCommand::Verify { config, file } => {
            let (result, source) = match file {
                Some(file) => (audit::verify_file(&file), file.display().to_string()),
                None => {
                    let config = load(&config.config)?;
                    let db = existing_database(&config).await?;
                    (
                        audit::verify(&db).await,
                        database_file(&config).display().to_string(),
                    )
                }
            };
            match result {
                Ok(v) if v.absent > 0 => println!(
                    "verified {} events (through #{}); {} rows in between are not in this export (a filtered export: \
                     links are checked only between neighbouring rows)",
                    v.count, v.last_id, v.absent
                ),
                Ok(v) => println!("verified {} events (through #{})", v.count, v.last_id),
                Err(audit::VerifyError::Broken(problem)) => {
                    eprintln!("the audit chain of {source} is broken: {problem}");
                    return Ok(ExitCode::FAILURE);
                }
                Err(e) => return Err(e.into()),
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export {
            config,
            format,
            output,
            filter,
        } => {
            let config = load(&config.config)?;
            let format = Format::parse(&format)?;
            let filter = filter.parse()?;
            let db = existing_database(&config).await?;
            let mut sink: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            };
            let (tx, mut rx) = tokio::sync::mpsc::channel(4);
            let writer = tokio::spawn(async move { audit::export(&db, &filter, format, tx).await });
            while let Some(chunk) = rx.recv().await {
                sink.write_all(&chunk).context("cannot write the export")?;
            }
            sink.flush().context("cannot write the export")?;
            let count = writer.await.context("the export stopped")??;
            if let Some(path) = output {
                eprintln!("exported {count} events to {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
