//! What the API refuses, against a real server on a loopback port (and a
//! real git repository): each hostile request of the review of issue 20 as
//! an attacker sends it, the answer it gets, and the audit row it leaves —
//! bodies of the wrong type or shape, unknown, revoked and malformed tokens
//! (and a flood of them), forms from another origin or without their CSRF
//! token, logs of a unit the app does not own, long names, a negative
//! `Content-Length`, a deploy already queued under another name.

mod support;

use opsdeck::auth::Role;
use opsdeck::jobs::State;
use reqwest::StatusCode;
use reqwest::header;
use support::repos::{Repos, sh_git};
use support::server::{Server, TWO_APPS, client, json, start};

async fn server() -> Server {
    start(TWO_APPS).await
}

/// Issue 20, item 5: a body opsdeck cannot read as the request's JSON is
/// refused, never taken for no body (a rollback then went to the default
/// target) nor read loosely (`["main"]` deployed `main`).
#[tokio::test]
async fn a_body_of_the_wrong_type_is_415_and_of_the_wrong_shape_400() {
    let s = server().await;
    let token = s.token("ops", Role::Owner).await;
    let post = |path: &str, content_type: Option<&str>, body: &str| {
        let mut req = client()
            .post(s.at(path))
            .bearer_auth(&token)
            .body(body.to_string());
        if let Some(content_type) = content_type {
            req = req.header(header::CONTENT_TYPE, content_type);
        }
        async move { req.send().await.unwrap() }
    };
    for content_type in [None, Some("text/plain")] {
        let res = post(
            "/api/apps/rfc-app/rollback",
            content_type,
            r#"{"release": 1}"#,
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            json(res).await["error"],
            "send the request body as JSON with `Content-Type: application/json`"
        );
    }
    for (body, kind) in [
        (r#"["main"]"#, "an array"),
        (r#""main""#, "a string"),
        ("42", "a number"),
    ] {
        let res = post("/api/apps/rfc-app/deploy", Some("application/json"), body).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            json(res).await["error"],
            format!(
                "the request body must be a JSON object (like {{\"ref\": \"main\"}}), not {kind}"
            )
        );
    }
    assert_eq!(s.job_count().await, 0, "a refused request starts nothing");
}

/// The audit rows of `action`, as `(actor, outcome, detail)`.
async fn rows(s: &Server, action: &str) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT actor, outcome, detail FROM audit_events WHERE action = ? ORDER BY id")
        .bind(action)
        .fetch_all(&s.ctx.db)
        .await
        .unwrap()
}

