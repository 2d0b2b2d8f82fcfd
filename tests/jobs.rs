//! The job engine against real child processes and a real SQLite database:
//! queueing, cancel, timeouts, restart recovery and the output stream.

mod support;

use opsdeck::jobs::State;
use support::deck::{self, Deck, process_gone};

const APPS: &str = r#"
[[app]]
name = "shop"

[[app.action]]
name = "hello"
run = ["sh", "-c", "echo hello; echo to stderr >&2; echo \"in $(pwd) with $GREETING\""]
cwd = "$DIR"
env = { GREETING = "hi" }

[[app.action]]
name = "gated"
run = ["sh", "-c", "echo started $$; while [ ! -e $DIR/gate ]; do sleep 0.02; done; echo released"]

[[app.action]]
name = "gated-too"
run = ["sh", "-c", "echo started; while [ ! -e $DIR/gate ]; do sleep 0.02; done"]

[[app.action]]
name = "tree"
run = ["sh", "-c", "sleep 1000 & echo grandchild $!; wait"]

[[app.action]]
name = "slow"
run = ["sleep", "30"]
timeout = "300ms"

[[app.action]]
name = "fails"
run = ["sh", "-c", "echo about to fail; exit 3"]

[[app.action]]
name = "escape"
run = ["sh", "-c", "sleep 1000 & echo child $!; setsid sleep 1000 & echo escaped $!; wait"]

[[app]]
name = "blog"

[[app.action]]
name = "hello"
run = ["echo", "blog says hello"]
"#;

#[tokio::test]
async fn an_action_runs_prints_its_command_and_is_audited() {
    let deck = Deck::start(APPS).await;
    let id = deck.run("shop", "hello").await.unwrap();
    let (lines, state) = deck.wait(id).await;
    assert_eq!(state, State::Succeeded);
    let dir = deck.dir.path().display().to_string();
    assert_eq!(
        lines[0],
        format!(
            "$ cd {dir} && sh -c 'echo hello; echo to stderr >&2; echo \"in $(pwd) with $GREETING\"'"
        )
    );
    // stdout and stderr are two pipes, read as they arrive: each keeps
    // its own order, while their interleaving is whatever arrived first.
    let stdout: Vec<&String> = lines[1..].iter().filter(|l| *l != "to stderr").collect();
    assert_eq!(stdout, ["hello", &format!("in {dir} with hi")]);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines.contains(&"to stderr".to_string()), "{lines:?}");
    let job = deck.ctx.jobs.job(id).await.unwrap();
    assert_eq!(
        (job.app.as_str(), job.kind.as_str(), job.target.as_str()),
        ("shop", "action", "hello")
    );
    assert_eq!(job.steps[0].state, "succeeded");
    assert_eq!(job.steps[0].exit_code, Some(0));
    let audit = deck.audit_of(id).await;
    let actions: Vec<_> = audit
        .iter()
        .map(|(a, who, o)| format!("{a} {who} {o}"))
        .collect();
    assert_eq!(
        actions,
        [
            "job.request alice ok",
            "job.start alice ok",
            "job.end alice ok"
        ]
    );
}

#[tokio::test]
async fn one_job_per_app_in_order_and_apps_in_parallel() {
    let deck = Deck::start(APPS).await;
    let first = deck.run("shop", "gated").await.unwrap();
    deck.wait_for_line(first, |l| l.starts_with("started"))
        .await;
    let second = deck.run("shop", "hello").await.unwrap();
    let third = deck.run("shop", "fails").await.unwrap();
    // The other app does not wait for shop's gate.
    let blog = deck.run("blog", "hello").await.unwrap();
    assert_eq!(deck.wait(blog).await.1, State::Succeeded);
    assert_eq!(
        deck.ctx.jobs.job(second).await.unwrap().state,
        State::Queued
    );
    let queue = deck.ctx.jobs.queue("shop").await.unwrap();
    assert_eq!(queue.running.map(|j| j.id), Some(first));
    assert_eq!(
        queue.waiting.iter().map(|j| j.id).collect::<Vec<_>>(),
        [second, third]
    );

    std::fs::write(deck.path("gate"), "").unwrap();
    assert_eq!(deck.wait(first).await.1, State::Succeeded);
    assert_eq!(deck.wait(second).await.1, State::Succeeded);
    let (lines, state) = deck.wait(third).await;
    assert_eq!(
        (state, lines.last().unwrap().as_str()),
        (State::Failed, "about to fail")
    );
    let jobs: Vec<_> =
        futures_util::future::join_all([first, second, third].map(|id| deck.ctx.jobs.job(id)))
            .await;
    let jobs: Vec<_> = jobs.into_iter().map(Result::unwrap).collect();
    for pair in jobs.windows(2) {
        assert!(
            pair[1].started_at.unwrap() >= pair[0].finished_at.unwrap(),
            "jobs of one app overlap"
        );
    }
    assert_eq!(
        jobs[2].summary.as_deref(),
        Some("step \"fails\" failed with exit code 3")
    );
    assert_eq!(jobs[2].steps[0].exit_code, Some(3));
}

