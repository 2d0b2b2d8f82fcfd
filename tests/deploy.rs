//! The Deploy button, `checkout` strategy, on a real systemd: a small HTTP
//! service under a real unit, deployed from a real git repository whose
//! commits include one that fails its health check and one whose build fails.

mod support;

use opsdeck::Error;
use opsdeck::auth::{Actor, Role};
use opsdeck::host::Host;
use opsdeck::host::git;
use opsdeck::jobs::State;
use opsdeck::ops::{deploy, rollback};
use opsdeck::releases;
use support::repos::sh_git;
use support::sandbox::{self, Sandbox};
use support::webapp::{WebApp, ada, answer, deploy_a_broken_build};

#[test]
fn checkout_deploys_and_rolls_back_automatically_on_a_real_systemd() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_checkout_deploys_and_rolls_back");
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test]
async fn inside_checkout_deploys_and_rolls_back() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let WebApp {
        repos,
        server,
        port,
        v1,
        ..
    } = WebApp::checkout().await;
    let ctx = &server.ctx;

    // Deploy v2: the service answers v2; the release log says who and what.
    let v2 = repos.push("VERSION", "v2", "Version 2");
    let job = deploy::request(ctx, &ada(), "web", "main").await.unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert_eq!(answer(port).await, "v2");
    let log = releases::list(&ctx.db, "web", 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0].sha.as_str(),
            log[0].git_ref.as_str(),
            log[0].actor.as_str()
        ),
        (v2.as_str(), "main", "ada")
    );
    assert_eq!((log[0].job, log[0].outcome().as_str()), (job, "succeeded"));
    assert!(log[0].good());

    // v3 serves but fails its health check: rolled back to v2 automatically.
    repos.push_files(
        &[("VERSION", Some("v3")), ("UNHEALTHY", Some("yes"))],
        "Version 3",
    );
    let job = deploy::request(ctx, &ada(), "web", "main").await.unwrap();
    assert_eq!(server.finished(job).await, State::Failed);
    let summary = ctx.jobs.job(job).await.unwrap().summary.unwrap();
    assert_eq!(
        summary,
        "step \"Health check\" failed; the recovery steps succeeded"
    );
    assert_eq!(answer(port).await, "v2");
    assert_eq!(
        git::head(&Host::Local, &repos.app).await.unwrap().as_str(),
        v2
    );
    let bad = &releases::list(&ctx.db, "web", 10).await.unwrap()[0];
    assert_eq!(
        (bad.bad, bad.outcome().as_str()),
        (true, "failed, rolled back")
    );
    let current = releases::current(&ctx.db, "web").await.unwrap().unwrap();
    assert_eq!(current.sha, v2);

    // v4's build fails: the job fails, v2 still answers.
    deploy_a_broken_build(&repos, &server, port).await;
    assert_eq!(
        git::head(&Host::Local, &repos.app).await.unwrap().as_str(),
        v2
    );

    // Hostile refs, unknown branches and a dirty tree are refused before
    // anything is queued.
    let jobs_before = ctx.jobs.recent(Some("web"), 100).await.unwrap().len();
    let marker = repos.app.parent().unwrap().join("x");
    for hostile in [
        format!("--upload-pack=touch {}", marker.display()),
        "../../etc".into(),
        "main;id".into(),
        "x".repeat(10 * 1024),
    ] {
        let refused = deploy::request(ctx, &ada(), "web", &hostile).await;
        assert!(matches!(refused, Err(Error::BadRequest(ref m)) if m.contains("is refused")));
    }
    let unknown = deploy::request(ctx, &ada(), "web", "no-such-branch").await;
    assert!(matches!(unknown, Err(Error::BadRequest(ref m)) if m.contains("is not a branch")));
    std::fs::write(repos.app.join("VERSION"), "edited by hand").unwrap();
    let Err(Error::Conflict(dirty)) = deploy::request(ctx, &ada(), "web", "main").await else {
        panic!("a dirty work tree must be refused");
    };
    assert!(dirty.contains("uncommitted changes to VERSION"), "{dirty}");
    assert!(!marker.exists());
    let jobs_after = ctx.jobs.recent(Some("web"), 100).await.unwrap().len();
    assert_eq!(jobs_after, jobs_before, "a refused deploy queued a job");
    assert_eq!(answer(port).await, "v2");
    sh_git(&repos.app, &["checkout", "--", "VERSION"]);

    // Rollback: with v1 and v2 deployed, the button goes back to v1 and
    // marks v2 bad; a bad release cannot be chosen.
    for sha in [&v1, &v2] {
        let job = deploy::request(ctx, &ada(), "web", sha).await.unwrap();
        let state = server.finished(job).await;
        assert_eq!(
            state,
            State::Succeeded,
            "{:#?}",
            ctx.jobs.job(job).await.unwrap()
        );
    }
    assert_eq!(answer(port).await, "v2");
    let job = rollback::request(ctx, &ada(), "web", None).await.unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert_eq!(answer(port).await, "v1");
    let log = releases::list(&ctx.db, "web", 10).await.unwrap();
    let (back, v1_release, v2_release) = (&log[0], &log[2], &log[1]);
    assert_eq!(back.kind, "rollback");
    assert_eq!(back.sha, v1);
    assert_eq!(
        back.git_ref,
        format!("release {} ({})", v1_release.id, &v1[..7])
    );
    assert!(v2_release.bad && v1_release.good() && back.good());
    let Err(Error::Conflict(refused)) =
        rollback::request(ctx, &ada(), "web", Some(v2_release.id)).await
    else {
        panic!("a bad release must not be a rollback target");
    };
    assert!(refused.contains("is not a good release"), "{refused}");

    // The API: deploy v2 again, then roll back with no release named (to v1);
    // a hostile ref is a 400 that says why.
    let token = server.token("ci", Role::Admin).await;
    let post = |path: &str, body: serde_json::Value| {
        reqwest::Client::new()
            .post(format!("{}/api/apps/web/{path}", server.url))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let refused = post("deploy", serde_json::json!({"ref": "main;id"}))
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let error: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(
        error["error"],
        "the ref \"main;id\" is refused: it contains ';'; a ref may contain only letters, digits and . _ / + -"
    );
    // Each refused ref above is a `denied` row, the long one clipped.
    let denied = server.audit_rows("deploy.ref").await;
    assert_eq!(denied.len(), 5, "{denied:?}");
    assert!(
        denied
            .iter()
            .all(|(outcome, why)| outcome == "denied" && why.len() < 400)
    );
    assert!(denied[4].1.contains("main;id"), "{denied:?}");
    for (path, body, answers) in [
        ("deploy", serde_json::json!({"ref": v2}), "v2"),
        ("rollback", serde_json::json!({}), "v1"),
    ] {
        let accepted = post(path, body).await.unwrap();
        assert_eq!(accepted.status(), 202);
        let job: serde_json::Value = accepted.json().await.unwrap();
        let state = server.finished(job["job"].as_i64().unwrap()).await;
        assert_eq!(state, State::Succeeded, "{path}");
        assert_eq!(answer(port).await, answers, "{path}");
    }
    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, detail FROM audit_events WHERE action = 'release.create' ORDER BY id DESC LIMIT 1",
    )
    .fetch_all(&ctx.db)
    .await
    .unwrap();
    assert_eq!(audit[0].0, "token:ci");
    assert!(audit[0].1.contains(&v1), "{}", audit[0].1);
}

