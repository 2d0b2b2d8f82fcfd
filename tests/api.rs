//! The JSON API and bad input against a real server on a loopback port:
//! token authentication, roles and their audit rows, 404/400/413 with a
//! sentence, security headers, static files.

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

#[tokio::test]
async fn healthz_answers_without_sign_in_and_carries_security_headers() {
    let s = server().await;
    let res = s.get("/healthz").await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert_eq!(
        json(res).await,
        serde_json::json!({"ok": true, "database": "ok"})
    );
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(h[header::REFERRER_POLICY], "same-origin");
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn api_tokens_authenticate_and_bad_or_revoked_ones_are_refused() {
    let s = server().await;
    let token = s.token("ci", Role::Operator).await;

    let res = s.get_as("/api/apps", &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let apps = json(res).await;
    // `books` needs admin to view; an operator sees only rfc-app.
    let names: Vec<&str> = apps
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rfc-app"]);
    assert_eq!(apps[0]["environment"], "production");
    assert_eq!(apps[0]["actions"][0]["name"], "cleanup-sessions");
    assert_eq!(apps[0]["actions"][0]["allowed"], true);
    assert_eq!(apps[0]["actions"][1]["role"], "admin");
    assert_eq!(apps[0]["actions"][1]["allowed"], false);

    let res = s.get("/api/apps").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer realm="opsdeck""#
    );
    assert_eq!(
        json(res).await["error"],
        "sign in first, or send an API token as `Authorization: Bearer <token>`"
    );

    let res = client()
        .get(s.at("/api/apps"))
        .bearer_auth("odk_not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json(res).await["error"],
        "this API token is unknown or has been revoked"
    );

    let res = client()
        .get(s.at("/api/apps"))
        .header(header::AUTHORIZATION, format!("Token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json(res).await["error"],
        "send the API token as `Authorization: Bearer <token>`"
    );

    assert!(opsdeck::auth::token::revoke(&s.ctx.db, "ci").await.unwrap());
    let res = s.get_as("/api/apps", &token).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_too_low_role_is_refused_with_403_and_a_denied_audit_row() {
    let s = server().await;
    let token = s.token("viewer", Role::Viewer).await;
    let res = s.get_as("/apps/books", &token).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("view needs the admin role; you are viewer"),
        "{page}"
    );

    let denied: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT actor, action, app, remote FROM audit_events WHERE outcome = 'denied'",
    )
    .fetch_all(&s.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        denied,
        [(
            "token:viewer".to_string(),
            "view".to_string(),
            "books".to_string(),
            "127.0.0.1".to_string()
        )]
    );
}

#[tokio::test]
async fn unknown_apps_and_addresses_are_404_in_the_clients_language() {
    let s = server().await;
    let token = s.token("ops", Role::Owner).await;

    let res = s.get_as("/apps/nope", &token).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = res.text().await.unwrap();
    assert!(
        page.contains("there is no app named &#34;nope&#34;"),
        "{page}"
    );
    // The error page still says who is signed in.
    assert!(
        page.contains(r#"<span class="login">token:ops</span>"#),
        "{page}"
    );

    let res = s.get_as("/api/nothing-here", &token).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        json(res).await["error"],
        "there is nothing at /api/nothing-here"
    );

    // A method axum refuses by itself still answers in JSON, with a sentence.
    let res = client()
        .delete(s.at("/api/apps"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        json(res).await["error"],
        "DELETE is not allowed on /api/apps"
    );

    // So does a path parameter that does not parse.
    let res = s.get_as("/api/jobs/latest", &token).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json(res).await["error"],
        "Invalid URL: Cannot parse `latest` to a `i64`"
    );
}

#[tokio::test]
async fn an_oversize_body_is_refused_with_413_and_the_connection_closed() {
    let s = server().await;
    let token = s.token("ops", Role::Owner).await;
    let res = client()
        .post(s.at("/api/apps/rfc-app/actions/cleanup-sessions/run"))
        .bearer_auth(&token)
        .header(header::CONTENT_TYPE, "application/json")
        .body(vec![b' '; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.headers()[header::CONNECTION], "close");
    assert_eq!(
        json(res).await["error"],
        "the request body is larger than the 4096 bytes opsdeck accepts"
    );
}

#[tokio::test]
async fn static_files_are_embedded_typed_and_cached_long() {
    let s = server().await;
    let res = s.get("/static/htmx.min.js").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        res.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(res.text().await.unwrap().contains("version:\"2."));

    let res = s.get("/static/app.css").await;
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );

    // Browsers ask for /favicon.ico by themselves, signed in or not.
    let res = s.get("/favicon.ico").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "image/svg+xml");

    let res = s.get("/static/secrets.txt").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_action_runs_from_the_api_and_shows_as_the_apps_last_job() {
    let s = server().await;
    let token = s.token("ci", Role::Operator).await;
    let res = client()
        .post(s.at("/api/apps/rfc-app/actions/cleanup-sessions/run"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let job = json(res).await["job"].as_i64().unwrap();
    assert_eq!(location, format!("/api/jobs/{job}"));
    assert_eq!(s.finished(job).await, State::Succeeded);

    let apps = json(s.get_as("/api/apps", &token).await).await;
    assert_eq!(apps[0]["last_job"]["id"], job);
    assert_eq!(apps[0]["last_job"]["state"], "succeeded");
    assert_eq!(apps[0]["last_job"]["actor"], "token:ci");

    let page = s.get_as("/", &token).await.text().await.unwrap();
    assert!(
        page.contains(&format!(
            r#"Last: <a href="/jobs/{job}">action cleanup-sessions</a>"#
        )),
        "{page}"
    );
    let page = s
        .get_as("/apps/rfc-app", &token)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!(r##"<a href="/jobs/{job}">#{job}</a>"##)),
        "{page}"
    );
    assert!(page.contains("Nothing is running on rfc-app."), "{page}");
}

#[tokio::test]
async fn running_an_action_above_ones_role_is_403_and_audited() {
    let s = server().await;
    let viewer = s.token("intern", Role::Viewer).await;
    let operator = s.token("ci", Role::Operator).await;
    for (token, action, sentence) in [
        (
            &viewer,
            "cleanup-sessions",
            "action needs the operator role; you are viewer",
        ),
        (
            &operator,
            "reindex",
            "action needs the admin role; you are operator",
        ),
    ] {
        let res = client()
            .post(s.at(&format!("/api/apps/rfc-app/actions/{action}/run")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(json(res).await["error"], sentence);
    }
    let denied: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT actor, action, app FROM audit_events WHERE outcome = 'denied' ORDER BY id",
    )
    .fetch_all(&s.ctx.db)
    .await
    .unwrap();
    let denied: Vec<(&str, &str, &str)> = denied
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        denied,
        [
            ("token:intern", "action", "rfc-app"),
            ("token:ci", "action", "rfc-app")
        ]
    );
    assert_eq!(s.job_count().await, 0, "a refused request starts nothing");
}

#[tokio::test]
async fn unknown_apps_and_actions_are_404_with_a_sentence() {
    let s = server().await;
    let token = s.token("ci", Role::Owner).await;
    for (path, sentence) in [
        (
            "/api/apps/nope/actions/cleanup-sessions/run",
            r#"there is no app named "nope""#,
        ),
        (
            "/api/apps/rfc-app/actions/nope/run",
            r#"rfc-app has no action named "nope""#,
        ),
    ] {
        let res = client()
            .post(s.at(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(json(res).await["error"], sentence);
    }
}

#[tokio::test]
async fn malformed_json_is_400_naming_what_is_wrong() {
    let s = server().await;
    let token = s.token("ci", Role::Owner).await;
    let run = s.at("/api/apps/rfc-app/actions/cleanup-sessions/run");
    for (content_type, body, sentence) in [
        (
            "application/json",
            "{",
            "the request body is not valid JSON: EOF while parsing an object at line 1 column 1",
        ),
        (
            "application/json",
            r#"{"dry_run": true}"#,
            "the JSON body does not fit this request: dry_run: unknown field `dry_run`, there are no fields at line 1 column 10",
        ),
    ] {
        let res = client()
            .post(&run)
            .bearer_auth(&token)
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json(res).await["error"], sentence);
    }
    assert_eq!(s.job_count().await, 0, "a refused request starts nothing");
}

/// A body without a length (chunked) is cut when it passes the limit, and
/// the connection is closed so the rest of it cannot be read as a request.
#[tokio::test]
async fn an_oversize_chunked_body_is_413_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = server().await;
    let token = s.token("ci", Role::Owner).await;
    let mut conn = tokio::net::TcpStream::connect(s.url.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /api/apps/rfc-app/actions/cleanup-sessions/run HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("400\r\n{}\r\n", " ".repeat(0x400));
    for _ in 0..5 {
        // The server may answer and close before all of it is written.
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 413 "), "{response}");
    assert!(
        response.to_lowercase().contains("connection: close"),
        "{response}"
    );
    assert!(
        response.contains("the request body is larger than opsdeck accepts"),
        "{response}"
    );
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
