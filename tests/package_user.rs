//! An rfc-app-shaped app under the installed package, the shipped unit,
//! polkit rule, sudoers file and drop-in, on a real systemd (the sandbox):
//! its service runs as `rfc-app`, a Python HTTP server reading its code and
//! writing SQLite in a data directory it owns; its build runs `npm run build`
//! (Node, no dependencies) and a Python step, every step as `rfc-app`. It
//! deploys, serves the new version, keeps writing its database, rolls back
//! and deploys again; a rotation keeps the env file's owner and mode; a
//! sqlite-backup sweep writes as `rfc-app`.

mod support;

use serde_json::json;
use support::free_port;
use support::package::{Grants, as_user, configure_and_start, installed, job_ok, owner_token};
use support::sandbox::Sandbox;

const HOME: &str = "/var/lib/rfc-app";

/// The app: `VERSION`, a Node build writing `dist/built.txt`, a Python step
/// writing `step.txt`, and a server answering all three and the number of
/// rows it has written to its database so far (one per request).
const FILES: &[(&str, &str)] = &[
    ("VERSION", "v1\n"),
    (
        "package.json",
        r#"{"name": "rfc-app", "version": "1.0.0", "private": true, "scripts": {"build": "node build.js"}}"#,
    ),
    (
        "build.js",
        "const fs = require('fs');\nfs.mkdirSync('dist', {recursive: true});\nfs.writeFileSync('dist/built.txt', 'node ' + fs.readFileSync('VERSION', 'utf8').trim());\n",
    ),
    (
        "step.py",
        "open('step.txt', 'w').write('python ' + open('VERSION').read().strip())\n",
    ),
    (
        "server.py",
        r#"import http.server, sqlite3, sys
DB = '/var/lib/rfc-app/data/app.db'
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        db = sqlite3.connect(DB)
        db.execute('CREATE TABLE IF NOT EXISTS hits (n INTEGER)')
        db.execute('INSERT INTO hits VALUES (1)')
        db.commit()
        rows = db.execute('SELECT count(*) FROM hits').fetchone()[0]
        db.close()
        read = lambda p: open(p).read().strip()
        body = '%s %s %s rows=%d' % (read('VERSION'), read('dist/built.txt'), read('step.txt'), rows)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body.encode())
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
"#,
    ),
];

/// Runs `script` as `rfc-app` in its home.
fn as_app(sandbox: &Sandbox, script: &str) -> String {
    as_user(sandbox, "rfc-app", HOME, script)
}

/// Commits `version` in the author's clone and pushes it.
fn push(sandbox: &Sandbox, version: &str) {
    as_app(
        sandbox,
        &format!(
            "cd author && echo {version} > VERSION && git commit -qam {version} && git push -q origin main"
        ),
    );
}

/// Deploys main and waits for the job to succeed.
async fn deploy_main(base: &str, token: &str) {
    job_ok(
        base,
        token,
        "/api/apps/rfc-app/deploy",
        json!({"ref": "main"}),
    )
    .await;
}

/// What the app answers: `(version line, rows written so far)`.
async fn answer(port: u16) -> (String, u64) {
    let body = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (shown, rows) = body.rsplit_once(" rows=").unwrap();
    (shown.to_owned(), rows.parse().unwrap())
}

