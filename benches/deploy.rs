//! Issue 4's figures: a deploy through opsdeck against the same steps as
//! a plain shell script (fetch, check out, build) on the same repository,
//! and a `releases` rollback (a switch of `current`; the app has no unit,
//! so no restart is counted); issue 25's: what the notification outbox
//! adds to a failing job (one INSERT per receiver). Prints Markdown table rows;
//! `cargo bench --bench deploy -- --bench`. Without `--bench` (as
//! `cargo test --all-targets` runs it) it returns at once.

use std::time::{Duration, Instant};

use opsdeck::auth::{Actor, Role, Via};
use opsdeck::jobs::State;
use opsdeck::ops::{deploy, rollback};

#[path = "../tests/support/mod.rs"]
mod support;

use support::repos::Repos;

const ROUNDS: usize = 7;
/// A build with about a second of work in it, the same for both sides:
/// real builds (pip, npm) take seconds to minutes, so the fixed cost
/// opsdeck adds is what the ratio should show.
const BUILD: &str =
    "set -e; i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; cat VERSION > build.out\n";

fn ada() -> Actor {
    Actor {
        login: "ada".into(),
        role: Role::Owner,
        via: Via::Session,
        remote: String::new(),
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (through_opsdeck, by_script) = deploy_vs_script().await;
    println!(
        "| deploy (fetch, checkout, build) through opsdeck ÷ the same as a shell script | {:.0} ms | {:.0} ms | {:.2} ({:+.0} ms) | ≤ 1.05, +≤ 300 ms |",
        ms(through_opsdeck),
        ms(by_script),
        ms(through_opsdeck) / ms(by_script),
        ms(through_opsdeck) - ms(by_script),
    );
    let rollback = releases_rollback().await;
    println!(
        "| rollback, `releases` strategy, excluding the unit's restart | {:.0} ms | 1000 ms (target) | {:.2} | ≤ 1 s |",
        ms(rollback),
        ms(rollback) / 1000.0,
    );
    let (with, without) = outbox_cost().await;
    println!(
        "| failing one-step job with a `[[notify]]` for `job.failed` (its receiver down, the deliverer retrying) vs without, median of {OUTBOX_ROUNDS} | {:.1} ms | {:.1} ms | {:+.1} ms | no measurable difference (≤ +1 ms) |",
        ms(with),
        ms(without),
        ms(with) - ms(without),
    );
}

const OUTBOX_ROUNDS: usize = 41;

/// The median time from asking for a failing action to its end, on an
/// opsdeck with a `[[notify]]` that wants the failure (its receiver
/// refuses connections, so the deliverer keeps retrying meanwhile) and on
/// one without; rounds alternate.
async fn outbox_cost() -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("notify.key");
    std::fs::write(&key, "bench-key").unwrap();
    let app = "[[app]]\nname = \"web\"\n\n[[app.action]]\nname = \"fail\"\nrun = [\"false\"]\n";
    let plain = support::server::start(app).await;
    let notified = support::server::start(&format!(
        "{app}\n[[notify]]\nname = \"on-call\"\nurl = \"http://127.0.0.1:{}/hook\"\nsecret_file = \"{}\"\nevents = [\"job.failed\"]\nbackoff = \"1s\"\nattempts = 1000\n",
        support::free_port(),
        key.display()
    ))
    .await;
    let ctx = &notified.ctx;
    tokio::spawn(opsdeck::notify::deliver_forever(
        ctx.config.clone(),
        ctx.db.clone(),
        ctx.audit.clone(),
    ));
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..OUTBOX_ROUNDS {
        for (server, times) in [(&notified, &mut with), (&plain, &mut without)] {
            let started = Instant::now();
            let job = opsdeck::ops::actions::run(&server.ctx, &ada(), "web", "fail")
                .await
                .unwrap();
            assert_eq!(server.finished(job).await, State::Failed);
            times.push(started.elapsed());
        }
    }
    let (queued,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM notify_outbox")
        .fetch_one(&notified.ctx.db)
        .await
        .unwrap();
    assert_eq!(queued, i64::try_from(OUTBOX_ROUNDS).unwrap());
    (median(with), median(without))
}

async fn deploy_vs_script() -> (Duration, Duration) {
    let ours = Repos::new();
    let theirs = Repos::new();
    for repos in [&ours, &theirs] {
        repos.push("build.sh", BUILD, "Build");
        support::repos::sh_git(&repos.app, &["pull", "-q"]);
    }
    let server = support::server::start(&format!(
        "[[app]]\nname = \"web\"\nrepo = \"{}\"\nbuild = [ {{ run = [\"sh\", \"build.sh\"] }} ]\n",
        ours.app.display()
    ))
    .await;
    let script = format!(
        "set -e; cd {}; git fetch -q --prune --tags origin; git status --porcelain --untracked-files=no; git checkout -q --detach origin/main; sh build.sh",
        theirs.app.display()
    );
    let (mut opsdeck_times, mut script_times) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        ours.push("VERSION", &format!("v{round}"), "Next");
        theirs.push("VERSION", &format!("v{round}"), "Next");
        let started = Instant::now();
        let job = deploy::request(&server.ctx, &ada(), "web", "main")
            .await
            .unwrap();
        assert_eq!(server.finished(job).await, State::Succeeded);
        opsdeck_times.push(started.elapsed());

        let started = Instant::now();
        let status = tokio::process::Command::new("sh")
            .args(["-c", &script])
            .status()
            .await
            .unwrap();
        assert!(status.success());
        script_times.push(started.elapsed());
    }
    (median(opsdeck_times), median(script_times))
}

async fn releases_rollback() -> Duration {
    let repos = Repos::new();
    let root = tempfile::tempdir().unwrap();
    let server = support::server::start(&format!(
        "[[app]]\nname = \"web\"\nrepo = \"{}\"\nstrategy = \"releases\"\npath = \"{}\"\nkeep = 20\n",
        repos.app.display(),
        root.path().display()
    ))
    .await;
    let ctx = &server.ctx;
    let mut times = Vec::new();
    for round in 0..ROUNDS {
        // Two fresh good releases, then back from the newer to the older.
        for version in ["a", "b"] {
            repos.push("VERSION", &format!("{round}{version}"), "Next");
            let job = deploy::request(ctx, &ada(), "web", "main").await.unwrap();
            assert_eq!(server.finished(job).await, State::Succeeded);
        }
        let started = Instant::now();
        let job = rollback::request(ctx, &ada(), "web", None).await.unwrap();
        assert_eq!(server.finished(job).await, State::Succeeded);
        times.push(started.elapsed());
    }
    median(times)
}
