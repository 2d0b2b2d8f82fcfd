//! The pages a browser sees, against a real server on a loopback port:
//! sign-in redirects, sessions, CSRF tokens and Origin checks on every
//! browser POST, the dashboard and app page, and templates that keep to
//! the CSP.

mod support;

use opsdeck::auth::Role;
use reqwest::StatusCode;
use reqwest::header;
use support::server::{TWO_APPS, client, start, two_apps};

#[tokio::test]
async fn browsers_are_sent_to_sign_in_and_programs_get_401() {
    let s = two_apps().await;
    let res = s.get("/apps/rfc-app?tab=jobs").await;
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
async fn a_post_from_a_foreign_origin_is_refused() {
    let s = two_apps().await;
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
    let s = two_apps().await;
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
    assert!(page.contains(r#"name="ask" value="Delete expired sessions of rfc-app?""#));
    assert!(
        page.contains(r#"disabled title="needs the admin role">reindex<"#),
        "{page}"
    );
    assert!(page.contains("token:ops"), "{page}");
}

#[tokio::test]
async fn an_app_page_says_where_the_app_deploys_from_only_when_it_deploys() {
    let s = two_apps().await;
    let token = s.token("boss", Role::Admin).await;
    let page = s.get_as("/apps/books", &token).await.text().await.unwrap();
    assert!(
        page.contains("<dt>Repository</dt><dd><code>/srv/books</code></dd>"),
        "{page}"
    );
    assert!(page.contains("<dt>Branch</dt><dd>release</dd>"), "{page}");
    assert!(page.contains("No jobs have run on books yet."), "{page}");
    let page = s
        .get_as("/apps/rfc-app", &token)
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<dt>Branch</dt>"), "{page}");
    assert!(
        page.contains(r#"action="/apps/rfc-app/actions/reindex/run""#),
        "{page}"
    );
}

/// Every template, as (path, lower-cased text).
fn templates() -> Vec<(std::path::PathBuf, String)> {
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
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap().to_lowercase();
            (f, text)
        })
        .collect()
}

/// The CSP forbids inline script and style; a template that used them would
/// silently break in the browser. So none may.
#[test]
fn no_template_has_inline_script_style_or_event_handlers() {
    for (file, text) in templates() {
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

/// A browser POST without the session's CSRF token is refused, so a form
/// that forgot it would only fail when someone clicks it.
#[test]
fn every_post_form_carries_the_csrf_token() {
    for (file, text) in templates() {
        let mut rest = text.as_str();
        while let Some(at) = rest.find("<form") {
            let end = rest[at..].find("</form>").unwrap() + at;
            let form = &rest[at..end];
            // Signing in has no session yet; Origin guards it.
            if form.contains(r#"method="post""#) && !form.contains(r#"action="/auth/dev""#) {
                assert!(
                    form.contains(r#"<input type="hidden" name="csrf" value="{{ page.csrf }}">"#),
                    "{}: a POST form without the CSRF field:\n{form}",
                    file.display()
                );
            }
            rest = &rest[end..];
        }
    }
}

#[tokio::test]
async fn an_action_button_redirects_to_its_job() {
    let s = two_apps().await;
    let token = s.token("ci", Role::Operator).await;
    let res = client()
        .post(s.at("/apps/rfc-app/actions/cleanup-sessions/run"))
        .bearer_auth(&token)
        .form(&[("csrf", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let job: i64 = location.strip_prefix("/jobs/").unwrap().parse().unwrap();
    s.finished(job).await;

    let res = client()
        .post(s.at("/apps/rfc-app/actions/cleanup-sessions/run"))
        .bearer_auth(&token)
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["hx-redirect"], format!("/jobs/{}", job + 1));
    s.finished(job + 1).await;
}

/// "3 min ago" has one rule, the server's: an open page asks
/// `/times/ago` for fresh words (app.js keeps no copy of the rule).
#[tokio::test]
async fn an_open_page_gets_its_relative_times_from_the_server() {
    let s = two_apps().await;
    let (cookie, _) = s.session("ben", Role::Viewer).await;
    let now = chrono::Utc::now();
    let iso =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let at = [
        iso(now - chrono::Duration::minutes(3)),
        iso(now + chrono::Duration::hours(5)),
        "2026-11-16T10:00:00Z".to_string(),
    ];
    let res = s
        .browse(&format!("/times/ago?at={}", at.join(",")), &cookie)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let words: Vec<String> = res.json().await.unwrap();
    assert_eq!(words[..2], ["3 min ago", "in 5 h"]);
    assert!(
        words[2] == "on 2026-11-16" || words[2].ends_with("days ago"),
        "{words:?}"
    );

    let res = s.browse("/times/ago?at=last%20friday", &cookie).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("is not a time like"));

    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/app.js")).unwrap();
    assert!(script.contains("/times/ago"));
    assert!(
        !script.contains("\"just now\"") && !script.contains(" ago\""),
        "app.js keeps a copy of the rule"
    );
}

#[tokio::test]
async fn a_signed_in_page_carries_the_csrf_token_for_forms_and_htmx() {
    let s = two_apps().await;
    let (cookie, csrf) = s.session("ben", Role::Admin).await;
    let res = s.browse("/", &cookie).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains(r#"<span class="login">ben</span>"#), "{page}");
    assert!(
        page.contains(r#"<span class="role role-admin">admin</span>"#),
        "{page}"
    );
    assert!(page.contains(r#"<a href="/audit">Audit</a>"#), "{page}");
    assert!(
        page.contains(&format!(
            r#"<input type="hidden" name="csrf" value="{csrf}">"#
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            r#"hx-headers="{{&#34;X-CSRF-Token&#34;:&#34;{csrf}&#34;}}""#
        )),
        "{page}"
    );
    assert!(page.contains(r#"<form method="post" action="/auth/logout""#));
}

#[tokio::test]
async fn a_browser_post_needs_its_csrf_token_and_our_origin() {
    let s = two_apps().await;
    let (cookie, csrf) = s.session("ben", Role::Operator).await;
    let run = s.at("/apps/rfc-app/actions/cleanup-sessions/run");
    let post = |origin: Option<&str>, form: Vec<(&'static str, String)>| {
        let mut req = client()
            .post(&run)
            .header(header::COOKIE, &cookie)
            .form(&form);
        if let Some(origin) = origin {
            req = req.header(header::ORIGIN, origin);
        }
        req
    };
    let ours = s.url.as_str();

    let res = post(Some(ours), vec![]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("this form was sent without its CSRF token; reload the page and try again")
    );

    let wrong = "0".repeat(csrf.len());
    let res = post(Some(ours), vec![("csrf", wrong)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains(
        "this form&#39;s CSRF token does not match your session; reload the page and try again"
    ));

    let res = post(Some("https://evil.example"), vec![("csrf", csrf.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains(&format!(
        "this request came from https://evil.example, not from {ours}"
    )));

    let res = post(None, vec![("csrf", csrf.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("this request has neither an Origin nor a Referer header")
    );
    assert_eq!(s.job_count().await, 0, "a refused request starts nothing");

    // Both right: the action runs, and the browser is sent to its job.
    let res = post(Some(ours), vec![("csrf", csrf.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], "/jobs/1");
    s.finished(1).await;

    // A browser that leaves out Origin but sends our Referer is believed.
    let res = post(None, vec![("csrf", csrf.clone())])
        .header(header::REFERER, format!("{ours}/apps/rfc-app"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    s.finished(2).await;

    // htmx sends the token as a header, from the page's hx-headers.
    let htmx = |token: &str| {
        client()
            .post(&run)
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, ours)
            .header("HX-Request", "true")
            .header("X-CSRF-Token", token)
            .send()
    };
    let res = htmx(&csrf).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["hx-redirect"], "/jobs/3");
    s.finished(3).await;

    // …and a refusal reaches htmx as a plain sentence app.js shows.
    let res = htmx("nope").await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        res.text().await.unwrap(),
        "this form's CSRF token does not match your session; reload the page and try again"
    );
}

#[tokio::test]
async fn a_revoked_session_is_no_identity() {
    let s = two_apps().await;
    let (cookie, _) = s.session("ben", Role::Owner).await;
    let value = cookie.strip_prefix("opsdeck_session=").unwrap();
    s.ctx.sessions.end(value).await.unwrap();
    let res = s.browse("/apps/rfc-app", &cookie).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()[header::LOCATION],
        "/auth/login?next=%2Fapps%2Frfc-app"
    );
}

#[tokio::test]
async fn signing_in_again_while_signed_in_needs_our_origin_but_no_token() {
    let s = start(&format!("[auth]\ndev_login = true\n{TWO_APPS}")).await;
    let (cookie, _) = s.session("ben", Role::Viewer).await;
    let sign_in = |origin: &str| {
        client()
            .post(s.at("/auth/dev"))
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, origin)
            .form(&[("login", "ben"), ("role", "owner"), ("next", "/")])
            .send()
    };
    let res = sign_in("https://evil.example").await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = sign_in(&s.url).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(res.headers().contains_key(header::SET_COOKIE));
}

/// Assets and pages leave compressed for a browser that accepts it (htmx
/// alone is 52 KB): gzip decodes, with the real `gzip`, to the very file,
/// and is what a browser offering brotli too gets (brotli's encoder was
/// 1 MB of the 20 MB binary for a tenth fewer bytes); a client that asks
/// for neither gets the plain bytes.
#[tokio::test]
async fn responses_are_compressed_for_browsers_that_accept_it() {
    let s = two_apps().await;
    let htmx = include_bytes!("../static/htmx.min.js");
    let fetch = |encoding: &'static str| {
        let request = client()
            .get(s.at("/static/htmx.min.js"))
            .header(header::ACCEPT_ENCODING, encoding);
        async move {
            let res = request.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let encoding = res
                .headers()
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap().to_owned());
            (encoding, res.bytes().await.unwrap().to_vec())
        }
    };

    let (encoding, gzipped) = fetch("gzip").await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert!(gzipped.len() * 2 < htmx.len(), "{} bytes", gzipped.len());
    let mut gunzip = std::process::Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(gunzip.stdin.as_mut().unwrap(), &gzipped).unwrap();
    drop(gunzip.stdin.take());
    let plain = gunzip.wait_with_output().unwrap();
    assert!(plain.status.success());
    assert!(plain.stdout == htmx, "gzip -dc gives back the file");

    let (encoding, browser) = fetch("gzip, deflate, br, zstd").await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert!(browser == gzipped);

    let (encoding, identity) = fetch("identity").await;
    assert_eq!(encoding, None);
    assert!(identity == htmx);

    // Pages too: the sign-in page, compressed.
    let res = client()
        .get(s.at("/auth/login"))
        .header(header::ACCEPT_ENCODING, "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
}