#[tokio::test]
async fn an_app_with_its_own_user_and_a_node_build_deploys_under_the_shipped_unit() {
    let Some(installed) = installed() else {
        return;
    };
    let sandbox = &installed.sandbox;
    sandbox.start_bus_and_polkit();

    // The runbook's install: the app's account, its clone, its first build.
    sandbox.run_ok(&[
        "useradd",
        "--system",
        "--create-home",
        "--home-dir",
        HOME,
        "--shell",
        "/usr/sbin/nologin",
        "rfc-app",
    ]);
    let files = FILES
        .iter()
        .map(|(name, text)| format!("cat > {name} <<'EOF'\n{text}\nEOF\n"))
        .collect::<String>();
    as_app(
        sandbox,
        &format!(
            "git config --global user.name Ada; git config --global user.email ada@example.org
git init -q --bare -b main origin.git; git init -q -b main author; cd author
{files}
git add -A; git commit -qm v1; git remote add origin ../origin.git; git push -q origin main
cd ..; git clone -q origin.git code; cd code; npm run build --silent; python3 step.py
mkdir -p ../data; printf 'SECRET_KEY=old\\n' > ../data/app.env; chmod 0640 ../data/app.env"
        ),
    );
    let app_port = free_port();
    sandbox.install_unit(
        "rfc-app.service",
        &format!(
            "[Service]\nUser=rfc-app\nWorkingDirectory={HOME}/code\n\
             ExecStart=/usr/bin/python3 {HOME}/code/server.py {app_port}\n"
        ),
    );
    sandbox.run_ok(&["systemctl", "start", "rfc-app.service"]);

    // README "Install on a host": config, polkit rule, sudoers, drop-ins.
    let port = free_port();
    let config = format!(
        r#"[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
data_dir = "/var/lib/opsdeck"

[auth]
dev_login = true

[[app]]
name = "rfc-app"
repo = "{HOME}/code"
user = "rfc-app"
units = ["rfc-app.service"]
env_file = "{HOME}/data/app.env"
health = {{ url = "http://127.0.0.1:{app_port}/" }}
build = [
  {{ run = ["npm", "run", "build"] }},
  {{ run = ["python3", "step.py"] }},
]

[[app.secret]]
name = "SECRET_KEY"
generate = "hex:16"

[[app.sweep]]
name = "db-backup"
kind = "sqlite-backup"
database = "{HOME}/data/app.db"
dir = "{HOME}/data/backups"
keep = 2
"#
    );
    let base = configure_and_start(
        &installed,
        &config,
        port,
        &Grants {
            units: &["rfc-app.service"],
            users: &["rfc-app"],
            writable: &[HOME],
        },
    )
    .await;
    let token = &owner_token(sandbox, "ci");
    let (_, rows) = answer(app_port).await;

    // Deploy v2: Node and Python build it, as rfc-app, and it serves.
    push(sandbox, "v2");
    deploy_main(&base, token).await;
    let (shown, now) = answer(app_port).await;
    assert_eq!(shown, "v2 node v2 python v2");
    assert!(now > rows, "the app keeps writing its database");
    let owners = sandbox.run_ok(&[
        "stat",
        "-c",
        "%U %A",
        &format!("{HOME}/code/dist/built.txt"),
        &format!("{HOME}/code/step.txt"),
    ]);
    assert_eq!(owners, "rfc-app -rw-r--r--\nrfc-app -rw-r--r--\n");

    // v3, then a rollback to v2, then main (v3) again.
    push(sandbox, "v3");
    deploy_main(&base, token).await;
    assert_eq!(answer(app_port).await.0, "v3 node v3 python v3");
    job_ok(&base, token, "/api/apps/rfc-app/rollback", json!({})).await;
    assert_eq!(answer(app_port).await.0, "v2 node v2 python v2");
    deploy_main(&base, token).await;
    let (shown, last) = answer(app_port).await;
    assert_eq!(shown, "v3 node v3 python v3");
    assert!(last > now, "the app keeps writing its database");

    // A rotation keeps the env file's owner and mode.
    let path = "/api/apps/rfc-app/secrets/SECRET_KEY/rotate";
    job_ok(&base, token, path, json!({})).await;
    let env = format!("{HOME}/data/app.env");
    assert_eq!(
        sandbox.run_ok(&["stat", "-c", "%U %a", &env]),
        "rfc-app 640\n"
    );
    assert!(!sandbox.run_ok(&["cat", &env]).contains("=old"));

    // A sqlite-backup sweep copies the database as rfc-app.
    let path = "/api/apps/rfc-app/sweeps/db-backup/run";
    job_ok(&base, token, path, json!({"dry_run": false})).await;
    let backups = sandbox.run_ok(&["sh", "-c", &format!("stat -c %U {HOME}/data/backups/*")]);
    assert_eq!(backups, "rfc-app\n");

    sandbox.run_ok(&["systemctl", "stop", "opsdeck"]);
}
