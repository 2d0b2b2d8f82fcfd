//! Gitea's push webhook, over real HTTP, deploying a real git repository:
//! only a correctly signed push to the `auto_deploy` branch deploys, once,
//! as the pusher.

mod support;

use hmac::{Hmac, Mac};
use opsdeck::host::Host;
use opsdeck::host::git;
use opsdeck::jobs::Decision;
use opsdeck::jobs::State;
use sha2::Sha256;
use support::repos::Repos;
use support::server::{self, Server};

const SECRET: &str = "a-webhook-secret";

fn sign(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A push of `after` to `branch` by `pusher`, as Gitea sends it.
fn push(branch: &str, after: &str, pusher: &str) -> String {
    serde_json::json!({
        "ref": format!("refs/heads/{branch}"),
        "before": "0123456789012345678901234567890123456789",
        "after": after,
        "commits": [],
        "repository": {"full_name": "wiggleverse/web"},
        "pusher": {"login": pusher, "username": pusher},
        "sender": {"login": pusher},
    })
    .to_string()
}

async fn deliver(
    server: &Server,
    delivery: &str,
    signature: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    deliver_to(server, "web", delivery, signature, body).await
}

async fn deliver_to(
    server: &Server,
    app: &str,
    delivery: &str,
    signature: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let mut req = server::client()
        .post(server.at(&format!("/hooks/gitea/{app}")))
        .header("content-type", "application/json")
        .header("x-gitea-event", "push")
        .header("x-gitea-delivery", delivery)
        .body(body.to_owned());
    if let Some(signature) = signature {
        req = req.header("x-gitea-signature", signature);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_signed_push_to_the_auto_deploy_branch_deploys_once_as_the_pusher() {
    let repos = Repos::new();
    let secret_dir = tempfile::tempdir().unwrap();
    let server = web_server(&repos, &secret_dir).await;
    let v2 = repos.push("version", "v2", "Version 2");
    let body = push("main", &v2, "ben");

    // Missing, empty and wrong signatures: 401, nothing queued, audited.
    for signature in [None, Some(""), Some(sign("{}").as_str())] {
        let (status, error) = deliver(&server, "d-bad", signature, &body).await;
        assert_eq!(status, 401, "{signature:?}: {error}");
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .contains("X-Gitea-Signature"),
            "{error}"
        );
    }
    // A body changed after signing is refused as well.
    let tampered = push("main", &v2, "mallory");
    let (status, _) = deliver(&server, "d-tampered", Some(&sign(&body)), &tampered).await;
    assert_eq!(status, 401);
    assert_eq!(server.job_count().await, 0);
    let denied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'webhook' AND outcome = 'denied'",
    )
    .fetch_one(&server.ctx.db)
    .await
    .unwrap();
    assert_eq!(denied, 4);

    // A push to another branch, and a deleted branch, are ignored.
    let other = push("feature", &v2, "ben");
    let (status, said) = deliver(&server, "d-other", Some(&sign(&other)), &other).await;
    assert_eq!(
        (status, said["ignored"].as_str().unwrap()),
        (
            200,
            "web deploys pushes to main only; this push is to refs/heads/feature"
        )
    );
    let deleted = push("main", "0000000000000000000000000000000000000000", "ben");
    let (status, said) = deliver(&server, "d-deleted", Some(&sign(&deleted)), &deleted).await;
    assert_eq!(
        (status, said["ignored"].as_str().unwrap()),
        (200, "branch main was deleted")
    );
    assert_eq!(server.job_count().await, 0);

    // The signed push deploys the pushed commit, as gitea:ben.
    let (status, accepted) = deliver(&server, "d-1", Some(&sign(&body)), &body).await;
    assert_eq!(status, 202, "{accepted}");
    let job = accepted["job"].as_i64().unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert_eq!(
        git::head(&Host::Local, &repos.app).await.unwrap().as_str(),
        v2
    );
    let job = server.ctx.jobs.job(job).await.unwrap();
    assert_eq!(job.actor, "gitea:ben");

    // Gitea delivers it again: ignored, nothing queued.
    let (status, said) = deliver(&server, "d-1", Some(&sign(&body)), &body).await;
    assert_eq!(
        (status, said["ignored"].as_str().unwrap()),
        (200, "delivery d-1 was received before")
    );
    assert_eq!(server.job_count().await, 1);
}

/// `web` deploying `repos.app` on pushes to main, with the test's secret.
async fn web_server(repos: &Repos, secret_dir: &tempfile::TempDir) -> Server {
    let secret_file = secret_dir.path().join("webhook_secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    server::start(&format!(
        "[[app]]\nname = \"web\"\nrepo = \"{}\"\nauto_deploy = \"main\"\nwebhook_secret_file = \"{}\"\n",
        repos.app.display(),
        secret_file.display()
    ))
    .await
}

/// Issue 20, item 1: the signature covers the body only, so a captured
/// delivery of an old push, posted again with a new or no delivery id,
/// must not move the app back to that old commit.
#[tokio::test]
async fn a_replayed_old_push_does_not_roll_the_app_back() {
    let repos = Repos::new();
    let secret_dir = tempfile::tempdir().unwrap();
    let server = web_server(&repos, &secret_dir).await;
    let v2 = repos.push("version", "v2", "Version 2");
    let old = push("main", &v2, "ben");
    let (status, accepted) = deliver(&server, "d-v2", Some(&sign(&old)), &old).await;
    assert_eq!(status, 202, "{accepted}");
    let job = accepted["job"].as_i64().unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    let v3 = repos.push("version", "v3", "Version 3");
    let new = push("main", &v3, "ben");
    let (status, accepted) = deliver(&server, "d-v3", Some(&sign(&new)), &new).await;
    assert_eq!(status, 202, "{accepted}");
    let job = accepted["job"].as_i64().unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);

    // The v2 delivery replayed, under a new id and under none.
    for delivery in ["d-replayed", ""] {
        let (status, said) = deliver(&server, delivery, Some(&sign(&old)), &old).await;
        assert_eq!(status, 200, "{said}");
        let why = said["ignored"].as_str().unwrap();
        assert_eq!(
            why,
            format!(
                "stale push: {} is not the tip of main any more (it is {}); nothing deployed",
                &v2[..7],
                &v3[..7]
            )
        );
    }
    assert_eq!(server.job_count().await, 2);
    assert_eq!(
        git::head(&Host::Local, &repos.app).await.unwrap().as_str(),
        v3
    );
}

