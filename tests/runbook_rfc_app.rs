//! The rfc-app runbook, operated end to end by `deploy/examples/rfc-app.toml`
//! (adapted only in paths and ports) under the installed package, the
//! shipped unit, D-Bus and polkit, on a real systemd (the sandbox), against
//! a stand-in shaped like the app: a Python backend in a venv reading its
//! `.env` and writing SQLite, a Node frontend build, a seed script, and a
//! Gitea-like stand-in where the runbook talks to Gitea. Push-to-deploy by a
//! signed webhook (the build as `rfc-app`), rollback, SECRET_KEY and the
//! two-sided webhook secret rotated, a pasted bot token, the seed action, a
//! backup and its restore, branch hygiene, logs filtered to errors; then the
//! audit chain is verified and each step's rows asserted.

mod support;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::free_port;
use support::gitea::{self, Branch, FakeGitea, Hook};
use support::package::{
    Grants, as_user, audit_steps, configure_and_start, installed, job_ok, job_steps, owner_token,
    shipped_example,
};
use support::sandbox::Sandbox;

/// The runbook's `/opt/rfc-app`, moved under the sandbox's writable /var/lib.
const HOME: &str = "/var/lib/rfc-app";
/// Where the stand-in's origin (the runbook's git.wiggleverse.org clone URL)
/// and the author's clone live.
const SRC: &str = "/var/lib/rfc-app-src";
const WEBHOOK_SECRET: &str = "opsdeck-push-webhook-secret";

/// The stand-in, as the real repository lays it out: `backend/` (app,
/// requirements, `.env` and `data/` untracked), `frontend/` (a Node build
/// into `dist/`), `scripts/seed_meta_repo.py`.
const FILES: &[(&str, &str)] = &[
    ("VERSION", "v1"),
    (
        ".gitignore",
        "/.npm/\n/.cache/\n/backend/.env\n/backend/.env.opsdeck-backup-*\n/backend/.venv/\n/backend/data/\n/frontend/node_modules/\n/frontend/dist/\n",
    ),
    ("backend/requirements.txt", "# stand-in: no dependencies"),
    (
        "backend/app.py",
        r#"import hashlib, hmac, json, os, sqlite3, sys, http.server
env = os.environ.get
fp = lambda v: hashlib.sha256(v.encode()).hexdigest()
VERSION = open('../VERSION').read().strip()
FRONTEND = open('../frontend/dist/index.html').read().strip()
DB = env('DATABASE_PATH')
def db():
    c = sqlite3.connect(DB)
    c.execute('CREATE TABLE IF NOT EXISTS notes (body TEXT)')
    return c
class H(http.server.BaseHTTPRequestHandler):
    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header('content-type', 'application/json')
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        c = db()
        notes = c.execute('SELECT count(*) FROM notes').fetchone()[0]
        c.close()
        self.answer(200, {'ok': True, 'version': VERSION, 'frontend': FRONTEND, 'notes': notes,
                          'secret_key': fp(env('SECRET_KEY', '')),
                          'webhook_secret': fp(env('GITEA_WEBHOOK_SECRET', '')),
                          'bot_token': fp(env('GITEA_BOT_TOKEN', ''))})
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('content-length', 0)))
        if self.path == '/api/notes':
            c = db()
            c.execute('INSERT INTO notes VALUES (?)', (body.decode(),))
            c.commit()
            c.close()
            return self.answer(201, {'ok': True})
        want = hmac.new(env('GITEA_WEBHOOK_SECRET', '').encode(), body, 'sha256').hexdigest()
        if hmac.compare_digest(want, self.headers.get('x-gitea-signature', '')):
            return self.answer(200, {'ok': True})
        print('<3>webhook: signature mismatch from Gitea', file=sys.stderr, flush=True)
        self.answer(403, {'ok': False})
    def log_message(self, *args):
        pass
