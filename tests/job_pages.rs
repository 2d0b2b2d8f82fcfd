//! The job resource over real HTTP: the JSON API, the text output, the SSE
//! stream resuming with `Last-Event-ID`, cancel, and the pages.

mod support;

use opsdeck::auth::Role;
use support::server::{self, Server};
use support::sse::read_events;

const APPS: &str = r#"
[[app]]
name = "shop"

[[app.action]]
name = "count"
run = ["sh", "-c", "for i in $(seq 1 100); do echo \"line $i <b>\"; done; while [ ! -e \"$GATE\" ]; do sleep 0.02; done; for i in $(seq 101 200); do echo \"line $i\"; done"]
env = { GATE = "$DIR/gate" }

[[app.action]]
name = "forever"
run = ["sleep", "1000"]

[[app.action]]
name = "both"
run = ["sh", "-c", "echo out; echo 'err <e>' >&2; echo out2"]

[[app.action]]
name = "colours"
run = ["sh", "-c", "printf '\\033[1;32mok\\033[0m 3 passed <x>\\n\\033[31mFAIL\\033[39m one\\n'"]
"#;

async fn start() -> Server {
    // The gate file lives in a directory of the test's own.
    let gates = tempfile::tempdir().unwrap().keep();
    server::start(&APPS.replace("$DIR", &gates.display().to_string())).await
}

fn gate(server: &Server) -> std::path::PathBuf {
    let config = server.ctx.config.app("shop").unwrap();
    std::path::PathBuf::from(&config.actions[0].env["GATE"])
}

