//! `opsdeck demo`: everything needed to click through opsdeck on a laptop,
//! systemd or not — a real app (a repository with an upstream to fetch from,
//! a service process with a health URL and a log file, see `service.rs`), a
//! config with a few actions (one quick, one slow, one failing), a secret,
//! sweeps, and the dev login, loopback only.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::Config;

mod repo;
pub mod service;

/// The demo app's name.
const APP: &str = "demo-app";

/// The demo app's env file, outside its work tree (like a real app's `.env`
/// that git ignores), with a secret to rotate.
const DEMO_ENV: &str = "# demo-app settings\nSECRET_KEY=demo-secret-change-me-0000000000\n";

/// Writes the demo directory (idempotent), builds the demo app once if it
/// never was, and returns the config to serve.
pub fn prepare(dir: &Path) -> anyhow::Result<Config> {
    let dir = absolute(dir)?;
    for sub in ["logs", "run"] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create the demo directory {}", path.display()))?;
    }
    repo::prepare(&dir)?;
    let env_file = service::env_file(&dir);
    if !env_file.exists() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&env_file, DEMO_ENV)
            .with_context(|| format!("cannot write {}", env_file.display()))?;
        std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600))?;
    }
    let log = service::log_file(&dir);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("cannot create {}", log.display()))?;
    let exe = std::env::current_exe().context("cannot find opsdeck's own executable")?;
    let config_path = dir.join("opsdeck.toml");
    std::fs::write(&config_path, config_text(&dir, &exe, std::process::id()))
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let config = Config::load(&config_path)
        .map_err(|e| anyhow::anyhow!("the demo config is invalid:\n{e}"))?;
    build_once(&dir)?;
    Ok(config)
}

/// Runs the demo app's build if it never ran, as a deploy would before its
/// restart step.
fn build_once(dir: &Path) -> anyhow::Result<()> {
    let repo = service::repo(dir);
    if repo.join("dist").join("version").exists() {
        return Ok(());
    }
    crate::host::local::run::<&str>("./build.sh", &[], &repo)
        .context("the demo app's first build failed")?;
    Ok(())
}

/// Starts the demo service for this `opsdeck demo` process, as the restart
/// step of a deploy would. A failure is printed, not fatal: the dashboard
/// then shows demo-app unhealthy and why, and a Deploy tries again.
pub fn start(dir: &Path) {
    let started = absolute(dir).and_then(|dir| service::restart(&dir, std::process::id()));
    if let Err(e) = started {
        eprintln!("warning: the demo service did not start: {e:#}");
    }
}

/// On the demo's first start, deploys the commit demo-app's work tree holds
/// (as `system:demo`, a real job in the audit log), so the user's first
/// Deploy has a release to roll back to.
pub fn first_deploy(ctx: &crate::Context) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let actor = crate::auth::Actor::system("system:demo");
        let started = async {
            let releases = crate::releases::list(&ctx.db, APP, 1).await?;
            if !releases.is_empty() {
                return Ok::<_, crate::Error>(None);
            }
            let dir = ctx
                .config
                .server
                .data_dir
                .parent()
                .unwrap_or(Path::new("."));
            let host = crate::host::Host::Local;
            let head = crate::host::git::head(&host, &service::repo(dir)).await?;
            crate::ops::deploy::request(&ctx, &actor, APP, head.short())
                .await
                .map(Some)
        };
        match started.await {
            Ok(Some(job)) => tracing::info!(
                "demo: deploying what demo-app runs now (job {job}), so your first deploy has a release to roll back to"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!("demo: the first deploy of demo-app did not start: {e}"),
        }
    });
}

/// Stops the demo service when the demo stops.
pub fn stop(dir: &Path) {
    if let Ok(dir) = absolute(dir) {
        let _ = service::stop(&dir);
    }
}

