//! The SITG runbook operated end to end (issue 24): the installed package
//! under the shipped unit, D-Bus and polkit, on a real systemd (the
//! sandbox), running `deploy/examples/sitg.toml` as the package ships it,
//! adapted only in paths, ports and sign-in. SITG is shaped by programs of
//! this test's own: a "backend-api" (Python standing in for the Rust
//! binary; a stand-in `cargo` builds it) that reads a real PostgreSQL from
//! Debian over its unix socket with peer authentication, a Node
//! "bot-worker" and "frontend-web" built with the real npm, each service
//! with its own env file, as the runbook's two units are.
//!
//! The operator's day: a deploy (three builds, both units restarted), the
//! env files each read by their unit only, the bot's webhook secret
//! rotated (only the bot restarted), a `postgres-backup` sweep run as
//! `sitg`, rows changed, a corrupt dump refused before anything stops, a
//! name that is no backup refused, the good dump restored (the rows are
//! back), and the audit chain verified with each job's rows.

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::free_port;
use support::github::{self, FakeGithub};
use support::package::{Installed, installed, owner_token, service_journal, wait_for_health};
use support::sandbox::Sandbox;

/// The `sitg` account's home: the runbook's `/opt/sitg` and
/// `/var/backups/sitg` are moved under it (the sandbox writes only to
/// /etc, /usr and /var/lib overlays, never to the host's /opt or /var).
const HOME: &str = "/var/lib/sitg";
const REPO: &str = "/var/lib/sitg/code";
const BACKUPS: &str = "/var/lib/sitg/backups";
const CONFIG: &str = "/etc/opsdeck/opsdeck.toml";
const GITHUB_TOKEN: &str = "/etc/opsdeck/github_token";
/// The GitHub repository and the bot's webhook URL, as the example has them.
const GITHUB_REPO: &str = "sitg-dev/sitg";
const HOOK_URL: &str = "https://bot.sitg.io/webhooks/github";

/// The stand-in for the Rust toolchain: `cargo build --release` in
/// backend-api "compiles" src/main.py, stamping the version it was built
/// from, into target/release/sitg-backend.
const CARGO: &str = r#"#!/bin/sh
set -e
[ "$1 $2" = "build --release" ] || { echo "stand-in cargo: only build --release" >&2; exit 2; }
mkdir -p target/release
{ echo '#!/usr/bin/python3'; echo "BUILT = '$(cat ../VERSION)'"; cat src/main.py; } > target/release/sitg-backend.new
chmod 755 target/release/sitg-backend.new
mv target/release/sitg-backend.new target/release/sitg-backend
"#;

/// An npm project with no dependencies whose build runs `build.js`.
fn npm_project(name: &str) -> [(String, String); 2] {
    [
        (
            format!("{name}/package.json"),
            format!(
                r#"{{"name": "{name}", "version": "1.0.0", "private": true, "scripts": {{"build": "node build.js"}}}}"#
            ),
        ),
        (
            format!("{name}/package-lock.json"),
            format!(
                r#"{{"name": "{name}", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": {{"": {{"name": "{name}", "version": "1.0.0"}}}}}}"#
            ),
        ),
    ]
}