/// Issue 20, item 6: unknown and revoked API tokens are audited (a revoked
/// one by name: maybe stolen), but a flood of them writes a bounded number
/// of rows and then one row counting the rest.
#[tokio::test]
async fn unknown_and_revoked_tokens_are_audited_and_a_flood_is_counted() {
    let s = server().await;
    let token = s.token("ci", Role::Operator).await;
    assert!(opsdeck::auth::token::revoke(&s.ctx.db, "ci").await.unwrap());
    let res = s.get_as("/api/apps", &token).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let refused = rows(&s, "auth.token").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "anonymous");
    assert_eq!(refused[0].1, "denied");
    assert!(refused[0].2.contains(r#""token":"ci""#), "{refused:?}");
    assert!(refused[0].2.contains(r#""revoked":true"#), "{refused:?}");
    // A credential that is not a bearer token at all.
    let res = client()
        .get(s.at("/api/apps"))
        .header(header::AUTHORIZATION, "Token abc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let refused = rows(&s, "auth.token").await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused[1].2.contains("Authorization: Bearer"),
        "{refused:?}"
    );

    for _ in 0..50 {
        let res = s.get_as("/api/apps", "odk_guessed").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let written = rows(&s, "auth.token").await.len();
    assert_eq!(
        written,
        opsdeck::audit::REFUSALS_PER_ADDRESS as usize,
        "one address writes its allowance, no more"
    );
    // Once the allowance refills, one row says how many were held back.
    let mut summary = Vec::new();
    for _ in 0..300 {
        summary = rows(&s, "audit.suppressed").await;
        if !summary.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(summary.len(), 1, "no summary of the refusals held back");
    let detail: serde_json::Value = serde_json::from_str(&summary[0].2).unwrap();
    assert_eq!(detail["action"], "auth.token");
    assert_eq!(detail["remote"], "127.0.0.1");
    assert_eq!(detail["suppressed"], 42);
}

/// Issue 20, item 6: a form from another origin, or without its CSRF
/// token, is refused and audited.
#[tokio::test]
async fn csrf_and_origin_refusals_are_audited() {
    let s = server().await;
    let (cookie, _csrf) = s.session("ann", Role::Owner).await;
    let run = s.at("/apps/rfc-app/actions/cleanup-sessions/run");
    let res = client()
        .post(&run)
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = client()
        .post(&run)
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, &s.url)
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let origin = rows(&s, "auth.origin").await;
    assert_eq!(origin.len(), 1, "{origin:?}");
    assert_eq!(
        (origin[0].0.as_str(), origin[0].1.as_str()),
        ("ann", "denied")
    );
    assert!(origin[0].2.contains("evil.example"), "{origin:?}");
    let csrf = rows(&s, "auth.csrf").await;
    assert_eq!(csrf.len(), 1, "{csrf:?}");
    assert!(csrf[0].2.contains("CSRF token does not match"), "{csrf:?}");
    assert_eq!(s.job_count().await, 0);
}

/// Issue 20, item 6: a log stream of a unit the app does not own is
/// refused and audited (someone looking past their app).
#[tokio::test]
async fn a_logs_request_for_a_unit_the_app_does_not_own_is_audited() {
    let s = start("[[app]]\nname = \"web\"\nunits = [\"web.service\"]\n").await;
    let token = s.token("oncall", Role::Operator).await;
    let res = s
        .get_as("/api/apps/web/logs?unit=sshd.service", &token)
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let refused = rows(&s, "logs").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (refused[0].0.as_str(), refused[0].1.as_str()),
        ("token:oncall", "denied")
    );
    assert!(refused[0].2.contains("sshd.service"), "{refused:?}");
}

/// Issue 20, item 7: the small ones.
#[tokio::test]
async fn a_lower_case_bearer_scheme_works_and_long_names_are_not_echoed_whole() {
    let s = server().await;
    let token = s.token("ci", Role::Owner).await;
    let res = client()
        .get(s.at("/api/apps"))
        .header(header::AUTHORIZATION, format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let long = "n".repeat(10_000);
    for path in [
        format!("/api/apps/{long}/actions/x/run"),
        format!("/api/apps/rfc-app/actions/{long}/run"),
        format!("/api/{long}"),
    ] {
        let res = client()
            .post(s.at(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let error = json(res).await["error"].as_str().unwrap().to_string();
        assert!(error.len() < 300, "{} characters echoed", error.len());
        assert!(error.contains("more characters)"), "{error}");
    }
    // A long unknown field in a body, as serde would quote it.
    let res = client()
        .post(s.at("/api/apps/rfc-app/actions/cleanup-sessions/run"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "f".repeat(3_000): true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let error = json(res).await["error"].as_str().unwrap().to_string();
    assert!(error.len() < 500, "{} characters echoed", error.len());
    assert!(error.contains("does not fit this request"), "{error}");
    assert_eq!(s.job_count().await, 0);
}

/// Issue 20, item 7: `Content-Length: -1` gets a sentence, not an empty 400.
#[tokio::test]
async fn a_negative_content_length_is_400_with_a_sentence() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = server().await;
    let mut conn = tokio::net::TcpStream::connect(s.url.trim_start_matches("http://"))
        .await
        .unwrap();
    conn.write_all(
        b"POST /api/apps/rfc-app/deploy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}",
    )
    .await
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(
        response
            .to_lowercase()
            .contains("content-type: application/json"),
        "{response}"
    );
    assert!(response.contains("Content-Length"), "{response}");
}

/// Issue 20, item 7: an identical deploy is the same commit, however it is
/// named: `main` and a tag on the same commit do not both queue.
#[tokio::test]
async fn a_deploy_of_a_commit_already_queued_under_another_name_is_refused() {
    let repos = Repos::new();
    let gate = repos.app.parent().unwrap().join("gate");
    let s = start(&format!(
        "[[app]]\nname = \"web\"\nrepo = \"{}\"\nbranch = \"main\"\n\n[[app.action]]\nname = \"hold\"\nrun = [\"sh\", \"-c\", \"while [ ! -e {} ]; do sleep 0.05; done\"]\n",
        repos.app.display(),
        gate.display()
    ))
    .await;
    let token = s.token("ops", Role::Owner).await;
    let v2 = repos.push("version", "v2", "Version 2");
    sh_git(&repos.author, &["tag", "v2"]);
    sh_git(&repos.author, &["push", "-q", "origin", "v2"]);
    let post = |path: String, body: Option<serde_json::Value>| {
        let mut req = client().post(s.at(&path)).bearer_auth(&token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move { req.send().await.unwrap() }
    };
    // Something holds the app, so the deploys wait in the queue.
    let hold = post("/api/apps/web/actions/hold/run".into(), None).await;
    assert_eq!(hold.status(), StatusCode::ACCEPTED);
    let first = post(
        "/api/apps/web/deploy".into(),
        Some(serde_json::json!({"ref": "main"})),
    )
    .await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first = json(first).await["job"].as_i64().unwrap();
    let second = post(
        "/api/apps/web/deploy".into(),
        Some(serde_json::json!({"ref": "v2"})),
    )
    .await;
    assert_eq!(second.status(), StatusCode::CONFLICT);
    let error = json(second).await["error"].as_str().unwrap().to_string();
    assert!(error.contains(&v2[..7]), "{error}");
    assert!(error.contains(&format!("job #{first}")), "{error}");
    std::fs::write(&gate, "").unwrap();
    assert_eq!(s.finished(first).await, State::Succeeded);
    assert_eq!(s.job_count().await, 2);
}
