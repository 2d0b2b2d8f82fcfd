//! robot.wtf's deployment notes, operated end to end by
//! `deploy/examples/robot-wtf.toml` (adapted only in paths and ports) under
//! the installed package, the shipped unit, D-Bus and polkit, on a real
//! systemd (the sandbox), against a stand-in shaped like it: four services
//! from one venv as `robot` (wiki, MCP sidecar, platform API, auth), three of
//! them reading the signing key. Deploy and rollback restart the four units
//! in the configured order (read from systemd's start timestamps), ask four
//! health checks, and the signing key is rotated as a key file; then the
//! audit chain is verified and each step's rows asserted.

mod support;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::free_port;
use support::package::{
    Grants, as_user, audit_steps, configure_and_start, installed, job_ok, job_steps, owner_token,
    shipped_example,
};
use support::sandbox::Sandbox;

/// The notes' `/srv`, moved under the sandbox's writable /var/lib.
const SRV: &str = "/var/lib/robot";
/// The units, in the example's order.
const UNITS: [&str; 4] = [
    "robot-otterwiki.service",
    "robot-api.service",
    "robot-auth.service",
    "robot-mcp.service",
];

/// The stand-in: `app/serve.py ROLE PORT` is each of the four services; the
/// wiki, API and auth read `SIGNING_KEY_PATH` at start (auth publishes its
/// fingerprint as the JWKS key id).
const FILES: &[(&str, &str)] = &[
    ("VERSION", "v1"),
    ("requirements.txt", "# stand-in: flask, uvicorn, otterwiki"),
    (
        "app/serve.py",
        r#"import hashlib, json, os, sys, http.server
role, port = sys.argv[1], int(sys.argv[2])
VERSION = open('VERSION').read().strip()
KID = ''
if role != 'mcp':
    KID = hashlib.sha256(open(os.environ['SIGNING_KEY_PATH'], 'rb').read()).hexdigest()
ROUTES = {
    'otterwiki': ('/', {'wiki': 'otterwiki'}),
    'mcp': ('/.well-known/oauth-protected-resource', {'resource': 'https://robot.wtf/mcp'}),
    'api': ('/api/health', {'ok': True}),
    'auth': ('/.well-known/jwks.json', {'keys': [{'kty': 'OKP', 'crv': 'Ed25519', 'kid': KID}]}),
}
path, body = ROUTES[role]
body = dict(body, version=VERSION, kid=KID)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if self.path == path else 404
        data = json.dumps(body if code == 200 else {'error': 'not found'}).encode()
        self.send_response(code)
        self.send_header('content-type', 'application/json')
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
print('%s %s listening on %d' % (role, VERSION, port), flush=True)
http.server.HTTPServer(('127.0.0.1', port), H).serve_forever()
"#,
    ),
];

/// The example as the package installs it, adapted in paths and ports
/// only; `ports` are the wiki's, the MCP sidecar's, the API's and auth's
/// (the notes' 8000–8003).
fn config(sandbox: &Sandbox, port: u16, ports: [u16; 4]) -> String {
    let example = shipped_example(sandbox, "robot-wtf.toml");
    let mut adapted = example
        .replace("/srv/", &format!("{SRV}/"))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    for (from, to) in (8000..).zip(ports) {
        adapted = adapted.replace(&format!("127.0.0.1:{from}/"), &format!("127.0.0.1:{to}/"));
    }
    assert_ne!(adapted, example);
    adapted
}

/// What each service answers on its health URL, in `UNITS` order.
async fn answers(ports: [u16; 4]) -> Vec<Value> {
    let paths = [
        (ports[0], "/"),
        (ports[2], "/api/health"),
        (ports[3], "/.well-known/jwks.json"),
        (ports[1], "/.well-known/oauth-protected-resource"),
    ];
    let mut all = Vec::new();
    for (port, path) in paths {
        let res = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
            .await
            .unwrap();
        all.push(res.json().await.unwrap());
    }
    all
}

async fn versions(ports: [u16; 4]) -> Vec<String> {
    answers(ports)
        .await
        .iter()
        .map(|a| a["version"].as_str().unwrap().to_owned())
        .collect()
}