/// What to click, in the order a new user meets it, printed once the
/// demo is ready.
pub fn welcome(config: &Config) -> String {
    let dir = config
        .server
        .data_dir
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    format!(
        "\nopsdeck demo is ready: open {url}/\n\
         \n  1. Sign in with the dev login: pick any name and the role owner (it shows every button).\n\
         \x20 2. The dashboard shows demo-app healthy: opsdeck asked its health URL {health}.\n\
         \x20    demo-app is a real process (`opsdeck demo-service`) serving {repo};\n\
         \x20    on the first start, system:demo deployed the commit it runs, so you have a release to go back to.\n\
         \x20 3. Open demo-app and click \"What ships?\": one new commit waits upstream ({dir}/origin.git).\n\
         \x20 4. Click Deploy (type demo-app to confirm): the job checks out that exact commit, builds it,\n\
         \x20    restarts demo-app and passes the health check; watch it live.\n\
         \x20 5. Under Releases, click \"Roll back to this\" on the older release: it comes back, rebuilt and restarted.\n\
         \x20 6. Click Logs: demo-app's log file ({log}), live; it writes a line every few seconds.\n\
         \x20 7. Actions: \"hello\" streams its output; \"slow-build\" runs a minute (try Cancel);\n\
         \x20    \"failing-check\" asks first, then fails.\n\
         \x20 8. Under Secrets, rotate SECRET_KEY: its fingerprint changes, its value is never shown;\n\
         \x20    demo-app reads it at its next restart (its log prints the new fingerprint).\n\
         \x20 9. Under Sweeps, click Dry run, then Run now on db-backup.\n\
         \x20 10. Open Audit: every click above, who, when and how it ended.\n\
         \nThe demo's files and database live in {dir}; without systemd there, demo-app's last build step\n\
         restarts it (`opsdeck demo-service restart`). Ctrl-C stops the demo and demo-app.\n",
        url = config.server.public_url,
        health = service::health_url(),
        repo = service::repo(&dir).display(),
        log = service::log_file(&dir).display(),
        dir = dir.display(),
    )
}

fn config_text(dir: &Path, exe: &Path, owner: u32) -> String {
    let data = dir.join("data");
    let restart = [
        exe.display().to_string(),
        "demo-service".into(),
        "restart".into(),
        "--dir".into(),
        dir.display().to_string(),
        "--owner".into(),
        owner.to_string(),
    ];
    format!(
        r#"# opsdeck demo configuration — see README "Configuration reference".
# Rewritten at each `opsdeck demo` start.
[server]
listen = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"
data_dir = {data:?}

[auth]
# Only for the demo: pick a name and role on the sign-in page. opsdeck
# refuses to start with this on anything but a loopback address.
dev_login = true

[[app]]
name = "demo-app"
environment = "staging"
repo = {repo:?}
branch = "main"
strategy = "checkout"
# A real app lists its systemd `units` and opsdeck restarts them. The demo
# runs where there may be no systemd, so its last build step restarts the
# demo service itself; it fails unless the new process answers.
build = [
  {{ run = ["./build.sh"] }},
  {{ run = {restart:?} }},
]
health = {{ url = {health:?}, expect = "ok", timeout = "10s" }}
logs = {{ files = [{log:?}] }}
env_file = {env_file:?}

[[app.action]]
name = "hello"
description = "Prints who runs it and where."
run = ["sh", "-c", "echo \"hello from $(hostname), in $(pwd)\"; git log --oneline -3"]

[[app.action]]
name = "slow-build"
description = "Streams a line every 200 ms for a minute; try Cancel."
run = ["./slow.sh"]
timeout = "5m"

[[app.action]]
name = "failing-check"
description = "Always fails, to show what a failed job looks like."
run = ["sh", "-c", "echo 'checking disk quota…'; echo 'quota exceeded on /srv' >&2; exit 3"]
confirm = "This check always fails. Run it anyway?"

[[app.secret]]
name = "SECRET_KEY"
generate = "hex:32"
note = "demo-app reads it when it next restarts (your next deploy or rollback)."

[[app.sweep]]
name = "db-backup"
kind = "sqlite-backup"
database = {db:?}
dir = {backups:?}
keep = 3
schedule = "0 3 * * *"

[[app.sweep]]
name = "old-job-output"
kind = "job-output"
days = 7
"#,
        db = data.join("opsdeck.db").display().to_string(),
        backups = dir.join("backups").display().to_string(),
        data = data.display().to_string(),
        repo = service::repo(dir).display().to_string(),
        env_file = service::env_file(dir).display().to_string(),
        health = service::health_url(),
        log = service::log_file(dir).display().to_string(),
    )
}

fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.is_absolute() {
        return Ok(dir.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current directory")?
        .join(dir))
}

fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}
