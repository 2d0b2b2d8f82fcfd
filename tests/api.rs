//! The JSON API and bad input against a real server on a loopback port:
//! token authentication, roles and their audit rows, 404/400/413 with a
//! sentence, security headers, static files.

mod support;

use opsdeck::auth::Role;
use opsdeck::jobs::State;
use reqwest::StatusCode;
use reqwest::header;
use support::server::{client, json, two_apps};

#[tokio::test]
async fn healthz_answers_without_sign_in_and_carries_security_headers() {
    let s = two_apps().await;
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
    let s = two_apps().await;
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
    let s = two_apps().await;
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
    let s = two_apps().await;
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
    let s = two_apps().await;
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
    let s = two_apps().await;
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
    let s = two_apps().await;
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
            "<dt>Last job</dt>\n    <dd><a href=\"/jobs/{job}\">action cleanup-sessions</a> <span class=\"state state-succeeded\">"
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
    let s = two_apps().await;
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
    let s = two_apps().await;
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
    let s = two_apps().await;
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
            "the JSON body does not fit this request: dry_run: unknown field `dry_run`, expected `params` at line 1 column 10",
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
    let s = two_apps().await;
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