/// SITG's tree: VERSION, backend-api (a server answering /healthz with
/// the version it was built from, its env and the stakes in PostgreSQL),
/// frontend-web (a build writing dist/index.html) and bot-worker (a build
/// copying src/index.js to dist/, which serves /healthz and /metrics).
fn files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = vec![
        ("VERSION".into(), "v1\n".into()),
        ("backend-api/Cargo.toml".into(), "[package]\nname = \"sitg-backend\"\nversion = \"0.1.0\"\nedition = \"2021\"\n".into()),
        (
            "backend-api/src/main.py".into(),
            r#"import http.server, os, subprocess
def stakes():
    out = subprocess.run(['psql', '-X', '-Atq', '-d', os.environ['DATABASE_URL'], '-c',
                          "SELECT coalesce(string_agg(owner, ',' ORDER BY owner), '') FROM stakes"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else 'error: ' + out.stderr.strip()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != '/healthz':
            self.send_response(404); self.end_headers(); return
        seen = 'yes' if 'GITHUB_WEBHOOK_SECRET' in os.environ else 'no'
        body = 'backend %s base=%s bot-secret=%s stakes=%s' % (BUILT, os.environ['APP_BASE_URL'], seen, stakes())
        # A stake named "poison" is data this backend cannot serve.
        self.send_response(500 if 'poison' in body else 200); self.end_headers(); self.wfile.write(body.encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()
"#
            .into(),
        ),
        (
            "frontend-web/build.js".into(),
            "const fs = require('fs');\nfs.mkdirSync('dist', {recursive: true});\nfs.writeFileSync('dist/index.html', '<p>SITG ' + fs.readFileSync('../VERSION', 'utf8').trim() + '</p>');\n".into(),
        ),
        (
            "bot-worker/build.js".into(),
            "const fs = require('fs');\nfs.mkdirSync('dist', {recursive: true});\nconst v = fs.readFileSync('../VERSION', 'utf8').trim();\nfs.writeFileSync('dist/index.js', 'const BUILT = ' + JSON.stringify(v) + ';\\n' + fs.readFileSync('src/index.js', 'utf8'));\n".into(),
        ),
        (
            "bot-worker/src/index.js".into(),
            r#"const http = require('http');
const crypto = require('crypto');
const env = process.env;
const secret = crypto.createHash('sha256').update(env.GITHUB_WEBHOOK_SECRET || '').digest('hex').slice(0, 12);
http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.end(`bot ${BUILT} backend=${env.BACKEND_BASE_URL} webhook=${secret} client-secret=${env.GITHUB_CLIENT_SECRET ? 'yes' : 'no'}`);
  } else if (req.url === '/metrics') {
    res.end('sitg_bot_up 1\n');
  } else {
    res.statusCode = 404; res.end();
  }
}).listen(Number(env.PORT), '127.0.0.1');
"#
            .into(),
        ),
    ];
    files.extend(npm_project("frontend-web"));
    files.extend(npm_project("bot-worker"));
    files
}

/// Runs `script` as `sitg` in its home.
fn as_sitg(sandbox: &Sandbox, script: &str) -> String {
    sandbox.run_ok(&[
        "runuser",
        "-u",
        "sitg",
        "--",
        "sh",
        "-c",
        &format!("set -e; cd {HOME}; {script}"),
    ])
}

