//! The web shell against a real server on a loopback port: authentication,
//! roles, CSRF and Origin, bad input, security headers, static files.

mod support;

use opsdeck::auth::Role;
use reqwest::StatusCode;
use reqwest::header;
use serde_json::Value;
use support::server::{Server, client, start};

const APPS: &str = r#"
[[app]]
name = "rfc-app"
environment = "production"
host = "local"

[[app.action]]
name = "cleanup-sessions"
run = ["true"]
confirm = "Delete expired sessions of rfc-app?"

[[app.action]]
name = "reindex"
run = ["true"]
role = "admin"

[[app]]
name = "books"
environment = "staging"
permissions = { view = "admin" }
"#;

async fn server() -> Server {
    start(APPS).await
}

async fn json(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

#[tokio::test]
async fn healthz_answers_without_sign_in_and_carries_security_headers() {
    let s = server().await;
    let res = client().get(s.at("/healthz")).send().await.unwrap();
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

    let res = client().get(s.at("/api/apps")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
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
async fn browsers_are_sent_to_sign_in_and_programs_get_401() {
    let s = server().await;
    let res = client()
        .get(s.at("/apps/rfc-app?tab=jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()[header::LOCATION],
        "/auth/login?next=%2Fapps%2Frfc-app%3Ftab%3Djobs"
    );

    let res = client()
        .get(s.at("/"))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["hx-redirect"], "/auth/login?next=%2F");
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
async fn a_post_from_a_foreign_origin_is_refused() {
    let s = server().await;
    let res = client()
        .post(s.at("/auth/logout"))
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let page = res.text().await.unwrap();
    assert!(
        page.contains(&format!(
            "this request came from https://evil.example, not from {}",
            s.url
        )),
        "{page}"
    );
}

#[tokio::test]
async fn the_dashboard_shows_apps_badges_and_action_buttons() {
    let s = server().await;
    let token = s.token("ops", Role::Operator).await;
    let res = s.get_as("/", &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let page = res.text().await.unwrap();
    assert!(
        page.contains(r#"<a href="/apps/rfc-app">rfc-app</a>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"class="badge env-production">production<"#),
        "{page}"
    );
    assert!(
        !page.contains("books"),
        "operators may not view books: {page}"
    );
    assert!(page.contains(r#"data-confirm="Delete expired sessions of rfc-app?""#));
    assert!(
        page.contains(r#"disabled title="needs the admin role">reindex<"#),
        "{page}"
    );
    assert!(page.contains("token:ops"), "{page}");
}

#[tokio::test]
async fn static_files_are_embedded_typed_and_cached_long() {
    let s = server().await;
    let res = client()
        .get(s.at("/static/htmx.min.js"))
        .send()
        .await
        .unwrap();
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

    let res = client().get(s.at("/static/app.css")).send().await.unwrap();
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );

    let res = client()
        .get(s.at("/static/secrets.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// The CSP forbids inline script and style; a template that used them would
/// silently break in the browser. So none may.
#[test]
fn no_template_has_inline_script_style_or_event_handlers() {
    let mut files = vec![];
    let mut dirs = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 4, "templates found: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap().to_lowercase();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("<script") {
            let tag_end = rest[at..].find('>').unwrap() + at;
            let tag = &rest[at..=tag_end];
            assert!(
                tag.contains(" src="),
                "{}: inline script {tag}",
                file.display()
            );
            assert!(
                rest[tag_end + 1..].starts_with("</script>"),
                "{}: a script with a body",
                file.display()
            );
            rest = &rest[tag_end + 1..];
        }
        assert!(
            !text.contains("<style"),
            "{}: a <style> block",
            file.display()
        );
        assert!(
            !text.contains(" style="),
            "{}: a style attribute",
            file.display()
        );
        assert!(
            !text.contains("hx-on"),
            "{}: hx-on needs eval",
            file.display()
        );
        for handler in [
            " onclick=",
            " onsubmit=",
            " onload=",
            " onchange=",
            "javascript:",
        ] {
            assert!(!text.contains(handler), "{}: {handler}", file.display());
        }
    }
}
