//! Values issued elsewhere against a real systemd (issue 23): the real
//! `opsdeck serve` sets a pasted token five times — through the API and
//! through the Set page without JavaScript — and each time a real service,
//! restarted by the job with the env file as its `EnvironmentFile=`,
//! answers with a hash of exactly that value (quoted values included, as
//! systemd reads them). Afterwards none of the values — the ones set, the
//! ones the env file's backups hold, one refused — is in the database or
//! its WAL (raw bytes), opsdeck's stdout and stderr, any page or API
//! answer, any job's output; and none was in the command line or the
//! environment of any process in the sandbox while the jobs ran (sampled
//! from /proc all along), except the app's own service, which gets it from
//! systemd as it should.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opsdeck::host::envfile;
use rand::RngCore;
use sha2::{Digest, Sha256};
use support::cli::Instance;
use support::sandbox::{self, Sandbox};

#[test]
fn set_values_restart_a_real_service_and_are_found_nowhere_else() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_set_values");
}

/// Answers every GET with sha256(GITEA_BOT_TOKEN), the value systemd gave
/// it from the env file.
const SERVICE: &str = r#"import hashlib, http.server, os, sys
digest = hashlib.sha256(os.environ.get("GITEA_BOT_TOKEN", "").encode()).hexdigest()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = digest.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

const OLD_TOKEN: &str = "old-gitea-bot-token-5a1e9c";
const DB_PASSWORD: &str = "db-password-7c3b21";

