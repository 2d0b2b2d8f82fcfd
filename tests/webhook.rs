//! Gitea's push webhook, over real HTTP, deploying a real git repository:
//! only a correctly signed push to the `auto_deploy` branch deploys, once,
//! as the pusher.

mod support;

use hmac::{Hmac, Mac};
use opsdeck::host::Host;
use opsdeck::host::git;
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
    let mut req = server::client()
        .post(server.at("/hooks/gitea/web"))
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
    let secret_file = secret_dir.path().join("webhook_secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let server = server::start(&format!(
        "[[app]]\nname = \"web\"\nrepo = \"{}\"\nauto_deploy = \"main\"\nwebhook_secret_file = \"{}\"\n",
        repos.app.display(),
        secret_file.display()
    ))
    .await;
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

#[tokio::test]
async fn an_app_without_a_webhook_secret_takes_no_webhooks() {
    let repos = Repos::new();
    let server = server::start(&format!(
        "[[app]]\nname = \"web\"\nrepo = \"{}\"\nauto_deploy = \"main\"\n",
        repos.app.display()
    ))
    .await;
    let body = push("main", &"a".repeat(40), "ben");
    let (status, error) = deliver(&server, "d-1", Some(&sign(&body)), &body).await;
    assert_eq!(status, 403, "{error}");
    assert_eq!(
        error["error"],
        "web takes no webhooks: it has no webhook_secret_file"
    );
    assert_eq!(server.job_count().await, 0);
}