#[tokio::test]
async fn an_identical_queued_request_is_refused_naming_who_and_when() {
    let deck = Deck::start(APPS).await;
    let first = deck.run("shop", "gated").await.unwrap();
    deck.wait_for_line(first, |l| l.starts_with("started"))
        .await;
    // While one runs, the same request may queue once.
    let queued = deck.run("shop", "gated").await.unwrap();
    let refused = deck.run("shop", "gated").await.unwrap_err();
    assert!(
        matches!(refused, opsdeck::Error::Conflict(_)),
        "{refused:?}"
    );
    let message = refused.to_string();
    assert!(
        message.starts_with("action gated of shop is already queued by alice at 20"),
        "{message}"
    );
    assert!(message.ends_with(" UTC"), "{message}");
    // Another action of the same app is a different request.
    let other = deck.run("shop", "gated-too").await.unwrap();
    std::fs::write(deck.path("gate"), "").unwrap();
    for id in [first, queued, other] {
        assert_eq!(deck.wait(id).await.1, State::Succeeded);
    }
}

#[tokio::test]
async fn cancel_kills_the_whole_process_tree() {
    let deck = Deck::start(APPS).await;
    let id = deck.run("shop", "tree").await.unwrap();
    let line = deck
        .wait_for_line(id, |l| l.starts_with("grandchild "))
        .await;
    let grandchild: u32 = line["grandchild ".len()..].parse().unwrap();
    assert!(!process_gone(grandchild));
    let bob = deck::actor("bob", opsdeck::auth::Role::Operator);
    deck.ctx.jobs.cancel(id, &bob).await.unwrap();
    assert_eq!(deck.wait(id).await.1, State::Cancelled);
    assert!(
        process_gone(grandchild),
        "the grandchild {grandchild} survived the cancel"
    );
    let job = deck.ctx.jobs.job(id).await.unwrap();
    assert_eq!(job.cancelled_by.as_deref(), Some("bob"));
    assert_eq!(job.summary.as_deref(), Some("cancelled by bob"));
    assert_eq!(job.steps[0].state, "cancelled");
    let audit = deck.audit_of(id).await;
    assert!(
        audit.contains(&("job.cancel".into(), "bob".into(), "ok".into())),
        "{audit:?}"
    );
    assert_eq!(
        audit.last().unwrap(),
        &(
            "job.end".to_string(),
            "alice".to_string(),
            "cancelled".to_string()
        )
    );
    let again = deck.ctx.jobs.cancel(id, &bob).await.unwrap_err();
    assert_eq!(
        again.to_string(),
        format!("job {id} has already ended (cancelled)")
    );
}

#[tokio::test]
async fn a_queued_job_can_be_cancelled_before_it_starts() {
    let deck = Deck::start(APPS).await;
    let first = deck.run("shop", "gated").await.unwrap();
    deck.wait_for_line(first, |l| l.starts_with("started"))
        .await;
    let queued = deck.run("shop", "hello").await.unwrap();
    deck.ctx
        .jobs
        .cancel(queued, &deck::actor("bob", opsdeck::auth::Role::Operator))
        .await
        .unwrap();
    assert_eq!(deck.wait(queued).await, (vec![], State::Cancelled));
    std::fs::write(deck.path("gate"), "").unwrap();
    assert_eq!(deck.wait(first).await.1, State::Succeeded);
    let job = deck.ctx.jobs.job(queued).await.unwrap();
    assert_eq!(
        (job.started_at, job.steps[0].state.as_str()),
        (None, "skipped")
    );
}

