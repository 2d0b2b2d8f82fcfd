//! The Deploy and Rollback buttons, `releases` strategy, on a real systemd:
//! each deploy a new directory under `releases/`, `.env` linked from
//! `shared/`, `current` switched atomically, old releases cleaned up —
//! never the current one or the rollback target.

mod support;

use opsdeck::Error;
use opsdeck::auth::Role;
use opsdeck::jobs::State;
use opsdeck::ops::{deploy, rollback};
use opsdeck::releases;
use support::sandbox::{self, Sandbox};
use support::webapp::{WebApp, ada, answer, answer_when_up, deploy_a_broken_build};

#[test]
fn releases_deploy_switch_roll_back_and_clean_up_on_a_real_systemd() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_releases_deploy_and_roll_back");
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test]
async fn inside_releases_deploy_and_roll_back() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let web = WebApp::releases(1).await;
    let (ctx, server, port) = (&web.server.ctx, &web.server, web.port);
    let root = web.root.as_ref().unwrap().path().to_owned();

    // The first deploy makes the first release and starts the service.
    let job = deploy::request(ctx, &ada(), "web", "main").await.unwrap();
    assert_eq!(
        server.finished(job).await,
        State::Succeeded,
        "{:#?}",
        ctx.jobs.job(job).await
    );
    assert_eq!(answer_when_up(port).await, "v1");
    let first = web.current();
    assert!(first.ends_with(&web.v1[..7]), "{first}");
    let env = root.join("releases").join(&first).join(".env");
    assert_eq!(std::fs::read_link(&env).unwrap(), root.join("shared/.env"));
    assert!(
        root.join("releases")
            .join(&first)
            .join("build.out")
            .exists()
    );
    assert!(!root.join("releases").join(&first).join(".git").exists());

    // v2: a new release, live; the log names its directory and who.
    let v2 = web.repos.push("VERSION", "v2", "Version 2");
    let job = deploy::request(ctx, &ada(), "web", "main").await.unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert_eq!(answer(port).await, "v2");
    let second = web.current();
    assert!(
        second.ends_with(&v2[..7]) && second > first,
        "{first} then {second}"
    );
    let log = releases::list(&ctx.db, "web", 10).await.unwrap();
    assert_eq!(
        (
            log[0].sha.as_str(),
            log[0].actor.as_str(),
            log[0].dir.as_deref()
        ),
        (v2.as_str(), "ada", Some(second.as_str()))
    );

    // v3 fails its health check: current switches back to v2 by itself.
    web.repos.push_files(
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
    assert_eq!(web.current(), second);
    let log = releases::list(&ctx.db, "web", 10).await.unwrap();
    assert_eq!(
        (log[0].bad, log[0].outcome().as_str()),
        (true, "failed, rolled back")
    );

    // v4's build fails: nothing live changes, no recovery needed.
    deploy_a_broken_build(&web.repos, server, port).await;
    assert_eq!(web.current(), second);
    assert_eq!(web.release_dirs().len(), 4, "{:?}", web.release_dirs());

    // v5 goes live; with keep = 1 its cleanup removes v1 and both failed
    // releases (they never count toward keep) but keeps v2, the rollback
    // target.
    let v5 = web.repos.push_files(
        &[("VERSION", Some("v5")), ("BROKEN_BUILD", None)],
        "Version 5",
    );
    let job = deploy::request(ctx, &ada(), "web", "main").await.unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert_eq!(answer(port).await, "v5");
    let fifth = web.current();
    assert_eq!(web.release_dirs(), vec![second.clone(), fifth.clone()]);
    let (output, _) = support::deck::output(ctx, job).await;
    assert!(
        output
            .iter()
            .any(|l| l.contains(&format!("release {second}: the rollback target"))),
        "{output:#?}"
    );

    // Rollback: back to v2 by switching, no build step, no new directory.
    let job = rollback::request(ctx, &ada(), "web", None).await.unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert_eq!(answer(port).await, "v2");
    assert_eq!(web.current(), second);
    let steps: Vec<String> = ctx
        .jobs
        .job(job)
        .await
        .unwrap()
        .steps
        .into_iter()
        .map(|s| s.title)
        .collect();
    assert!(steps.iter().all(|t| !t.starts_with("Build")), "{steps:?}");
    assert_eq!(web.release_dirs(), vec![second.clone(), fifth.clone()]);
    let log = releases::list(&ctx.db, "web", 10).await.unwrap();
    assert!(log[1].bad, "v5 was rolled away from");

    // v1's directory was cleaned up: choosing it says so, nothing queued.
    let v1_release = log.iter().find(|r| r.sha == web.v1).unwrap();
    let before = server.job_count().await;
    let Err(Error::Conflict(gone)) =
        rollback::request(ctx, &ada(), "web", Some(v1_release.id)).await
    else {
        panic!("a removed release cannot be rolled back to");
    };
    assert!(gone.contains("has no directory any more"), "{gone}");
    assert_eq!(server.job_count().await, before);

    // The API deploys v5 again (a new release), then rolls back to v2.
    let token = server.token("ci", Role::Admin).await;
    for (path, body, answers) in [
        ("deploy", serde_json::json!({"ref": v5}), "v5"),
        ("rollback", serde_json::json!({}), "v2"),
    ] {
        let accepted = support::server::client()
            .post(server.at(&format!("/api/apps/web/{path}")))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(accepted.status(), 202, "{path}");
        let job: serde_json::Value = accepted.json().await.unwrap();
        let state = server.finished(job["job"].as_i64().unwrap()).await;
        assert_eq!(state, State::Succeeded, "{path}");
        assert_eq!(answer(port).await, answers, "{path}");
    }
    assert_eq!(web.current(), second);
}