/// `psql` as `sitg` on the socket (peer authentication); what it printed.
fn sql(sandbox: &Sandbox, query: &str) -> String {
    as_sitg(
        sandbox,
        &format!(
            "psql -X -Atq -h /run/postgresql -d sitg -v ON_ERROR_STOP=1 -c {}",
            shell_quote(query)
        ),
    )
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The newest PostgreSQL server from Debian's packages on this machine.
fn postgres_bin() -> Option<String> {
    let mut found: Vec<String> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .map(|bin| bin.display().to_string())
        .collect();
    found.sort_by_key(|b| {
        b.trim_end_matches("/bin")
            .rsplit('/')
            .next()
            .and_then(|v| v.parse::<u32>().ok())
    });
    found.pop()
}

fn show(sandbox: &Sandbox, unit: &str, property: &str) -> String {
    sandbox
        .run_ok(&["systemctl", "show", "-P", property, unit])
        .trim()
        .to_owned()
}

/// POSTs to the API; the status and the JSON answer.
async fn post(base: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// POSTs a job to the API and waits for it: its id, final state and output.
async fn job(base: &str, token: &str, path: &str, body: Value) -> (i64, String, String) {
    let (status, started) = post(base, token, path, body).await;
    assert_eq!(status, 202, "{path}: {started}");
    let id = started["job"].as_i64().unwrap();
    let state = support::cli::job_end(base, token, id).await;
    let output = support::cli::job_output(base, token, id).await;
    (id, state, output)
}

/// A job that must succeed; its id.
async fn succeeds(base: &str, token: &str, path: &str, body: Value) -> i64 {
    let (id, state, output) = job(base, token, path, body).await;
    assert_eq!(state, "succeeded", "{path}: job {id}:\n{output}");
    id
}

/// What a unit of the stand-in answers on `/healthz`.
async fn healthz(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The backups in the sweep's directory, by name, oldest first.
fn dumps(sandbox: &Sandbox) -> Vec<String> {
    let listed = as_sitg(sandbox, &format!("ls -1 {BACKUPS}"));
    listed.lines().map(str::to_owned).collect()
}

/// The audit rows of job `id` as (action, outcome), sorted: a job's own
/// rows (`release.create`) and its start are written concurrently.
fn audit_rows(sandbox: &Sandbox, id: i64) -> Vec<(String, String)> {
    let out = sandbox.run_ok(&[
        "runuser",
        "-u",
        "opsdeck",
        "--",
        "opsdeck",
        "audit",
        "export",
        "--config",
        CONFIG,
        "--job",
        &id.to_string(),
    ]);
    let mut rows: Vec<(String, String)> = out
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).unwrap();
            (
                row["action"].as_str().unwrap().to_owned(),
                row["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn pairs(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = rows
        .iter()
        .map(|(a, o)| ((*a).to_owned(), (*o).to_owned()))
        .collect();
    rows.sort();
    rows
}

/// `deploy/examples/sitg.toml` as the package installed it, with its
/// paths and ports moved into the sandbox, sign-in by token only and
/// GitHub's API at `github` (the token file stays where the example has it).
fn adapted_example(sandbox: &Sandbox, ports: &BTreeMap<&str, u16>, github: &str) -> String {
    let shipped = sandbox.run_ok(&["cat", "/usr/share/doc/opsdeck/examples/sitg.toml"]);
    assert!(shipped.contains(&format!("github_token_file = \"{GITHUB_TOKEN}\"")));
    assert!(shipped.contains(&format!("repo = \"{GITHUB_REPO}\", url = \"{HOOK_URL}\"")));
    let auth_start = shipped.find("[auth]").unwrap();
    let auth_end = shipped.find("[roles]").unwrap();
    let mut config = format!(
        "{}[auth]\ndev_login = true\ngithub_api = {github:?}\ngithub_token_file = \"{GITHUB_TOKEN}\"\n\n{}",
        &shipped[..auth_start],
        &shipped[auth_end..]
    );
    let opsdeck = ports["opsdeck"];
    for (from, to) in [
        ("/opt/sitg", REPO.to_owned()),
        ("/var/backups/sitg", BACKUPS.to_owned()),
        ("127.0.0.1:8080", format!("127.0.0.1:{opsdeck}")),
        ("https://ops.sitg.io", format!("http://127.0.0.1:{opsdeck}")),
        ("127.0.0.1:8000", format!("127.0.0.1:{}", ports["backend"])),
        ("127.0.0.1:3000", format!("127.0.0.1:{}", ports["bot"])),
    ] {
        assert!(config.contains(from), "the example no longer has {from}");
        config = config.replace(from, &to);
    }
    config
}

#[tokio::test]
async fn sitg_deploys_backs_up_and_restores_its_postgres_under_the_shipped_unit() {
    let Some(pg) = postgres_bin() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and PostgreSQL is missing: apt-get install postgresql"
        );
        eprintln!("skipped: PostgreSQL is not installed (apt-get install postgresql)");
        return;
    };
    let Some(Installed { work, sandbox, .. }) = installed() else {
        return;
    };
    sandbox.start_bus_and_polkit();
    let ports = BTreeMap::from([
        ("opsdeck", free_port()),
        ("backend", free_port()),
        ("bot", free_port()),
    ]);

    // The runbook's first-time provisioning, by hand as it says (not
    // opsdeck's job): the account, PostgreSQL with the database, the
    // clone and its first builds, the env files, the two units.
    sandbox.run_ok(&[
        "useradd",
        "--system",
        "--create-home",
        "--home-dir",
        HOME,
        "--shell",
        "/usr/sbin/nologin",
        "sitg",
    ]);
    sandbox.run_ok(&[
        "sh",
        "-c",
        &format!("cat > /usr/local/bin/cargo <<'EOF'\n{CARGO}EOF\nchmod 755 /usr/local/bin/cargo"),
    ]);
    as_sitg(
        &sandbox,
        &format!(
            "{pg}/initdb --no-sync -D {HOME}/pgdata -U sitg --auth-local=peer --auth-host=reject >/dev/null"
        ),
    );
    sandbox.install_unit(
        "sitg-postgres.service",
        &format!(
            "[Service]\nUser=sitg\nRuntimeDirectory=postgresql\n\
             ExecStart={pg}/postgres -D {HOME}/pgdata -k /run/postgresql -c listen_addresses= -c dynamic_shared_memory_type=mmap\n"
        ),
    );
    sandbox.run_ok(&["systemctl", "start", "sitg-postgres.service"]);
    let mut ready = false;
    for _ in 0..200 {
        if sandbox
            .run(&["pg_isready", "-q", "-h", "/run/postgresql"])
            .status
            .success()
        {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        ready,
        "PostgreSQL did not start: {:?}",
        sandbox.journal("sitg-postgres.service")
    );
    as_sitg(&sandbox, "createdb -h /run/postgresql sitg");
    sql(
        &sandbox,
        "CREATE TABLE stakes (owner text PRIMARY KEY); INSERT INTO stakes VALUES ('alice'), ('bob');",
    );

    let tree = files()
        .iter()
        .map(|(name, text)| {
            format!("mkdir -p \"$(dirname {name})\"; cat > {name} <<'EOF'\n{text}\nEOF\n")
        })
        .collect::<String>();
    as_sitg(
        &sandbox,
        &format!(
            "git config --global user.name Ada; git config --global user.email ada@example.org
git init -q --bare -b main origin.git; git init -q -b main author; cd author
{tree}
printf 'target/\\nnode_modules/\\ndist/\\n' > .gitignore
git add -A; git commit -qm v1; git remote add origin ../origin.git; git push -q origin main
cd ..; git clone -q origin.git code; cd code
(cd backend-api && cargo build --release)
(cd frontend-web && npm ci --silent && npm run build --silent)
(cd bot-worker && npm ci --silent && npm run build --silent)"
        ),
    );
    let (backend, bot) = (ports["backend"], ports["bot"]);
    sandbox.run_ok(&[
        "sh",
        "-c",
        &format!(
            "set -e; install -d -o sitg -g sitg -m 0700 /etc/sitg; umask 077
cat > /etc/sitg/backend.env <<EOF
DATABASE_URL=postgresql:///sitg?host=/run/postgresql
APP_BASE_URL=https://sitg.test
PORT={backend}
GITHUB_CLIENT_SECRET=client-old
GITHUB_OWNER_CHECK_TOKEN=owner-old
EOF
cat > /etc/sitg/bot-worker.env <<EOF
BACKEND_BASE_URL=http://127.0.0.1:{backend}
PORT={bot}
GITHUB_WEBHOOK_SECRET=webhook-old
BACKEND_INTERNAL_HMAC_SECRET=hmac-old
EOF
chown sitg:sitg /etc/sitg/backend.env /etc/sitg/bot-worker.env"
        ),
    ]);
    sandbox.install_unit(
        "sitg-backend.service",
        &format!(
            "[Service]\nUser=sitg\nEnvironmentFile=/etc/sitg/backend.env\n\
             ExecStart={REPO}/backend-api/target/release/sitg-backend\n"
        ),
    );
    sandbox.install_unit(
        "sitg-bot-worker.service",
        &format!(
            "[Service]\nUser=sitg\nEnvironmentFile=/etc/sitg/bot-worker.env\n\
             WorkingDirectory={REPO}/bot-worker\nExecStart=/usr/bin/node dist/index.js\n"
        ),
    );
    sandbox.run_ok(&[
        "systemctl",
        "start",
        "sitg-backend.service",
        "sitg-bot-worker.service",
    ]);

    // README "Install on a host", for this app: the example config, the
    // polkit rule listing its two units, the sudoers line for `sitg`, the
    // drop-ins.
    let staged = work.path().join("opsdeck.toml");
    let github = FakeGithub::start().await;
    github.with_repo(GITHUB_REPO, |repo| {
        repo.hooks = vec![
            github::Hook::new(
                11,
                HOOK_URL,
                "webhook-old",
                &["pull_request", "issue_comment"],
            ),
            github::Hook::new(12, "https://ci.example.org/hook", "ci-secret", &["push"]),
        ]
    });
    std::fs::write(&staged, adapted_example(&sandbox, &ports, &github.url)).unwrap();
    sandbox.run_ok(&[
        "sh",
        "-c",
        &format!(
            "umask 027; printf %s {} > {GITHUB_TOKEN}; chgrp opsdeck {GITHUB_TOKEN}",
            github::TOKEN
        ),
    ]);
    let examples = "/usr/share/doc/opsdeck/examples";
    let dropins = "/run/systemd/system/opsdeck.service.d";
    sandbox.run_ok(&[
        "install",
        "-D",
        "-m",
        "0640",
        "-g",
        "opsdeck",
        &staged.display().to_string(),
        CONFIG,
    ]);
    sandbox.run_ok(&[
        "sh",
        "-c",
        &format!(
            "set -e
sed 's/var units = .*/var units = [\"sitg-backend.service\", \"sitg-bot-worker.service\"];/' \
  {examples}/polkit/50-opsdeck.rules > /etc/polkit-1/rules.d/50-opsdeck.rules
grep -q sitg-bot-worker /etc/polkit-1/rules.d/50-opsdeck.rules
{{ grep -v '^opsdeck ALL=(rfc-app)' {examples}/sudoers.d/opsdeck; echo 'opsdeck ALL=(sitg) NOPASSWD: ALL'; }} > /etc/sudoers.d/opsdeck
chmod 0440 /etc/sudoers.d/opsdeck; visudo -cf /etc/sudoers.d/opsdeck
mkdir -p {dropins}; install -m 0644 {examples}/sudo.conf {dropins}/sudo.conf
printf '[Service]\\nReadWritePaths=-{HOME} -/etc/sitg\\n' > {dropins}/paths.conf
systemctl daemon-reload"
        ),
    ]);
    let started = sandbox.run(&["systemctl", "enable", "--now", "opsdeck"]);
    assert!(
        started.status.success(),
        "opsdeck.service did not start:\n{}",
        service_journal(&sandbox)
    );
    let base = format!("http://127.0.0.1:{}", ports["opsdeck"]);
    wait_for_health(&reqwest::Client::new(), &base, &sandbox).await;
    let token = &owner_token(&sandbox, "ci");

    // "Upgrade workflow": git pull, three builds, both services restarted —
    // one Deploy. Each unit reads its own env file and only that one.
    assert_eq!(
        healthz(backend).await,
        "backend v1 base=https://sitg.test bot-secret=no stakes=alice,bob"
    );
    let pids = |s: &Sandbox| {
        (
            show(s, "sitg-backend.service", "MainPID"),
            show(s, "sitg-bot-worker.service", "MainPID"),
        )
    };
    let before = pids(&sandbox);
    as_sitg(
        &sandbox,
        "cd author && echo v2 > VERSION && git commit -qam v2 && git push -q origin main",
    );
    let deploy = succeeds(
        &base,
        token,
        "/api/apps/sitg/deploy",
        json!({"ref": "main"}),
    )
    .await;
    let after = pids(&sandbox);
    assert!(
        after.0 != before.0 && after.1 != before.1,
        "both units restarted: {before:?} → {after:?}"
    );
    assert_eq!(
        healthz(backend).await,
        "backend v2 base=https://sitg.test bot-secret=no stakes=alice,bob"
    );
    let webhook_old = healthz(bot).await;
    assert!(
        webhook_old.starts_with(&format!(
            "bot v2 backend=http://127.0.0.1:{backend} webhook="
        )) && webhook_old.ends_with(" client-secret=no"),
        "{webhook_old}"
    );
    assert_eq!(
        as_sitg(&sandbox, "cat code/frontend-web/dist/index.html"),
        "<p>SITG v2</p>"
    );

    // "Multi-owner operations": the bot's webhook secret lives in the
    // bot's env file; rotating it restarts the bot only.
    let backend_pid = show(&sandbox, "sitg-backend.service", "MainPID");
    let rotate = succeeds(
        &base,
        token,
        "/api/apps/sitg/secrets/GITHUB_WEBHOOK_SECRET/rotate",
        json!({}),
    )
    .await;
    let webhook_new = healthz(bot).await;
    assert_ne!(webhook_new, webhook_old, "the bot reads its new secret");
    assert_eq!(
        show(&sandbox, "sitg-backend.service", "MainPID"),
        backend_pid
    );
    let bot_env = sandbox.run_ok(&["cat", "/etc/sitg/bot-worker.env"]);
    assert!(
        !bot_env.contains("webhook-old") && bot_env.contains("hmac-old"),
        "{bot_env}"
    );
    // "Webhook URL": GitHub's hook to the bot signs with the new secret;
    // the CI hook keeps its own.
    let new_secret = bot_env
        .lines()
        .find_map(|l| l.strip_prefix("GITHUB_WEBHOOK_SECRET="))
        .unwrap();
    assert_eq!(github.hook(GITHUB_REPO, 11).secret, new_secret);
    assert_eq!(github.hook(GITHUB_REPO, 12).secret, "ci-secret");
    assert!(
        sandbox
            .run_ok(&["cat", "/etc/sitg/backend.env"])
            .contains("client-old")
    );
    assert_eq!(
        sandbox.run_ok(&["stat", "-c", "%U %a", "/etc/sitg/bot-worker.env"]),
        "sitg 600\n"
    );

    // The postgres-backup sweep: pg_dump as sitg (peer authentication),
    // the dump checked and named, readable by sitg only.
    let sweep = succeeds(
        &base,
        token,
        "/api/apps/sitg/sweeps/db-backup/run",
        json!({"dry_run": false}),
    )
    .await;
    let sweep_output = support::cli::job_output(&base, token, sweep).await;
    assert!(sweep_output.contains("pg_restore --list"), "{sweep_output}");
    let first = dumps(&sandbox);
    assert_eq!(first.len(), 1, "{first:?}");
    let good = first[0].clone();
    assert!(
        good.starts_with("sitg-") && good.ends_with(".dump"),
        "{good}"
    );
    let dump = format!("{BACKUPS}/{good}");
    assert_eq!(
        sandbox.run_ok(&["stat", "-c", "%U %a", &dump]),
        "sitg 600\n"
    );
    let toc = as_sitg(&sandbox, &format!("pg_restore --list {dump}"));
    assert!(toc.contains("TABLE DATA public stakes"), "{toc}");
    let listed: Value = reqwest::Client::new()
        .get(format!("{base}/api/apps/sitg/sweeps"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.to_string().contains(&good), "{listed}");

    // The rows change after the backup.
    sql(
        &sandbox,
        "DELETE FROM stakes WHERE owner = 'bob'; INSERT INTO stakes VALUES ('carol');",
    );
    assert!(healthz(backend).await.ends_with("stakes=alice,carol"));

    // A corrupt dump, named like the sweep's: refused by the first step,
    // before anything stops; the database is untouched.
    let corrupt = "sitg-20200101T000000000Z.dump";
    as_sitg(
        &sandbox,
        &format!("yes 'not a dump' | head -c 4096 > {BACKUPS}/{corrupt}"),
    );
    let units_before = pids(&sandbox);
    let path = "/api/apps/sitg/sweeps/db-backup/restore";
    let (refused, state, output) = job(&base, token, path, json!({"backup": corrupt})).await;
    assert_eq!(state, "failed", "{output}");
    assert!(output.contains("pg_restore"), "{output}");
    assert_eq!(
        pids(&sandbox),
        units_before,
        "nothing was stopped:\n{output}"
    );
    assert!(healthz(backend).await.ends_with("stakes=alice,carol"));
    assert_eq!(dumps(&sandbox).len(), 2, "no copy was kept");

    // A name that is not one of the sweep's backups: 400, nothing queued.
    let (status, said) = post(
        &base,
        token,
        path,
        json!({"backup": "../pgdata/PG_VERSION"}),
    )
    .await;
    assert_eq!(status, 400, "{said}");
    assert!(
        said["error"]
            .as_str()
            .unwrap()
            .contains("is not one of the backups"),
        "{said}"
    );

    // The good dump restored: units stopped, the database as it was kept
    // as a new dump, pg_restore, units started, health checked.
    let restore = succeeds(&base, token, path, json!({"backup": good})).await;
    assert_eq!(
        healthz(backend).await,
        "backend v2 base=https://sitg.test bot-secret=no stakes=alice,bob"
    );
    let after_restore = pids(&sandbox);
    assert!(after_restore.0 != units_before.0 && after_restore.1 != units_before.1);
    let now = dumps(&sandbox);
    assert_eq!(
        now.len(),
        3,
        "the database before the restore was kept: {now:?}"
    );
    let kept = now
        .iter()
        .find(|d| **d != good && d.as_str() != corrupt)
        .unwrap();
    let kept_toc = as_sitg(
        &sandbox,
        &format!("pg_restore --data-only --table=stakes -f - {BACKUPS}/{kept}"),
    );
    assert!(
        kept_toc.contains("carol"),
        "the kept dump holds the rows it replaced: {kept_toc}"
    );

    // A dump the backend then fails its health check on: the job puts the
    // database it replaced back (the dump it kept) and starts the units.
    sql(&sandbox, "INSERT INTO stakes VALUES ('poison');");
    let sweep_path = "/api/apps/sitg/sweeps/db-backup/run";
    succeeds(&base, token, sweep_path, json!({"dry_run": false})).await;
    sql(&sandbox, "DELETE FROM stakes WHERE owner = 'poison';");
    let poisoned = dumps(&sandbox).pop().unwrap();
    let (undone, state, output) = job(&base, token, path, json!({"backup": poisoned})).await;
    assert_eq!(state, "failed", "{output}");
    assert!(output.contains("the previous database is back"), "{output}");
    assert_eq!(
        healthz(backend).await,
        "backend v2 base=https://sitg.test bot-secret=no stakes=alice,bob"
    );
    for unit in ["sitg-backend.service", "sitg-bot-worker.service"] {
        assert_eq!(show(&sandbox, unit, "ActiveState"), "active", "{unit}");
    }

    // The audit chain holds, and each step left its rows.
    let verified = sandbox.run_ok(&[
        "runuser", "-u", "opsdeck", "--", "opsdeck", "audit", "verify", "--config", CONFIG,
    ]);
    assert!(verified.starts_with("verified "), "{verified}");
    let ok = |rows: &[&str]| pairs(&rows.iter().map(|a| (*a, "ok")).collect::<Vec<_>>());
    assert_eq!(
        audit_rows(&sandbox, deploy),
        ok(&["job.request", "release.create", "job.start", "job.end"])
    );
    assert_eq!(
        audit_rows(&sandbox, rotate),
        ok(&[
            "job.request",
            "job.start",
            "secret.rotate",
            "secret.webhook",
            "job.end"
        ])
    );
    assert_eq!(
        audit_rows(&sandbox, sweep),
        ok(&["job.request", "job.start", "job.end"])
    );
    assert_eq!(
        audit_rows(&sandbox, restore),
        ok(&["job.request", "job.start", "database.restore", "job.end"])
    );
    assert_eq!(
        audit_rows(&sandbox, undone),
        pairs(&[
            ("job.request", "ok"),
            ("job.start", "ok"),
            ("database.restore", "ok"),
            ("database.put_back", "ok"),
            ("job.end", "failed")
        ])
    );
    assert_eq!(
        audit_rows(&sandbox, refused),
        pairs(&[
            ("job.request", "ok"),
            ("job.start", "ok"),
            ("job.end", "failed")
        ])
    );
    let denied = sandbox.run_ok(&[
        "runuser",
        "-u",
        "opsdeck",
        "--",
        "opsdeck",
        "audit",
        "export",
        "--config",
        CONFIG,
        "--outcome",
        "denied",
        "--action",
        "restore",
    ]);
    assert_eq!(denied.lines().count(), 1, "{denied}");
    assert!(denied.contains("../pgdata/PG_VERSION"), "{denied}");

    sandbox.run_ok(&["systemctl", "stop", "opsdeck"]);
}