#[tokio::test]
async fn a_step_that_outlives_its_timeout_is_stopped() {
    let deck = Deck::start(APPS).await;
    let id = deck.run("shop", "slow").await.unwrap();
    let (lines, state) = deck.wait(id).await;
    assert_eq!(
        (state, lines),
        (State::TimedOut, vec!["$ sleep 30".to_string()])
    );
    let job = deck.ctx.jobs.job(id).await.unwrap();
    assert_eq!(
        job.summary.as_deref(),
        Some("step \"slow\" did not finish within 300ms and was stopped")
    );
    assert_eq!(job.steps[0].state, "timed_out");
}

#[tokio::test]
async fn unknown_apps_and_actions_are_404_and_low_roles_403() {
    let deck = Deck::start(APPS).await;
    let err = deck.run("nope", "hello").await.unwrap_err();
    assert_eq!(err.to_string(), "there is no app named \"nope\"");
    let err = deck.run("shop", "nope").await.unwrap_err();
    assert_eq!(err.to_string(), "shop has no action named \"nope\"");
    let viewer = deck::actor("vic", opsdeck::auth::Role::Viewer);
    let err = opsdeck::ops::actions::run(&deck.ctx, &viewer, "shop", "hello")
        .await
        .unwrap_err();
    assert!(matches!(err, opsdeck::Error::Forbidden(_)), "{err:?}");
    let denied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE actor = 'vic' AND outcome = 'denied'",
    )
    .fetch_one(&deck.ctx.db)
    .await
    .unwrap();
    assert_eq!(denied, 1);
}