async fn events_from(
    server: &Server,
    token: &str,
    job: i64,
    last: Option<u64>,
) -> reqwest::Response {
    let mut request = server::client()
        .get(server.at(&format!("/api/jobs/{job}/events")))
        .bearer_auth(token);
    if let Some(last) = last {
        request = request.header("Last-Event-ID", last.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response
}

/// Runs an action as `alice`, as the dashboard's button does.
async fn run_action(server: &Server, action: &str) -> i64 {
    let alice = support::deck::actor("alice", Role::Operator);
    opsdeck::ops::actions::run(&server.ctx, &alice, "shop", action)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_reconnecting_sse_client_gets_every_line_exactly_once() {
    let server = start().await;
    let token = server.token("ci", Role::Operator).await;
    let job = opsdeck::ops::actions::run(
        &server.ctx,
        &support::deck::actor("alice", Role::Operator),
        "shop",
        "count",
    )
    .await
    .unwrap();

    // Read up to line 50, then drop the connection mid-stream.
    let mut first = events_from(&server, &token, job, None).await;
    let mut buf = String::new();
    let mut seen = read_events(&mut first, &mut buf, |e| e.1 == Some(50)).await;
    drop(first);

    // Reconnect where we left off; let the job finish meanwhile.
    let mut second = events_from(&server, &token, job, Some(50)).await;
    std::fs::write(gate(&server), "").unwrap();
    let mut buf = String::new();
    seen.extend(read_events(&mut second, &mut buf, |e| e.0 == "end").await);

    let (end, lines) = seen.split_last().unwrap();
    assert_eq!(
        end,
        &(
            "end".to_string(),
            None,
            r#"{"state":"succeeded"}"#.to_string()
        )
    );
    let ids: Vec<u64> = lines.iter().map(|e| e.1.unwrap()).collect();
    assert_eq!(
        ids,
        (1..=201).collect::<Vec<_>>(),
        "every line once, in order"
    );
    assert!(lines[0].2.starts_with("$ sh -c "), "{:?}", lines[0]);
    assert_eq!(lines[1].2, "line 1 <b>");
    assert_eq!(lines[200].2, "line 200");

    // After the end, a reconnect replays from the database and ends again.
    let mut late = events_from(&server, &token, job, Some(199)).await;
    let mut buf = String::new();
    let rest = read_events(&mut late, &mut buf, |e| e.0 == "end").await;
    assert_eq!(
        rest.iter().map(|e| e.1).collect::<Vec<_>>(),
        [Some(200), Some(201), None]
    );

    // The plain text has the same lines.
    let text = server
        .get_as(&format!("/api/jobs/{job}/output"), &token)
        .await
        .text()
        .await
        .unwrap();
    let expected: String = lines.iter().map(|e| format!("{}\n", e.2)).collect();
    assert_eq!(text, expected);
}

#[tokio::test]
async fn the_api_shows_and_cancels_a_job() {
    let server = start().await;
    let operator = server.token("ops", Role::Operator).await;
    let viewer = server.token("look", Role::Viewer).await;
    let job = run_action(&server, "forever").await;

    let shown: serde_json::Value = server
        .get_as(&format!("/api/jobs/{job}"), &viewer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            shown["id"].as_i64(),
            shown["app"].as_str(),
            shown["kind"].as_str()
        ),
        (Some(job), Some("shop"), Some("action"))
    );
    assert_eq!(shown["steps"][0]["command"], "sleep 1000");

    let cancel = |token: String| {
        let url = server.at(&format!("/api/jobs/{job}/cancel"));
        async move {
            server::client()
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let refused = cancel(viewer.clone()).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(cancel(operator.clone()).await.status(), 202);

    let mut stream = events_from(&server, &viewer, job, None).await;
    let events = read_events(&mut stream, &mut String::new(), |e| e.0 == "end").await;
    assert_eq!(events.last().unwrap().2, r#"{"state":"cancelled"}"#);
    let shown: serde_json::Value = server
        .get_as(&format!("/api/jobs/{job}"), &viewer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (shown["state"].as_str(), shown["cancelled_by"].as_str()),
        (Some("cancelled"), Some("token:ops"))
    );
    let again = cancel(operator).await;
    assert_eq!(again.status(), 409);

    let missing = server.get_as("/api/jobs/999999", &viewer).await;
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "there is no job 999999");
    let bad = server::client()
        .get(server.at(&format!("/api/jobs/{job}/events")))
        .bearer_auth(&viewer)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn the_job_page_and_history_show_steps_commands_and_who() {
    let server = start().await;
    let token = server.token("ci", Role::Operator).await;
    let job = run_action(&server, "count").await;
    std::fs::write(gate(&server), "").unwrap();
    let mut stream = events_from(&server, &token, job, None).await;
    read_events(&mut stream, &mut String::new(), |e| e.0 == "end").await;

    let page = server.get_as(&format!("/jobs/{job}"), &token).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("Job {job}: action count")), "{html}");
    assert!(html.contains("alice (operator)"));
    assert!(html.contains(r#"class="state state-succeeded""#));
    assert!(html.contains(&format!(r#"sse-connect="/jobs/{job}/events""#)));
    assert!(html.contains("<code class=\"command\">sh -c "));
    assert!(!html.contains("<script>"), "no inline script");

    // The page's stream carries escaped HTML.
    let mut events = server::client()
        .get(server.at(&format!("/jobs/{job}/events")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let got = read_events(&mut events, &mut String::new(), |e| e.0 == "end").await;
    assert!(got[0].2.contains("line 1 &lt;b&gt;\n"), "{:?}", got[0]);
    assert_eq!(
        got.last().unwrap().2,
        r#"<span class="state state-succeeded">succeeded</span>"#
    );

    let history = server
        .get_as("/apps/shop/jobs", &token)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        history.contains(&format!(r#"<a href="/jobs/{job}">{job}</a>"#)),
        "{history}"
    );
    assert!(history.contains("No job holds shop."));
    assert_eq!(server.get_as("/apps/nope/jobs", &token).await.status(), 404);
}
#[tokio::test]
async fn the_cancel_button_posts_the_form_with_its_csrf_token() {
    let gates = tempfile::tempdir().unwrap().keep();
    let config = format!(
        "[auth]\ndev_login = true\n{}",
        APPS.replace("$DIR", &gates.display().to_string())
    );
    let server = server::start(&config).await;
    let signed_in = server::client()
        .post(server.at("/auth/dev"))
        .header("origin", &server.url)
        .form(&[("login", "olga"), ("role", "operator")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let job = run_action(&server, "forever").await;

    let page = server::client()
        .get(server.at(&format!("/jobs/{job}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "{cookie} {:?}", page.headers());
    let html = page.text().await.unwrap();
    let form = &html[html
        .find(&format!(r#"action="/jobs/{job}/cancel""#))
        .unwrap_or_else(|| panic!("no Cancel button in {html}"))..];
    let csrf = form
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(csrf.len(), 64);

    let cancel = |csrf: String| {
        let request = server::client()
            .post(server.at(&format!("/jobs/{job}/cancel")))
            .header("cookie", &cookie)
            .header("origin", &server.url)
            .form(&[("csrf", csrf)]);
        async move { request.send().await.unwrap() }
    };
    assert_eq!(
        cancel("0".repeat(64)).await.status(),
        403,
        "a wrong token is refused"
    );
    let done = cancel(csrf.to_string()).await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], format!("/jobs/{job}"));
    let mut stream = server::client()
        .get(server.at(&format!("/jobs/{job}/events")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let events = read_events(&mut stream, &mut String::new(), |e| e.0 == "end").await;
    assert!(events.last().unwrap().2.contains("cancelled"));
    assert_eq!(
        server
            .ctx
            .jobs
            .job(job)
            .await
            .unwrap()
            .cancelled_by
            .as_deref(),
        Some("olga")
    );
}

/// A build's colours reach the job page as colours, not as `[1;32m`; the
/// plain-text output keeps the bytes as they were printed.
#[tokio::test]
async fn the_job_page_shows_ansi_colours_as_colours() {
    let server = start().await;
    let token = server.token("viewer", Role::Viewer).await;
    let job = run_action(&server, "colours").await;
    let lines = page_lines(&server, &token, job).await;
    assert!(
        lines.contains(r#"<span class="ansi-bold ansi-fg-2">ok</span> 3 passed &lt;x&gt;"#),
        "{lines}"
    );
    assert!(
        lines.contains(r#"<span class="ansi-fg-1">FAIL</span> one"#),
        "{lines}"
    );
    assert!(!lines.contains('\u{1b}'), "{lines}");
    let plain = plain_output(&server, &token, job).await;
    assert!(plain.contains("\u{1b}[1;32mok"), "{plain}");
}

/// What a step writes to stderr is marked on the job page, live and when
/// the stored output is replayed, and on the API's stream; stdout lines
/// are not; the plain-text output holds both, as printed.
#[tokio::test]
async fn stderr_lines_are_marked_live_and_in_replay() {
    let server = start().await;
    let token = server.token("viewer", Role::Viewer).await;
    let job = run_action(&server, "both").await;
    // The first stream follows the job as it runs; the second, after the
    // end, replays what the database holds.
    let live = page_lines(&server, &token, job).await;
    let replayed = page_lines(&server, &token, job).await;
    for lines in [live, replayed] {
        assert!(
            lines.contains(r#"<span class="stderr">err &lt;e&gt;</span>"#),
            "{lines}"
        );
        assert!(lines.contains("out\n"), "{lines}");
        assert!(lines.contains("out2\n"), "{lines}");
        assert_eq!(lines.matches("class=\"stderr\"").count(), 1, "{lines}");
    }
    let stored: Vec<Option<String>> =
        sqlx::query_scalar("SELECT stderr FROM job_output WHERE job_id = ?")
            .bind(job)
            .fetch_all(&server.ctx.db)
            .await
            .unwrap();
    assert!(stored.iter().any(Option::is_some), "{stored:?}");

    let mut api = events_from(&server, &token, job, None).await;
    let events = read_events(&mut api, &mut String::new(), |e| e.0 == "end").await;
    let named: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e.0 != "end")
        .map(|e| (e.0.as_str(), e.2.as_str()))
        .collect();
    assert!(named.contains(&("stderr", "err <e>")), "{named:?}");
    assert!(named.contains(&("message", "out")), "{named:?}");
    assert!(named.contains(&("message", "out2")), "{named:?}");
    let out = named.iter().position(|e| e.1 == "out");
    let out2 = named.iter().position(|e| e.1 == "out2");
    assert!(out < out2, "stdout keeps its order: {named:?}");

    let plain = plain_output(&server, &token, job).await;
    assert!(plain.contains("out\n"), "{plain}");
    assert!(plain.contains("err <e>\n"), "{plain}");
    assert!(!plain.contains("stderr"), "{plain}");
}

/// The job page's stream of a job until its end: the `line` events' data.
async fn page_lines(server: &Server, token: &str, job: i64) -> String {
    let mut stream = server::client()
        .get(server.at(&format!("/jobs/{job}/events")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let events = read_events(&mut stream, &mut String::new(), |e| e.0 == "end").await;
    events
        .iter()
        .filter(|e| e.0 == "line")
        .map(|e| e.2.as_str())
        .collect()
}

/// The job's plain-text output (`/api/jobs/{id}/output`).
async fn plain_output(server: &Server, token: &str, job: i64) -> String {
    server
        .get_as(&format!("/api/jobs/{job}/output"), token)
        .await
        .text()
        .await
        .unwrap()
}
