//! `opsdeck demo`: everything needed to click through opsdeck on a laptop —
//! a real git repository standing in for an app, a config with a few actions
//! (one quick, one slow, one failing), the dev login, loopback only.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::Config;
use crate::host::git;

/// The demo app's repository content: a tiny "service" with a build script.
const APP_FILES: &[(&str, &str)] = &[
    (
        "README.md",
        "# demo-app\n\nA stand-in for your app: opsdeck's demo deploys and runs it.\n",
    ),
    (
        "build.sh",
        "#!/bin/sh\n# A build that takes a few seconds and prints progress, like `npm run build`.\nset -e\nfor step in compile bundle minify; do\n  echo \"building: $step\"\n  sleep 1\ndone\necho \"build done: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)\"\n",
    ),
    (
        "slow.sh",
        "#!/bin/sh\n# Prints a line every 200 ms for a minute: watch it stream, or cancel it.\ni=0\nwhile [ $i -lt 300 ]; do\n  i=$((i+1))\n  echo \"tick $i of 300: $(date +%T)\"\n  sleep 0.2\ndone\n",
    ),
];

/// The demo app's env file, outside its work tree (like a real app's `.env`
/// that git ignores), with a secret to rotate.
const DEMO_ENV: &str =
    "# demo-app settings\nSECRET_KEY=demo-secret-change-me-0000000000\nPORT=8000\n";

/// Writes the demo directory (idempotent) and returns the config to serve.
pub fn prepare(dir: &Path) -> anyhow::Result<Config> {
    let dir = absolute(dir)?;
    let repo = dir.join("demo-app");
    std::fs::create_dir_all(&repo)
        .with_context(|| format!("cannot create the demo directory {}", repo.display()))?;
    if !repo.join(".git").exists() {
        for (name, body) in APP_FILES {
            let path = repo.join(name);
            std::fs::write(&path, body)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if name.ends_with(".sh") {
                make_executable(&path)?;
            }
        }
        git::here(&repo, &["init", "-q", "-b", "main"])?;
        git::here(&repo, &["add", "."])?;
        git::here(
            &repo,
            &[
                "-c",
                "user.name=opsdeck demo",
                "-c",
                "user.email=demo@opsdeck.invalid",
                "commit",
                "-q",
                "-m",
                "demo-app: first version",
            ],
        )?;
    }
    let env_file = dir.join("demo-app.env");
    if !env_file.exists() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&env_file, DEMO_ENV)
            .with_context(|| format!("cannot write {}", env_file.display()))?;
        std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600))?;
    }
    let config_path = dir.join("opsdeck.toml");
    std::fs::write(&config_path, config_text(&dir, &repo))
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    Config::load(&config_path).map_err(|e| anyhow::anyhow!("the demo config is invalid:\n{e}"))
}

/// What to click, printed once the demo is ready.
pub fn welcome(config: &Config) -> String {
    format!(
        "\nopsdeck demo is ready: open {url}/\n\
         \n  1. Sign in with the dev login (pick any name; role owner shows every button).\n\
         \x20 2. On the dashboard, click \"hello\" on demo-app: the job page streams its output.\n\
         \x20 3. Click \"slow-build\" and watch it live; click Cancel to stop it.\n\
         \x20 4. Click \"failing-check\" to see a failed job, then open the audit log.\n\
         \x20 5. On demo-app's page, under Sweeps, click Dry run, then Run now on db-backup.\n\
         \x20 6. Under Secrets, rotate SECRET_KEY: its fingerprint changes, its value is never shown.\n\
         \nThe demo's files and database live in {dir}; Ctrl-C stops it.\n",
        url = config.server.public_url,
        dir = config
            .server
            .data_dir
            .parent()
            .unwrap_or(Path::new("."))
            .display(),
    )
}

fn config_text(dir: &Path, repo: &Path) -> String {
    let data = dir.join("data");
    format!(
        r#"# opsdeck demo configuration — see README "Configuration reference".
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
build = [ {{ run = ["./build.sh"] }} ]
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
note = "Everyone signed in to demo-app is signed out."

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
        repo = repo.display().to_string(),
        env_file = dir.join("demo-app.env").display().to_string(),
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