/// POSTs an action run to a served opsdeck; returns the job id.
async fn post_run(url: &str, token: &str, app: &str, action: &str) -> i64 {
    let response = reqwest::Client::new()
        .post(format!("{url}/api/apps/{app}/actions/{action}/run"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    response.json::<serde_json::Value>().await.unwrap()["job"]
        .as_i64()
        .unwrap()
}

/// Follows a served job's SSE stream until `until` says stop; the data seen.
async fn read_stream(
    url: &str,
    token: &str,
    job: i64,
    until: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut response = reqwest::Client::new()
        .get(format!("{url}/api/jobs/{job}/events"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let events =
        support::sse::read_events(&mut response, &mut String::new(), |e| until(&e.2)).await;
    events.into_iter().map(|e| e.2).collect()
}

#[tokio::test]
async fn a_server_killed_mid_job_leaves_it_interrupted_its_processes_gone_and_the_queue_running() {
    let work = tempfile::tempdir().unwrap();
    let instance =
        support::cli::Instance::new(&APPS.replace("$DIR", &work.path().display().to_string()));
    let token = instance.token("ci", "operator");
    let mut server = instance.serve().await;
    let job = post_run(&server.url, &token, "shop", "escape").await;
    let seen = read_stream(&server.url, &token, job, |d| d.starts_with("escaped ")).await;
    let pid = |prefix: &str| -> u32 {
        seen.iter()
            .find_map(|d| d.strip_prefix(prefix))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (child, escaped) = (pid("child "), pid("escaped "));
    let next = post_run(&server.url, &token, "shop", "hello").await;

    server.child.kill().unwrap(); // SIGKILL: no drain, no cleanup
    server.child.wait().unwrap();
    assert!(
        !process_gone(child) && !process_gone(escaped),
        "the job's processes outlive the server"
    );

    let server = instance.serve().await;
    assert!(
        process_gone(child),
        "the job's child {child} survived the restart"
    );
    assert!(
        process_gone(escaped),
        "the process {escaped} that left the job's group survived the restart"
    );
    let shown = support::cli::job(&server.url, &token, job).await;
    assert_eq!(shown["state"], "interrupted");
    assert_eq!(shown["steps"][0]["state"], "interrupted");
    let end = read_stream(&server.url, &token, next, |d| d.starts_with("{\"state\"")).await;
    assert_eq!(
        end.last().unwrap(),
        r#"{"state":"succeeded"}"#,
        "the queued job ran after the restart"
    );

    let (status, _) = server.stop();
    assert!(status.success());
    let verify = instance.run(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        support::cli::text(&verify.stderr)
    );
    let db = instance.sqlite().await;
    let ended: Vec<(String, String)> =
        sqlx::query_as("SELECT action, outcome FROM audit_events WHERE job_id = ? ORDER BY id")
            .bind(job)
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        ended.last().unwrap(),
        &("job.end".to_string(), "error".to_string())
    );
}

#[tokio::test]
async fn sigterm_gives_running_jobs_the_grace_then_interrupts_them_and_keeps_the_queue() {
    let work = tempfile::tempdir().unwrap();
    let apps = APPS.replace("$DIR", &work.path().display().to_string());
    let instance =
        support::cli::Instance::new(&format!("[jobs]\nshutdown_grace = \"300ms\"\n{apps}"));
    let token = instance.token("ci", "operator");
    let server = instance.serve().await;
    let job = post_run(&server.url, &token, "shop", "tree").await;
    let seen = read_stream(&server.url, &token, job, |d| d.starts_with("grandchild ")).await;
    let grandchild: u32 = seen.last().unwrap()["grandchild ".len()..].parse().unwrap();
    let queued = post_run(&server.url, &token, "shop", "hello").await;

    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(
        process_gone(grandchild),
        "the job's grandchild survived the shutdown"
    );
    let db = instance.sqlite().await;
    let state = |id: i64| {
        let db = db.clone();
        async move {
            sqlx::query_as::<_, (String, Option<String>)>(
                "SELECT state, summary FROM jobs WHERE id = ?",
            )
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    assert_eq!(
        state(job).await,
        (
            "interrupted".into(),
            Some("opsdeck shut down while this job was running".into())
        )
    );
    assert_eq!(
        state(queued).await.0,
        "queued",
        "a queued job waits for the next start"
    );

    let server = instance.serve().await;
    let end = read_stream(&server.url, &token, queued, |d| d.starts_with("{\"state\"")).await;
    assert_eq!(end.last().unwrap(), r#"{"state":"succeeded"}"#);
}

/// Issue 20, item 3: lines are cut at 64 KiB; a secret printed across the
/// cut (65,516 bytes of filler, then `SECRET_KEY=<value>`, then, a second
/// later, the newline) must be masked in the output served and stored —
/// also on stderr, with a stdout line arriving while its rest is awaited.
#[tokio::test]
async fn a_secret_straddling_the_64_kib_line_cut_is_masked() {
    use support::server;
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    let value = "straddling-secret-0123456789abcdef";
    std::fs::write(&env, format!("SECRET_KEY={value}\n")).unwrap();
    let s = server::start(&format!(
        r#"[[app]]
name = "shop"
env_file = "{env}"

[[app.action]]
name = "long-line"
run = ["sh", "-c", "head -c 65516 /dev/zero | tr '\\0' f; printf 'SECRET_KEY=%s' \"$(cut -d= -f2 {env})\"; sleep 1; echo; echo done"]

[[app.action]]
name = "long-line-stderr"
run = ["sh", "-c", "{{ head -c 65516 /dev/zero | tr '\\0' f; printf 'SECRET_KEY=%s' \"$(cut -d= -f2 {env})\"; }} >&2; echo between; sleep 1; echo >&2; echo done >&2"]
"#,
        env = env.display()
    ))
    .await;
    let token = s.token("ops", opsdeck::auth::Role::Owner).await;
    for action in ["long-line", "long-line-stderr"] {
        let res = server::client()
            .post(s.at(&format!("/api/apps/shop/actions/{action}/run")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        let job = server::json(res).await["job"].as_i64().unwrap();
        assert_eq!(s.finished(job).await, State::Succeeded);
        let output = s
            .get_as(&format!("/api/jobs/{job}/output"), &token)
            .await
            .text()
            .await
            .unwrap();
        let stored: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT data FROM job_output WHERE job_id = ?")
                .bind(job)
                .fetch_all(&s.ctx.db)
                .await
                .unwrap();
        let stored = String::from_utf8_lossy(&stored.concat()).into_owned();
        for (place, text) in [("served", &output), ("stored", &stored)] {
            for piece in [&value[..10], &value[10..20], &value[value.len() - 10..]] {
                assert!(
                    !text.contains(piece),
                    "{action} {place}: {piece:?} of the value shows"
                );
            }
            assert!(text.contains("SECRET_KEY=[redacted]"), "{place}");
            assert!(text.contains("done"), "{place}");
        }
    }
}