print('RFC app started — meta repo wiggleverse/meta', flush=True)
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
"#,
    ),
    (
        "frontend/package.json",
        r#"{"name": "rfc-app-frontend", "version": "1.0.0", "private": true, "scripts": {"build": "node build.js"}}"#,
    ),
    (
        "frontend/package-lock.json",
        r#"{"name": "rfc-app-frontend", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": {"": {"name": "rfc-app-frontend", "version": "1.0.0"}}}"#,
    ),
    (
        "frontend/build.js",
        "const fs = require('fs');\nfs.mkdirSync('dist', {recursive: true});\nfs.writeFileSync('dist/index.html', 'built ' + fs.readFileSync('../VERSION', 'utf8').trim() + ' by node ' + process.version);\n",
    ),
    (
        "scripts/seed_meta_repo.py",
        "import os\nvalues = dict(l.split('=', 1) for l in open('.env').read().split() if '=' in l)\nprint('meta repo %s/%s up to date on %s' % (values['GITEA_ORG'], values['META_REPO'], values['GITEA_URL']))\n",
    ),
];

/// The example as the package installs it, adapted in paths and ports
/// only.
fn config(sandbox: &Sandbox, port: u16, app_port: u16, gitea_url: &str) -> String {
    let example = shipped_example(sandbox, "rfc-app.toml");
    let adapted = example
        .replace("/opt/rfc-app", HOME)
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{app_port}"))
        .replace("https://git.wiggleverse.org/", gitea_url);
    assert_ne!(adapted, example);
    adapted
}