/// `systemctl show -p PROP --value unit`.
fn show(sandbox: &Sandbox, unit: &str, prop: &str) -> String {
    sandbox
        .systemctl(&["show", unit, "-p", prop, "--value"])
        .trim()
        .to_owned()
}

/// Each unit's last start, in µs of the monotonic clock, in `UNITS` order.
fn starts(sandbox: &Sandbox) -> Vec<u64> {
    UNITS
        .iter()
        .map(|u| {
            show(sandbox, u, "ExecMainStartTimestampMonotonic")
                .parse()
                .unwrap()
        })
        .collect()
}

/// The four units were all restarted after `before`, one after another in
/// the configured order.
fn restarted_in_order(sandbox: &Sandbox, before: &[u64]) {
    let after = starts(sandbox);
    for (i, unit) in UNITS.iter().enumerate() {
        assert!(
            after[i] > before[i],
            "{unit} was not restarted: {before:?} → {after:?}"
        );
    }
    assert!(
        after.windows(2).all(|w| w[0] < w[1]),
        "not restarted in the order {UNITS:?}: {after:?}"
    );
}

/// Commits `version` in the author's clone and pushes it to origin.
fn push(sandbox: &Sandbox, version: &str) {
    as_user(
        sandbox,
        "robot",
        &format!("{SRV}/author"),
        &format!(
            "export GIT_CONFIG_GLOBAL={SRV}/gitconfig; echo {version} > VERSION && git commit -qam {version} && git push -q origin main"
        ),
    );
}

fn key_fingerprint(sandbox: &Sandbox) -> String {
    let pem = sandbox.run_ok(&["cat", &format!("{SRV}/data/signing_key.pem")]);
    hex::encode(Sha256::digest(pem.as_bytes()))
}

