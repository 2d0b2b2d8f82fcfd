//! Secret rotation against a real systemd: the real `opsdeck serve`
//! rotates a webhook secret 20 times; each time a real service, restarted
//! by the job, answers with a hash of its new value and the test Gitea's
//! webhook has it too. A failing health probe and a failing Gitea each put
//! the old file back. Afterwards no value appears in the database (with its
//! WAL), opsdeck's stdout and stderr, any page or any job's output.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use opsdeck::host::envfile;
use sha2::{Digest, Sha256};
use support::cli::Instance;
use support::gitea::{FakeGitea, Hook};
use support::sandbox::{self, Sandbox};

#[test]
fn rotations_restart_a_real_service_and_no_value_leaves_the_env_file() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_rotations");
}

/// Answers every GET with sha256(WEBHOOK_SECRET), the value systemd gave it
/// from the env file; answers 500 while a pin file names another hash.
const SERVICE: &str = r#"import hashlib, http.server, os, pathlib, sys
digest = hashlib.sha256(os.environ.get("WEBHOOK_SECRET", "").encode()).hexdigest()
pin = pathlib.Path(sys.argv[2])
status = 500 if pin.exists() and pin.read_text().strip() != digest else 200
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = digest.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

const ENV: &str = "# web\nWEBHOOK_SECRET=\"first-webhook-secret-0123456789\"\nDATABASE_URL=postgres://web:db-password-42@localhost/web\nPORT=8000\n";