/// Issue 20, items 6 and 7: an unknown app, an app without a secret file
/// and a known app with a wrong signature get one answer (app names cannot
/// be probed without signing in); each refusal is audited, saying which.
#[tokio::test]
async fn unknown_apps_apps_without_a_secret_and_bad_signatures_answer_alike() {
    let repos = Repos::new();
    let secret_dir = tempfile::tempdir().unwrap();
    let secret_file = secret_dir.path().join("webhook_secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    std::fs::write(secret_dir.path().join("gone"), "soon gone\n").unwrap();
    let server = server::start(&format!(
        "[[app]]\nname = \"web\"\nrepo = \"{app}\"\nauto_deploy = \"main\"\nwebhook_secret_file = \"{}\"\n\n\
         [[app]]\nname = \"quiet\"\nrepo = \"{app}\"\nauto_deploy = \"main\"\n\n\
         [[app]]\nname = \"broken\"\nrepo = \"{app}\"\nauto_deploy = \"main\"\nwebhook_secret_file = \"{}\"\n",
        secret_file.display(),
        secret_dir.path().join("gone").display(),
        app = repos.app.display(),
    ))
    .await;
    // `broken`'s secret file goes away after opsdeck checked its config.
    std::fs::remove_file(secret_dir.path().join("gone")).unwrap();
    let body = push("main", &"a".repeat(40), "ben");
    let wrong = sign("{}");
    let unknown = deliver_to(&server, "nope", "d-1", Some(&wrong), &body).await;
    let bad_signature = deliver_to(&server, "web", "d-2", Some(&wrong), &body).await;
    let no_secret = deliver_to(&server, "quiet", "d-3", Some(&sign(&body)), &body).await;
    let unreadable = deliver_to(&server, "broken", "d-4", Some(&sign(&body)), &body).await;
    assert_eq!(unknown.0, 401, "{}", unknown.1);
    assert_eq!(unknown, bad_signature);
    assert_eq!(unknown, no_secret);
    assert_eq!(unknown, unreadable);
    assert!(
        unknown.1["error"]
            .as_str()
            .unwrap()
            .contains("X-Gitea-Signature"),
        "{}",
        unknown.1
    );
    assert_eq!(server.job_count().await, 0);

    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT actor, app, detail FROM audit_events WHERE action = 'webhook' AND outcome = 'denied' ORDER BY id",
    )
    .fetch_all(&server.ctx.db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows[0].2.contains("there is no app named"), "{rows:?}");
    assert_eq!(rows[1].1, "web");
    assert!(rows[1].2.contains("does not match"), "{rows:?}");
    assert_eq!(rows[2].1, "quiet");
    assert!(rows[2].2.contains("no webhook_secret_file"), "{rows:?}");
    assert_eq!(rows[3].1, "broken");
    assert!(
        rows[3].2.contains("cannot read the webhook secret"),
        "{rows:?}"
    );
}

/// A push to an app whose deploys need approval waits for it; the pusher
/// (`gitea:ben`) signed in as `ben` is the same person and cannot approve
/// it (403, audited `denied`); another admin can, and it ships.
#[tokio::test]
async fn the_pusher_cannot_approve_the_deploy_their_push_asked_for() {
    let repos = Repos::new();
    let secret_dir = tempfile::tempdir().unwrap();
    let secret_file = secret_dir.path().join("webhook_secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let server = server::start(&format!(
        "[[app]]\nname = \"web\"\nrepo = \"{}\"\nauto_deploy = \"main\"\nwebhook_secret_file = \"{}\"\napproval = {{ deploy = \"admin\" }}\n",
        repos.app.display(),
        secret_file.display()
    ))
    .await;
    let v2 = repos.push("version", "v2", "Version 2");
    let body = push("main", &v2, "ben");
    let (status, accepted) = deliver(&server, "d-1", Some(&sign(&body)), &body).await;
    assert_eq!(status, 202, "{accepted}");
    let job = accepted["job"].as_i64().unwrap();
    assert_eq!(
        server.ctx.jobs.job(job).await.unwrap().state,
        State::AwaitingApproval
    );

    let approve = |login: &str| {
        let actor = opsdeck::auth::Actor {
            login: login.into(),
            role: opsdeck::auth::Role::Admin,
            via: opsdeck::auth::Via::Session,
            remote: "127.0.0.1".into(),
        };
        let ctx = server.ctx.clone();
        async move {
            opsdeck::ops::approval::decide(&ctx, &actor, job, Decision::Approve, "looks right")
                .await
        }
    };
    let refused = approve("ben").await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!("you asked for job {job}; someone else with the admin role must approve it")
    );
    let denied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'approval.approve' AND outcome = 'denied' AND actor = 'ben'",
    )
    .fetch_one(&server.ctx.db)
    .await
    .unwrap();
    assert_eq!(denied, 1);

    approve("ada").await.unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert_eq!(
        git::head(&Host::Local, &repos.app).await.unwrap().as_str(),
        v2
    );
}
