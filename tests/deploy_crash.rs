//! Crash safety of a `releases` deploy on a real systemd: the real
//! `opsdeck serve` kills itself with SIGKILL (`OPSDECK_CRASH_AT`, the same
//! signal as `kill -9`, at an exact point instead of a racing moment) at
//! five points of a deploy. After each, `current` is a complete release,
//! the service answers, and once opsdeck is back the job is `interrupted`
//! and the next deploy succeeds.

mod support;

use std::process::Stdio;

use opsdeck::host;
use support::cli::{Instance, job_end};
use support::sandbox::{self, Sandbox};
use support::webapp::{answer, answer_when_up, releases_setup, repository};

/// Where a deploy passes, in order: the release exported (before the
/// shared links), the build starting, the new symlink made (not yet renamed
/// over `current`), `current` switched (before the restart), the health
/// check starting (after the restart).
const POINTS: [&str; 5] = [
    "release:exported",
    "run:start",
    "switch:linked",
    "switch:renamed",
    "probe:start",
];

#[test]
fn kill_9_at_five_points_of_a_releases_deploy_leaves_a_complete_current() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_kill_9_during_releases_deploys");
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test]
async fn inside_kill_9_during_releases_deploys() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let (repos, _) = repository();
    let root = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let instance = Instance::new(&releases_setup(&repos, root.path(), port, 10));
    let token = instance.token("ops", "owner");
    let url = format!("http://127.0.0.1:{}", instance.port);
    let deploy = || {
        reqwest::Client::new()
            .post(format!("{url}/api/apps/web/deploy"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"ref": "main"}))
            .send()
    };

    // v1 is live.
    let server = instance.serve_with(&[], Stdio::null(), Stdio::null()).await;
    let job: serde_json::Value = deploy().await.unwrap().json().await.unwrap();
    let mut last = job["job"].as_i64().unwrap();
    assert_eq!(job_end(&url, &token, last).await, "succeeded");
    assert_eq!(answer_when_up(port).await, "v1");
    drop(server);

    let mut crashed = Vec::new();
    for (i, point) in POINTS.iter().enumerate() {
        repos.push("VERSION", &format!("v{}", i + 2), "Next version");
        let server = instance
            .serve_with(&[(host::CRASH_AT, point)], Stdio::null(), Stdio::null())
            .await;
        // opsdeck may die before its answer is written (the job can reach
        // the crash point first); the job is then the next one.
        let accepted = match deploy().await {
            Ok(answer) => answer.json::<serde_json::Value>().await.ok(),
            Err(_) => None,
        };
        last = accepted.and_then(|a| a["job"].as_i64()).unwrap_or(last + 1);
        crashed.push(last);
        let signal = server.death_signal().await;
        assert_eq!(signal, Some(9), "opsdeck did not die at {point}");

        // `current` is a whole, built release; the service answers.
        let current = std::fs::canonicalize(root.path().join("current")).unwrap();
        for file in ["server.py", "VERSION", "build.out", ".env"] {
            assert!(
                current.join(file).exists(),
                "at {point}: {} lacks {file}",
                current.display()
            );
        }
        let answered = answer_when_up(port).await;
        assert!(answered.starts_with('v'), "at {point}: {answered}");
    }

    // opsdeck is back: every crashed job says so, and the next deploy ships.
    let _server = instance.serve_with(&[], Stdio::null(), Stdio::null()).await;
    for job in crashed {
        assert_eq!(job_end(&url, &token, job).await, "interrupted", "job {job}");
    }
    repos.push("VERSION", "v9", "After the crashes");
    let job: serde_json::Value = deploy().await.unwrap().json().await.unwrap();
    assert_eq!(
        job_end(&url, &token, job["job"].as_i64().unwrap()).await,
        "succeeded"
    );
    assert_eq!(answer(port).await, "v9");
    assert!(!root.path().join(".current.next").exists());
}