fn sha256(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn secret(env: &Path) -> String {
    let text = std::fs::read_to_string(env).unwrap();
    envfile::get(env, &text, "WEBHOOK_SECRET").unwrap().unwrap()
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_rotations() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let app = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = app.path().join(name);
        support::write_private(&path, text);
        path
    };
    let env = file(".env", ENV);
    let script = file("service.py", SERVICE);
    let pin = app.path().join("pin");
    let port = support::free_port();
    std::fs::write(
        "/run/systemd/system/web.service",
        format!(
            "[Service]\nEnvironmentFile={}\nExecStart=/usr/bin/python3 {} {port} {}\n",
            env.display(),
            script.display(),
            pin.display()
        ),
    )
    .unwrap();
    run(&["systemctl", "daemon-reload"]);
    run(&["systemctl", "start", "web.service"]);

    let gitea = FakeGitea::start().await;
    let hook = |f: &dyn Fn(&mut Hook)| {
        gitea.with_repo("org/web", |repo| f(&mut repo.hooks[0]));
    };
    gitea.with_repo("org/web", |repo| {
        repo.hooks = vec![Hook::new(
            1,
            "gitea",
            "first-webhook-secret-0123456789",
            &["push"],
        )]
    });
    let instance = Instance::new(&format!(
        r#"{auth}[[app]]
name = "web"
env_file = "{env}"
units = ["web.service"]
health = {{ url = "http://127.0.0.1:{port}/", timeout = "6s" }}

[[app.secret]]
name = "WEBHOOK_SECRET"
generate = "hex:32"
gitea_webhook = {{ repo = "org/web" }}
note = "Gitea's deliveries are refused until both sides match."
"#,
        auth = gitea.auth_config(app.path()),
        env = env.display(),
    ));
    let token = instance.token("ops", "owner");
    let logs = app.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let log = |name: &str| Stdio::from(std::fs::File::create(logs.join(name)).unwrap());
    let server = instance.serve_with(&[], log("stdout"), log("stderr")).await;
    let api = Api {
        client: reqwest::Client::new(),
        url: server.url.clone(),
        token,
    };
    let answer = || async {
        let health = opsdeck::config::Health {
            name: None,
            url: format!("http://127.0.0.1:{port}/"),
            expect: None,
            timeout: Duration::from_secs(30),
            interval: None,
        };
        opsdeck::host::probe::check(&health).await.unwrap();
        reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(answer().await, sha256("first-webhook-secret-0123456789"));

    // 20 rotations: the service and Gitea have each new value.
    let mut values = vec![
        "first-webhook-secret-0123456789".to_string(),
        "db-password-42".to_string(),
    ];
    let mut jobs = Vec::new();
    for _ in 0..20 {
        let job = api.rotate().await;
        assert_eq!(
            api.wait(job).await,
            "succeeded",
            "{}",
            api.output(job).await
        );
        let value = secret(&env);
        assert!(!values.contains(&value));
        assert_eq!(
            answer().await,
            sha256(&value),
            "the service runs with the new value"
        );
        hook(&|h| assert_eq!(h.secret, value, "Gitea has the new value"));
        values.push(value);
        jobs.push(job);
    }

    // The new value fails the health check: the old file comes back and
    // the service answers with the old value again.
    let before = std::fs::read(&env).unwrap();
    let current = secret(&env);
    std::fs::write(&pin, sha256(&current)).unwrap();
    let job = api.rotate().await;
    assert_eq!(api.wait(job).await, "failed");
    let output = api.output(job).await;
    assert!(output.contains("put back"), "{output}");
    assert_eq!(std::fs::read(&env).unwrap(), before, "the old file is back");
    assert_eq!(answer().await, sha256(&current), "{output}");
    hook(&|h| assert_eq!(h.secret, current, "Gitea was never told"));
    std::fs::remove_file(&pin).unwrap();
    jobs.push(job);

    // Gitea refuses: the same.
    gitea.with_repo("org/web", |repo| repo.failing_edits = true);
    let job = api.rotate().await;
    assert_eq!(api.wait(job).await, "failed");
    assert_eq!(std::fs::read(&env).unwrap(), before);
    assert_eq!(answer().await, sha256(&current));
    hook(&|h| assert_eq!(h.secret, current));
    jobs.push(job);

    // No value anywhere: pages, job output, API answers ...
    let mut pages = vec![
        "/".to_string(),
        "/apps/web".into(),
        "/apps/web/jobs".into(),
        "/audit".into(),
        "/api/audit".into(),
        "/api/apps".into(),
    ];
    for job in &jobs {
        pages.extend([
            format!("/jobs/{job}"),
            format!("/api/jobs/{job}"),
            format!("/api/jobs/{job}/output"),
        ]);
    }
    for page in &pages {
        let res = api.get(page).await;
        assert_eq!(res.status(), 200, "{page}");
        let body = res.text().await.unwrap();
        for value in &values {
            assert!(
                !body.contains(value.as_str()),
                "{page} shows a secret value"
            );
        }
    }
    let app_page = api.get("/apps/web").await.text().await.unwrap();
    assert!(app_page.contains("by token:ops"), "{app_page}");
    assert!(app_page.contains("deliveries are refused until both sides match"));

    // ... opsdeck's stdout and stderr, its database and WAL.
    let (status, _) = server.stop();
    assert!(status.success(), "{status}");
    let data = instance.dir.path().join("data");
    let mut places = vec![logs.join("stdout"), logs.join("stderr")];
    for name in ["opsdeck.db", "opsdeck.db-wal", "opsdeck.db-shm"] {
        places.push(data.join(name));
    }
    for place in places.iter().filter(|p| p.exists()) {
        let bytes = std::fs::read(place).unwrap();
        for value in &values {
            let found = bytes.windows(value.len()).any(|w| w == value.as_bytes());
            assert!(!found, "{} holds a secret value", place.display());
        }
    }
    run(&["systemctl", "stop", "web.service"]);
}

struct Api {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    async fn rotate(&self) -> i64 {
        let res = self
            .client
            .post(format!(
                "{}/api/apps/web/secrets/WEBHOOK_SECRET/rotate",
                self.url
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        let body: serde_json::Value = res.json().await.unwrap();
        body["job"].as_i64().unwrap()
    }

    async fn output(&self, job: i64) -> String {
        let path = format!("/api/jobs/{job}/output");
        self.get(&path).await.text().await.unwrap()
    }

    async fn wait(&self, job: i64) -> String {
        support::cli::job_end(&self.url, &self.token, job).await
    }
}

fn run(argv: &[&str]) {
    let status = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .status()
        .unwrap();
    assert!(status.success(), "{argv:?}");
}