fn sha256(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn random_hex() -> String {
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What /proc showed while the jobs ran.
#[derive(Default)]
struct Seen {
    scans: usize,
    /// Command lines of processes seen running `systemctl`: proof that the
    /// sampling caught the jobs' children.
    systemctl: usize,
    /// Values found in the app's own service's environment, which systemd
    /// gives it from the env file: proof that the sampling would see one.
    in_unit: usize,
    /// `(pid, what, which value)` for every value found elsewhere.
    leaks: Vec<String>,
}

/// Reads every process's cmdline and environ until `stop`, looking for
/// `values`; found in the app's own unit (`web.service`), they are no leak.
fn sample_proc(values: Vec<String>, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>) {
    let own = std::process::id().to_string();
    while !stop.load(Ordering::Relaxed) {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            continue;
        };
        for entry in entries.flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == own {
                continue;
            }
            let dir = entry.path();
            for what in ["cmdline", "environ"] {
                let Ok(bytes) = std::fs::read(dir.join(what)) else {
                    continue;
                };
                // Read after the bytes: a unit's process is forked by
                // systemd in PID 1's cgroup, moves itself into the unit's
                // and only then execs with the unit's environment, so a
                // cgroup read before the environ could miss the move.
                let cgroup = std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
                let in_unit = cgroup.contains("/web.service");
                let mut seen = seen.lock().unwrap();
                if what == "cmdline" && bytes.windows(9).any(|w| w == b"systemctl") {
                    seen.systemctl += 1;
                }
                for value in &values {
                    if bytes.windows(value.len()).any(|w| w == value.as_bytes()) {
                        if in_unit {
                            seen.in_unit += 1;
                        } else {
                            seen.leaks
                                .push(format!("/proc/{pid}/{what} holds {value:?}"));
                        }
                    }
                }
            }
        }
        seen.lock().unwrap().scans += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_set_values() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let app = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = app.path().join(name);
        support::write_private(&path, text);
        path
    };
    let env = file(
        ".env",
        &format!(
            "# rfc-app\nGITEA_BOT_TOKEN={OLD_TOKEN}\nDATABASE_URL=postgres://web:{DB_PASSWORD}@localhost/web\nPORT=8000\n"
        ),
    );
    let script = file("service.py", SERVICE);
    let port = support::free_port();
    std::fs::write(
        "/run/systemd/system/web.service",
        format!(
            "[Service]\nEnvironmentFile={}\nExecStart=/usr/bin/python3 {} {port}\n",
            env.display(),
            script.display(),
        ),
    )
    .unwrap();
    run(&["systemctl", "daemon-reload"]);
    run(&["systemctl", "start", "web.service"]);

    // Five values as providers issue them; two need quoting in the file.
    let values: Vec<String> = vec![
        format!("gta_{}", random_hex()),
        format!("smtp pass#{}", random_hex()),
        format!("it's-{}", random_hex()),
        format!("tok/{}+{}=", random_hex(), random_hex()),
        format!("bounce-secret-{}", random_hex()),
    ];
    let refused = [
        format!("first-{}", random_hex()),
        format!("second-{}", random_hex()),
    ];
    let mut secret: Vec<String> = values.clone();
    secret.extend(refused.iter().cloned());
    secret.extend([OLD_TOKEN.to_string(), DB_PASSWORD.to_string()]);

    let instance = Instance::new(&format!(
        r#"[auth]
dev_login = true

[[app]]
name = "web"
environment = "production"
env_file = "{env}"
units = ["web.service"]
health = {{ url = "http://127.0.0.1:{port}/", timeout = "6s" }}

[[app.secret]]
name = "GITEA_BOT_TOKEN"
generate = "set"
note = "Make a new token for the bot in Gitea first."
"#,
        env = env.display(),
    ));
    let token = instance.token("ops", "owner");
    let logs = app.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let log = |name: &str| Stdio::from(std::fs::File::create(logs.join(name)).unwrap());
    let server = instance.serve_with(&[], log("stdout"), log("stderr")).await;
    let url = server.url.clone();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // A browser's session, from the dev sign-in.
    let res = client
        .post(format!("{url}/auth/dev"))
        .header("origin", &url)
        .form(&[("login", "ada"), ("role", "owner"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    let answer = || async {
        reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(answer().await, sha256(OLD_TOKEN));

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sampler = {
        let (values, stop, seen) = (secret.clone(), stop.clone(), seen.clone());
        std::thread::spawn(move || sample_proc(values, stop, seen))
    };

    let mut jobs = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let job = if i % 2 == 0 {
            // The API.
            let res = client
                .post(format!("{url}/api/apps/web/secrets/GITEA_BOT_TOKEN/set"))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "value": value }))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 202);
            res.json::<serde_json::Value>().await.unwrap()["job"]
                .as_i64()
                .unwrap()
        } else {
            // The Set page, as a browser without JavaScript sends it.
            let page = client
                .get(format!("{url}/apps/web/secrets/GITEA_BOT_TOKEN/set"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let csrf = page
                .split("name=\"csrf\" value=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .expect("the form's CSRF token")
                .to_owned();
            let res = client
                .post(format!("{url}/apps/web/secrets/GITEA_BOT_TOKEN/set"))
                .header("cookie", &cookie)
                .header("origin", &url)
                .form(&[("csrf", csrf.as_str()), ("value", value.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303);
            res.headers()["location"]
                .to_str()
                .unwrap()
                .trim_start_matches("/jobs/")
                .parse()
                .unwrap()
        };
        let state = support::cli::job_end(&url, &token, job).await;
        let output = support::cli::job_output(&url, &token, job).await;
        assert_eq!(state, "succeeded", "{output}");
        let text = std::fs::read_to_string(&env).unwrap();
        assert_eq!(
            envfile::get(&env, &text, "GITEA_BOT_TOKEN")
                .unwrap()
                .as_deref(),
            Some(value.as_str())
        );
        assert_eq!(
            answer().await,
            sha256(value),
            "the service runs with exactly the value set"
        );
        jobs.push(job);
    }

    // Refused: never written, never echoed.
    let res = client
        .post(format!("{url}/api/apps/web/secrets/GITEA_BOT_TOKEN/set"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "value": format!("{}\n{}", refused[0], refused[1]) }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    {
        let seen = seen.lock().unwrap();
        println!(
            "/proc sampled {} times during the jobs; a `systemctl` caught {} times; the service's own environment held a value {} times",
            seen.scans, seen.systemctl, seen.in_unit
        );
        assert!(seen.leaks.is_empty(), "{:#?}", seen.leaks);
        assert!(
            seen.in_unit > 0,
            "the sampling never saw the value where it is"
        );
        assert!(seen.scans > 20, "{} scans of /proc", seen.scans);
        assert!(
            seen.systemctl > 0,
            "the sampling never caught a job's `systemctl`: it proves nothing"
        );
    }

    // The backups hold the earlier values (which are looked for below).
    let backups = envfile::backups(&env).unwrap();
    assert_eq!(backups.len(), 5);
    let held: Vec<String> = backups
        .iter()
        .map(|b| {
            let text = std::fs::read_to_string(b).unwrap();
            envfile::get(b, &text, "GITEA_BOT_TOKEN").unwrap().unwrap()
        })
        .collect();
    let mut earlier = vec![OLD_TOKEN.to_string()];
    earlier.extend(values[..4].iter().cloned());
    assert_eq!(held, earlier);

    // No value in any page or API answer.
    let mut pages = vec![
        "/".to_string(),
        "/apps/web".into(),
        "/apps/web/jobs".into(),
        "/apps/web/secrets/GITEA_BOT_TOKEN/set".into(),
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
        for (who, auth) in [
            ("token", format!("Bearer {token}")),
            ("browser", String::new()),
        ] {
            let mut req = client.get(format!("{url}{page}"));
            if who == "token" {
                req = req.header("authorization", &auth);
            } else {
                req = req.header("cookie", &cookie);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 200, "{page} as {who}");
            let body = res.text().await.unwrap();
            for value in &secret {
                assert!(
                    !body.contains(value.as_str()),
                    "{page} shows a secret value to the {who}"
                );
            }
        }
    }
    let app_page = client
        .get(format!("{url}/apps/web"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(app_page.contains("by token:ops"), "{app_page}");

    // ... nor in opsdeck's stdout and stderr, its database and WAL.
    let (status, _) = server.stop();
    assert!(status.success(), "{status}");
    let data = instance.dir.path().join("data");
    let mut places = vec![logs.join("stdout"), logs.join("stderr")];
    for name in ["opsdeck.db", "opsdeck.db-wal", "opsdeck.db-shm"] {
        places.push(data.join(name));
    }
    let mut read = 0;
    for place in places.iter().filter(|p| p.exists()) {
        let bytes = std::fs::read(place).unwrap();
        read += bytes.len();
        for value in &secret {
            let found = bytes.windows(value.len()).any(|w| w == value.as_bytes());
            assert!(!found, "{} holds {value:?}", place.display());
        }
    }
    assert!(read > 0 && Path::new(&data.join("opsdeck.db")).exists());
    run(&["systemctl", "stop", "web.service"]);
}

fn run(argv: &[&str]) {
    let status = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .status()
        .unwrap();
    assert!(status.success(), "{argv:?}");
}