#[tokio::test]
async fn the_robot_wtf_deployment_operated_by_its_example_config() {
    let Some(installed) = installed() else {
        return;
    };
    let sandbox = &installed.sandbox;
    sandbox.start_bus_and_polkit();

    // Ansible's provisioning (not opsdeck's job): the account, the checkout,
    // the venv, the signing key, the four units.
    sandbox.run_ok(&[
        "useradd",
        "--system",
        "--shell",
        "/usr/sbin/nologin",
        "--home-dir",
        SRV,
        "robot",
    ]);
    sandbox.run_ok(&["install", "-d", "-o", "robot", "-g", "robot", SRV]);
    let files = FILES
        .iter()
        .map(|(name, text)| {
            format!("mkdir -p $(dirname {name}); cat > {name} <<'EOF'\n{text}\nEOF\n")
        })
        .collect::<String>();
    as_user(
        sandbox,
        "robot",
        SRV,
        &format!(
            "export GIT_CONFIG_GLOBAL={SRV}/gitconfig
git config --global user.name Robot; git config --global user.email ops@robot.wtf
git init -q --bare -b main origin.git; git init -q -b main author; cd author
{files}
git add -A; git commit -qm v1; git remote add origin {SRV}/origin.git; git push -q origin main
mkdir -p {SRV}/app {SRV}/data; git clone -q {SRV}/origin.git {SRV}/app/src
/usr/bin/python3 -m venv {SRV}/app/venv; {SRV}/app/venv/bin/pip install -q -r {SRV}/app/src/requirements.txt
umask 077; openssl genpkey -algorithm ed25519 -out {SRV}/data/signing_key.pem"
        ),
    );
    let ports = [free_port(), free_port(), free_port(), free_port()];
    for (unit, role, port) in [
        (UNITS[0], "otterwiki", ports[0]),
        (UNITS[3], "mcp", ports[1]),
        (UNITS[1], "api", ports[2]),
        (UNITS[2], "auth", ports[3]),
    ] {
        sandbox.install_unit(
            unit,
            &format!(
                "[Service]\nUser=robot\nWorkingDirectory={SRV}/app/src\n\
                 Environment=SIGNING_KEY_PATH={SRV}/data/signing_key.pem\n\
                 ExecStart={SRV}/app/venv/bin/python app/serve.py {role} {port}\n"
            ),
        );
    }
    let mut argv = vec!["systemctl", "start"];
    argv.extend(UNITS);
    sandbox.run_ok(&argv);

    // README "Install on a host" with the example config and its files.
    sandbox.run_ok(&[
        "sh",
        "-c",
        "printf %s oauth-client-secret > /etc/opsdeck/client_secret; chgrp opsdeck /etc/opsdeck/client_secret; chmod 0640 /etc/opsdeck/client_secret",
    ]);
    let port = free_port();
    let base = configure_and_start(
        &installed,
        &config(sandbox, port, ports),
        port,
        &Grants {
            units: &UNITS,
            users: &["robot"],
            writable: &[SRV],
        },
    )
    .await;
    let token = &owner_token(sandbox, "runbook");
    assert_eq!(versions(ports).await, ["v1"; 4]);

    // "Ansible Deploy Role": deploy v2, then v3 — the venv's requirements
    // installed as robot, the four units restarted in order, four checks.
    for version in ["v2", "v3"] {
        push(sandbox, version);
        let before = starts(sandbox);
        let deploy = job_ok(
            &base,
            token,
            "/api/apps/robot-wtf/deploy",
            json!({"ref": "main"}),
        )
        .await;
        restarted_in_order(sandbox, &before);
        assert_eq!(versions(ports).await, [version; 4]);
        let output = support::cli::job_output(&base, token, deploy).await;
        for port in ports {
            assert!(
                output.contains(&format!("http://127.0.0.1:{port}/")),
                "{output}"
            );
        }
    }
    let health: Value = reqwest::Client::new()
        .get(format!("{base}/api/apps/robot-wtf/health"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let checks: Vec<(&str, bool)> = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        checks,
        [
            ("otterwiki", true),
            ("mcp", true),
            ("api", true),
            ("auth", true)
        ],
        "{health}"
    );

    // Rollback: back to v2, the same four restarts in the same order.
    let before = starts(sandbox);
    job_ok(&base, token, "/api/apps/robot-wtf/rollback", json!({})).await;
    restarted_in_order(sandbox, &before);
    assert_eq!(versions(ports).await, ["v2"; 4]);

    // "Environment Variables" SIGNING_KEY_PATH: a new Ed25519 key in the
    // same file (owner and mode kept); wiki, API and auth restarted and
    // serving it, the MCP sidecar left alone.
    let old_key = key_fingerprint(sandbox);
    let pids: Vec<String> = UNITS.iter().map(|u| show(sandbox, u, "MainPID")).collect();
    let rotate = job_ok(
        &base,
        token,
        "/api/apps/robot-wtf/secrets/SIGNING_KEY/rotate",
        json!({}),
    )
    .await;
    let key = format!("{SRV}/data/signing_key.pem");
    let new_key = key_fingerprint(sandbox);
    assert_ne!(new_key, old_key);
    assert_eq!(
        sandbox.run_ok(&["stat", "-c", "%U %a", &key]),
        "robot 600\n"
    );
    assert!(
        sandbox
            .run_ok(&["openssl", "pkey", "-in", &key, "-noout", "-text"])
            .starts_with("ED25519 Private-Key"),
        "not an Ed25519 key"
    );
    let output = support::cli::job_output(&base, token, rotate).await;
    assert!(
        output.contains("ed25519 key, public key sha256:"),
        "{output}"
    );
    assert!(!output.contains("BEGIN PRIVATE KEY"), "{output}");
    let now: Vec<String> = UNITS.iter().map(|u| show(sandbox, u, "MainPID")).collect();
    assert_eq!(
        (0..4).map(|i| now[i] != pids[i]).collect::<Vec<_>>(),
        [true, true, true, false],
        "restarted: wiki, API, auth; not the MCP sidecar"
    );
    let served = answers(ports).await;
    for (i, answer) in served.iter().take(3).enumerate() {
        assert_eq!(answer["kid"], new_key.as_str(), "{}: {answer}", UNITS[i]);
    }
    assert_eq!(served[2]["keys"][0]["kid"], new_key.as_str());

    // The audit chain holds, and each step left its rows.
    let expected: Vec<String> = [
        vec!["config.load ok".to_owned(), "token.create ok".to_owned()],
        job_steps("deploy", &["release.create ok"]),
        job_steps("deploy", &["release.create ok"]),
        job_steps("rollback", &["release.create ok"]),
        job_steps("rotate", &["secret.rotate ok"]),
    ]
    .concat();
    assert_eq!(audit_steps(sandbox), expected);

    sandbox.run_ok(&["systemctl", "stop", "opsdeck"]);
}