#[test]
fn twenty_concurrent_deploys_run_one_at_a_time_and_none_twice() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_twenty_concurrent_deploys");
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test]
async fn inside_twenty_concurrent_deploys() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let web = WebApp::checkout().await;
    let ctx = &web.server.ctx;
    web.repos.push("VERSION", "v2", "Version 2");
    let requests = (0..20).map(|i| {
        let actor = Actor {
            login: format!("user{i}"),
            ..ada()
        };
        async move { deploy::request(ctx, &actor, "web", "main").await }
    });
    let results = futures_util::future::join_all(requests).await;
    let mut jobs = Vec::new();
    for result in results {
        match result {
            Ok(job) => jobs.push(job),
            Err(Error::Conflict(m))
                if m.contains("deploy main of web is already queued by user") => {}
            Err(other) => panic!("unexpected refusal: {other}"),
        }
    }
    let mut ran = Vec::new();
    for &job in &jobs {
        assert_eq!(web.server.finished(job).await, State::Succeeded);
        let job = ctx.jobs.job(job).await.unwrap();
        ran.push((job.started_at.unwrap(), job.finished_at.unwrap()));
    }
    ran.sort();
    for pair in ran.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "two deploys of web overlapped: {ran:?}"
        );
    }
    let log = releases::list(&ctx.db, "web", 100).await.unwrap();
    assert_eq!(
        log.len(),
        jobs.len(),
        "each accepted request is one release"
    );
    assert_eq!(answer(web.port).await, "v2");
}
