//! A scheduled rotation against a real systemd, through the real `opsdeck
//! serve` and its wall-clock scheduler: SITG's bot with its webhook secret
//! in an env file, a store command and a GitHub stand-in, rotated by an
//! every-minute `schedule` exactly once per minute boundary — also when
//! opsdeck restarts within the minute — each time restarting a real unit
//! that records a hash of the value systemd gave it. Then GitHub fails: the
//! env file, the unit, the store and GitHub all keep the previous value.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use opsdeck::host::envfile;
use sha2::{Digest, Sha256};
use support::cli::{Instance, job_end, job_output};
use support::github::{FakeGithub, Hook};
use support::sandbox::{self, Sandbox, sh};

#[test]
fn a_scheduled_rotation_restarts_a_real_unit_once_a_minute_and_a_github_failure_restores() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_scheduled_rotations");
}

const FIRST: &str = "first-github-secret-0123456789";
const HOOK_URL: &str = "https://bot.example.org/webhooks/github";

fn sha256(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn secret(env: &Path) -> String {
    let text = std::fs::read_to_string(env).unwrap();
    envfile::get(env, &text, "GITHUB_WEBHOOK_SECRET")
        .unwrap()
        .unwrap()
}

/// Waits until the unit (re)started with `value`: its hash file says so.
async fn unit_runs_with(hash_file: &Path, value: &str) {
    let want = sha256(value);
    for _ in 0..500 {
        let found = std::fs::read_to_string(hash_file).unwrap_or_default();
        if found.starts_with(&want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the unit does not run with the expected value");
}

/// The rotations opsdeck recorded: (job, actor, created at).
async fn rotations(instance: &Instance) -> Vec<(i64, String, DateTime<Utc>)> {
    let db = instance.sqlite().await;
    let rows: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT id, actor, created_at FROM jobs WHERE kind = 'rotate' ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap();
    db.close().await;
    rows.into_iter()
        .map(|(id, actor, at)| (id, actor, DateTime::from_timestamp_millis(at).unwrap()))
        .collect()
}

/// Waits until opsdeck has recorded `n` rotations; the newest.
async fn rotation(instance: &Instance, n: usize) -> (i64, String, DateTime<Utc>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(100);
    loop {
        let all = rotations(instance).await;
        assert!(all.len() <= n, "more rotations than minutes: {all:?}");
        if all.len() == n {
            return all[n - 1].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no rotation {n}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The minute boundary after `at`.
fn next_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    at.with_second(0).unwrap().with_nanosecond(0).unwrap() + chrono::TimeDelta::minutes(1)
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_scheduled_rotations() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let app = tempfile::tempdir().unwrap();
    let env = app.path().join("bot-worker.env");
    std::fs::write(
        &env,
        format!("GITHUB_WEBHOOK_SECRET={FIRST}\nBACKEND_BASE_URL=https://sitg.io\n"),
    )
    .unwrap();
    let (script, records) = support::store::recorder(app.path());
    let hash_file = app.path().join("hash");
    // `$$` and `%%`: systemd passes `$` and `%` on to the shell.
    std::fs::write(
        "/run/systemd/system/bot.service",
        format!(
            "[Service]\nEnvironmentFile={}\nExecStart=/bin/sh -c 'printf %%s \"$${{GITHUB_WEBHOOK_SECRET}}\" | sha256sum > {}; exec sleep infinity'\n",
            env.display(),
            hash_file.display()
        ),
    )
    .unwrap();
    sh(&["systemctl", "daemon-reload"]);
    sh(&["systemctl", "start", "bot.service"]);
    unit_runs_with(&hash_file, FIRST).await;

    let github = FakeGithub::start().await;
    github.with_repo("sitg/bot", |repo| {
        repo.hooks = vec![Hook::new(11, HOOK_URL, FIRST, &["pull_request"])]
    });
    let config = |schedule: &str| {
        format!(
            r#"[auth]
{github}
[[app]]
name = "bot"
env_file = "{env}"
units = ["bot.service"]

[[app.secret]]
name = "GITHUB_WEBHOOK_SECRET"
generate = "hex:32"
github_webhook = {{ repo = "sitg/bot", url = "{HOOK_URL}" }}
store = {{ run = ["python3", "{script}", "{records}"] }}
{schedule}
"#,
            github = github.auth_lines(app.path()),
            env = env.display(),
            script = script.display(),
            records = records.0.display(),
        )
    };
    let instance = Instance::new(&config("schedule = \"* * * * *\""));
    let token = instance.token("ops", "owner");
    let serve = || instance.serve_with(&[], Stdio::null(), Stdio::null());

    // The first minute boundary after opsdeck starts rotates it once (it
    // starts well within a minute, so the boundary is known).
    if Utc::now().second() >= 50 {
        let wait = next_minute(Utc::now()) - Utc::now() + chrono::TimeDelta::seconds(1);
        tokio::time::sleep(wait.to_std().unwrap()).await;
    }
    let boundary = next_minute(Utc::now());
    let server = serve().await;
    let (job, actor, at) = rotation(&instance, 1).await;
    assert_eq!(actor, "system:scheduler");
    assert!(
        at >= boundary && at < boundary + chrono::TimeDelta::seconds(10),
        "{at}"
    );
    let state = job_end(&server.url, &token, job).await;
    assert_eq!(
        state,
        "succeeded",
        "{}",
        job_output(&server.url, &token, job).await
    );
    let first_new = secret(&env);
    unit_runs_with(&hash_file, &first_new).await;
    assert_eq!(github.hook("sitg/bot", 11).secret, first_new);
    assert_eq!(records.stdin(0), first_new);

    // Restarted within that minute: the minute is not rotated again; the
    // next boundary rotates it once more.
    let (status, _) = server.stop();
    assert!(status.success(), "{status}");
    let server = serve().await;
    let restarted = Utc::now();
    assert!(
        restarted < boundary + chrono::TimeDelta::seconds(55),
        "too slow to test a restart within the minute"
    );
    let (job, actor, at) = rotation(&instance, 2).await;
    let next = boundary + chrono::TimeDelta::minutes(1);
    assert_eq!(actor, "system:scheduler");
    assert!(
        at >= next && at < next + chrono::TimeDelta::seconds(10),
        "{at}"
    );
    assert_eq!(job_end(&server.url, &token, job).await, "succeeded");
    let second_new = secret(&env);
    assert_ne!(second_new, first_new);
    unit_runs_with(&hash_file, &second_new).await;
    assert_eq!(github.hook("sitg/bot", 11).secret, second_new);
    assert_eq!(records.stdin(1), second_new);
    let (status, _) = server.stop();
    assert!(status.success(), "{status}");

    // Without the schedule (nothing else rotates it now), GitHub fails: the
    // job fails and everything keeps the previous value.
    std::fs::write(&instance.config, format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\ndata_dir = {data:?}\n{rest}",
        port = instance.port,
        data = instance.dir.path().join("data").display().to_string(),
        rest = config(""),
    ))
    .unwrap();
    let server = serve().await;
    github.with_repo("sitg/bot", |repo| repo.failing_hooks = vec![11]);
    let before = std::fs::read(&env).unwrap();
    let res = reqwest::Client::new()
        .post(format!(
            "{}/api/apps/bot/secrets/GITHUB_WEBHOOK_SECRET/rotate",
            server.url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let job = res.json::<serde_json::Value>().await.unwrap()["job"]
        .as_i64()
        .unwrap();
    assert_eq!(job_end(&server.url, &token, job).await, "failed");
    let output = job_output(&server.url, &token, job).await;
    assert_eq!(std::fs::read(&env).unwrap(), before, "{output}");
    unit_runs_with(&hash_file, &second_new).await;
    assert_eq!(github.hook("sitg/bot", 11).secret, second_new);
    assert_eq!(
        records.runs(),
        4,
        "handed the new value, then the previous one"
    );
    assert_eq!(records.stdin(3), second_new);
    assert!(
        output.contains(
            "GitHub refused /repos/sitg/bot/hooks/11 500 Internal Server Error: Server Error"
        ),
        "{output}"
    );
    assert_eq!(rotations(&instance).await.len(), 3);
    drop(server);
    sh(&["systemctl", "stop", "bot.service"]);
}