fn sign(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn fingerprint(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// What the app's health endpoint answers.
async fn app_state(app_port: u16) -> Value {
    reqwest::get(format!("http://127.0.0.1:{app_port}/api/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A value of the app's `.env`, read as root.
fn env_value(sandbox: &Sandbox, key: &str) -> String {
    let env = sandbox.run_ok(&["cat", &format!("{HOME}/backend/.env")]);
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in .env:\n{env}"))
        .to_owned()
}

/// Commits `version` in the author's clone and pushes it to origin; its sha.
fn push(sandbox: &Sandbox, version: &str) -> String {
    as_user(
        sandbox,
        "rfc-app",
        &format!("{SRC}/author"),
        &format!("export GIT_CONFIG_GLOBAL={SRC}/gitconfig; echo {version} > VERSION && git commit -qam {version} && git push -q origin main && git rev-parse HEAD"),
    )
    .trim()
    .to_owned()
}

/// Gitea's push delivery of `after` to main, signed with `secret`.
async fn deliver(base: &str, secret: &str, id: &str, after: &str) -> (u16, Value) {
    let body = json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": after,
        "commits": [],
        "repository": {"full_name": "ben.stull/rfc-app"},
        "pusher": {"login": "ben.stull", "username": "ben.stull"},
        "sender": {"login": "ben.stull"},
    })
    .to_string();
    let res = reqwest::Client::new()
        .post(format!("{base}/hooks/gitea/rfc-app"))
        .header("content-type", "application/json")
        .header("x-gitea-event", "push")
        .header("x-gitea-delivery", id)
        .header("x-gitea-signature", sign(secret, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

/// Posts a Gitea-signed delivery to the app's own webhook endpoint.
async fn app_webhook(app_port: u16, secret: &str) -> u16 {
    let body = r#"{"action": "opened"}"#;
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{app_port}/api/webhooks/gitea"))
        .header("x-gitea-signature", sign(secret, body))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn note(app_port: u16, text: &str) {
    let res = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{app_port}/api/notes"))
        .body(text.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

async fn get(base: &str, token: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The Gitea stand-in's meta repo: its webhook (the app's, signed with the
/// old secret) and branches of every age.
async fn gitea_meta(old_secret: &str) -> FakeGitea {
    let gitea = FakeGitea::start().await;
    let ago = |days: i64| (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339();
    gitea.with_repo("wiggleverse/meta", |repo| {
        repo.default_branch = "main".into();
        repo.hooks = vec![Hook::new(7, "gitea", old_secret, &["push", "pull_request"])];
        for (name, days, protected) in [
            ("main", 400, false),
            ("rfc/abandoned-idea", 120, false),
            ("rfc/active-draft", 2, false),
            ("release", 300, true),
        ] {
            repo.branches.push(Branch {
                name: name.into(),
                committed: ago(days),
                protected,
            });
        }
    });
    gitea
}

#[tokio::test]
async fn the_rfc_app_runbook_operated_by_its_example_config() {
    let Some(installed) = installed() else {
        return;
    };
    let sandbox = &installed.sandbox;
    sandbox.start_bus_and_polkit();
    let old_webhook = "old-webhook-secret-0123456789";
    let gitea = gitea_meta(old_webhook).await;

    // Runbook 1.1–1.3 and 1.5, first-time bring-up (not opsdeck's job):
    // the account, the clone, the venv, the first build, .env, the unit.
    sandbox.run_ok(&[
        "useradd",
        "--system",
        "--shell",
        "/usr/sbin/nologin",
        "--home-dir",
        HOME,
        "rfc-app",
    ]);
    sandbox.run_ok(&["install", "-d", "-o", "rfc-app", "-g", "rfc-app", HOME, SRC]);
    let files = FILES
        .iter()
        .map(|(name, text)| {
            format!("mkdir -p $(dirname {name}); cat > {name} <<'EOF'\n{text}\nEOF\n")
        })
        .collect::<String>();
    let app_port = free_port();
    as_user(
        sandbox,
        "rfc-app",
        SRC,
        &format!(
            "export GIT_CONFIG_GLOBAL={SRC}/gitconfig
git config --global user.name Ben; git config --global user.email ben@example.org
git init -q --bare -b main origin.git; git init -q -b main author; cd author
{files}
git add -A; git commit -qm v1; git remote add origin {SRC}/origin.git; git push -q origin main
git clone -q {SRC}/origin.git {HOME}; cd {HOME}
/usr/bin/python3 -m venv backend/.venv; backend/.venv/bin/pip install -q -r backend/requirements.txt
cd frontend; npm ci --silent; npm run build --silent; cd ..
mkdir backend/data
printf 'GITEA_URL={gitea}\\nGITEA_ORG=wiggleverse\\nMETA_REPO=meta\\nGITEA_BOT_TOKEN=old-bot-token-0123456789\\nSECRET_KEY=0123456789abcdef0123456789abcdef\\nGITEA_WEBHOOK_SECRET={old_webhook}\\nDATABASE_PATH={HOME}/backend/data/rfc-app.db\\n' > backend/.env
chmod 600 backend/.env",
            gitea = gitea.url,
        ),
    );
    sandbox.install_unit(
        "rfc-app.service",
        &format!(
            "[Service]\nUser=rfc-app\nWorkingDirectory={HOME}/backend\n\
             EnvironmentFile={HOME}/backend/.env\n\
             ExecStart={HOME}/backend/.venv/bin/python app.py {app_port}\n"
        ),
    );
    sandbox.run_ok(&["systemctl", "start", "rfc-app.service"]);

    // README "Install on a host" with the example config and its files.
    let port = free_port();
    for (file, text) in [
        ("client_secret", "oauth-client-secret"),
        ("gitea_token", gitea::TOKEN),
        ("rfc-app.webhook", WEBHOOK_SECRET),
    ] {
        sandbox.run_ok(&[
            "sh",
            "-c",
            &format!("printf %s '{text}' > /etc/opsdeck/{file}; chgrp opsdeck /etc/opsdeck/{file}; chmod 0640 /etc/opsdeck/{file}"),
        ]);
    }
    let base = configure_and_start(
        &installed,
        &config(sandbox, port, app_port, &gitea.url),
        port,
        &Grants {
            units: &["rfc-app.service"],
            users: &["rfc-app"],
            writable: &[HOME],
        },
    )
    .await;
    let token = &owner_token(sandbox, "runbook");
    let first = app_state(app_port).await;
    assert_eq!(first["version"], "v1");

    // 2.5 "Updating after a push": a signed push webhook deploys v2 — pip,
    // npm ci and the Node build as rfc-app, then the restart.
    let v2 = push(sandbox, "v2");
    let (status, refused) = deliver(&base, "not-the-secret", "d-forged", &v2).await;
    assert_eq!(status, 401, "{refused}");
    let (status, started) = deliver(&base, WEBHOOK_SECRET, "d-1", &v2).await;
    assert_eq!(status, 202, "{started}");
    let deploy = started["job"].as_i64().unwrap();
    let state = support::cli::job_end(&base, token, deploy).await;
    let output = support::cli::job_output(&base, token, deploy).await;
    assert_eq!(state, "succeeded", "{output}");
    let shown = app_state(app_port).await;
    assert_eq!(shown["version"], "v2");
    assert!(
        shown["frontend"]
            .as_str()
            .unwrap()
            .starts_with("built v2 by node v"),
        "{shown}"
    );
    assert_eq!(
        sandbox.run_ok(&[
            "stat",
            "-c",
            "%U",
            &format!("{HOME}/frontend/dist/index.html")
        ]),
        "rfc-app\n",
        "the frontend was built as rfc-app"
    );
    let job: Value = get(&base, token, &format!("/api/jobs/{deploy}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job["actor"], "gitea:ben.stull", "{job}");

    // The same by the Deploy button (v3), then 3 "Rollback": back to v2,
    // rebuilt from that commit.
    push(sandbox, "v3");
    job_ok(
        &base,
        token,
        "/api/apps/rfc-app/deploy",
        json!({"ref": "main"}),
    )
    .await;
    assert_eq!(app_state(app_port).await["version"], "v3");
    job_ok(&base, token, "/api/apps/rfc-app/rollback", json!({})).await;
    let shown = app_state(app_port).await;
    assert_eq!(shown["version"], "v2");
    assert!(
        shown["frontend"]
            .as_str()
            .unwrap()
            .starts_with("built v2 by node"),
        "{shown}"
    );

    // 2.3 SECRET_KEY: a new value in .env (owner and mode kept), the app
    // restarted with it.
    job_ok(
        &base,
        token,
        "/api/apps/rfc-app/secrets/SECRET_KEY/rotate",
        json!({}),
    )
    .await;
    let key = env_value(sandbox, "SECRET_KEY");
    assert_eq!(key.len(), 64);
    assert_eq!(app_state(app_port).await["secret_key"], fingerprint(&key));
    assert_eq!(
        sandbox.run_ok(&["stat", "-c", "%U %a", &format!("{HOME}/backend/.env")]),
        "rfc-app 600\n"
    );

    // 2.3 GITEA_WEBHOOK_SECRET, both sides: .env and Gitea's hook agree,
    // and a delivery Gitea signs with it is accepted by the app.
    job_ok(
        &base,
        token,
        "/api/apps/rfc-app/secrets/GITEA_WEBHOOK_SECRET/rotate",
        json!({}),
    )
    .await;
    let new_webhook = env_value(sandbox, "GITEA_WEBHOOK_SECRET");
    assert_ne!(new_webhook, old_webhook);
    let in_gitea = gitea.with_repo("wiggleverse/meta", |r| r.hooks[0].clone());
    assert_eq!(in_gitea.secret, new_webhook);
    assert_eq!(in_gitea.events, ["push", "pull_request"]);
    assert_eq!(app_webhook(app_port, &in_gitea.secret).await, 200);
    assert_eq!(app_webhook(app_port, old_webhook).await, 403);

    // 2.3 GITEA_BOT_TOKEN, issued by Gitea and pasted: a space-padded paste
    // is refused, the clean one reaches the app.
    let set = "/api/apps/rfc-app/secrets/GITEA_BOT_TOKEN/set";
    let padded = reqwest::Client::new()
        .post(format!("{base}{set}"))
        .bearer_auth(token)
        .json(&json!({"value": " new-bot-token-from-gitea "}))
        .send()
        .await
        .unwrap();
    assert_eq!(padded.status(), 400);
    job_ok(
        &base,
        token,
        set,
        json!({"value": "new-bot-token-from-gitea"}),
    )
    .await;
    assert_eq!(
        app_state(app_port).await["bot_token"],
        fingerprint("new-bot-token-from-gitea")
    );

    // 1.3.4 "Seed the meta repo", re-run safely as an action.
    let seeded = job_ok(
        &base,
        token,
        "/api/apps/rfc-app/actions/seed-meta-repo/run",
        json!({}),
    )
    .await;
    let output = support::cli::job_output(&base, token, seeded).await;
    // (Every env-file value of 8 characters or more is masked in job output,
    // the org and Gitea's URL included.)
    assert!(
        output.contains("meta repo [redacted]/meta up to date on [redacted]"),
        "{output}"
    );

    // 2.2 "Database backup", then "Restore a snapshot": a note written after
    // the backup is gone after the restore, the one before it stays.
    note(app_port, "before the backup").await;
    job_ok(
        &base,
        token,
        "/api/apps/rfc-app/sweeps/db-backup/run",
        json!({"dry_run": false}),
    )
    .await;
    note(app_port, "after the backup").await;
    assert_eq!(app_state(app_port).await["notes"], 2);
    let sweeps: Value = get(&base, token, "/api/apps/rfc-app/sweeps")
        .await
        .json()
        .await
        .unwrap();
    let backup_sweep = sweeps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "db-backup")
        .unwrap();
    // The runbook's daily cron: the next run is at 03:00 UTC.
    assert_eq!(backup_sweep["schedule"], "0 3 * * *");
    let next = backup_sweep["next_run"].as_i64().unwrap();
    assert_eq!(next % 86_400_000, 3 * 3_600_000, "{backup_sweep}");
    let backup = backup_sweep["restore"]["backups"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        sandbox.run_ok(&[
            "sh",
            "-c",
            &format!("stat -c %U {HOME}/backend/data/backups/*")
        ]),
        "rfc-app\n"
    );
    job_ok(
        &base,
        token,
        "/api/apps/rfc-app/sweeps/db-backup/restore",
        json!({"backup": backup}),
    )
    .await;
    assert_eq!(app_state(app_port).await["notes"], 1);

    // 2.4 branch hygiene: a dry run lists, the run deletes only the branch
    // idle past 90 days (never main, a fresh one or a protected one).
    job_ok(
        &base,
        token,
        "/api/apps/rfc-app/sweeps/branch-hygiene/run",
        json!({"dry_run": true}),
    )
    .await;
    assert!(gitea.with_repo("wiggleverse/meta", |r| r.deleted.is_empty()));
    job_ok(
        &base,
        token,
        "/api/apps/rfc-app/sweeps/branch-hygiene/run",
        json!({"dry_run": false}),
    )
    .await;
    assert_eq!(
        gitea.with_repo("wiggleverse/meta", |r| r.deleted.clone()),
        ["rfc/abandoned-idea"]
    );

    // 2.1 "Logs", `journalctl -u rfc-app -p err`: the refused delivery's
    // error, not the startup line.
    sandbox.wait_for_journal(
        "rfc-app.service",
        "signature mismatch",
        std::time::Duration::from_secs(10),
    );
    let errors = get(
        &base,
        token,
        "/api/apps/rfc-app/logs/download?unit=rfc-app.service&priority=err",
    )
    .await;
    assert_eq!(errors.status(), 200);
    let errors = errors.text().await.unwrap();
    assert!(
        errors.contains("webhook: signature mismatch from Gitea"),
        "{errors}"
    );
    assert!(!errors.contains("RFC app started"), "{errors}");
    let all = get(
        &base,
        token,
        "/api/apps/rfc-app/logs/download?unit=rfc-app.service",
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(all.contains("RFC app started"), "{all}");

    // The audit chain holds, and each step left its rows.
    let rows = audit_steps(sandbox);
    let expected: Vec<String> = [
        vec![
            "config.load ok".to_owned(),
            "token.create ok".to_owned(),
            "webhook denied".to_owned(),
        ],
        job_steps("deploy", &["release.create ok"]),
        job_steps("deploy", &["release.create ok"]),
        job_steps("rollback", &["release.create ok"]),
        job_steps("rotate", &["secret.rotate ok"]),
        job_steps("rotate", &["secret.rotate ok", "secret.webhook ok"]),
        vec!["secret.set denied".to_owned()],
        job_steps("rotate", &["secret.rotate ok"]),
        job_steps("action", &[]),
        job_steps("sweep", &[]),
        job_steps("restore", &["database.restore ok"]),
        job_steps("sweep", &[]),
        job_steps("sweep", &[]),
    ]
    .concat();
    assert_eq!(rows, expected);

    sandbox.run_ok(&["systemctl", "stop", "opsdeck"]);
}
