//! `health` as a list (`[[app.health]]`): after a deploy every check must
//! pass, the job's output names each URL and how it answered, a failing
//! one brings the previous release back; the glance (dashboard card, app
//! page) and `GET /api/apps/{app}/health` show each check. A real service
//! under a real unit (the systemd sandbox) answers two URLs; its API URL
//! fails for a `broken` tag.

mod support;

use std::path::Path;

use opsdeck::auth::Role;
use opsdeck::jobs::State;
use opsdeck::ops::deploy;
use support::sandbox::{self, Sandbox, sh};
use support::server::json;
use support::webapp::{ada, answer, answer_when_up};

/// Serves the tag in `state` as read at start on `/`; `/api/health`
/// answers `ok`, or 500 for a `broken` tag.
const SERVICE: &str = r#"import http.server, pathlib, sys
tag = (pathlib.Path(sys.argv[1]) / "state").read_text().strip()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        broken = self.path == "/api/health" and tag.endswith("broken")
        body = (("ok" if self.path == "/api/health" else tag) + "\n").encode()
        self.send_response(500 if broken else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()
"#;

/// The service's unit and the `[[app]]` block: a `command` deploy writes
/// the tag to `state`, two health checks (one named).
fn site(dir: &Path, port: u16) -> String {
    std::fs::write(dir.join("service.py"), SERVICE).unwrap();
    std::fs::write(
        "/run/systemd/system/site.service",
        format!(
            "[Service]\nExecStart=/usr/bin/python3 {0}/service.py {0} {port}\n",
            dir.display()
        ),
    )
    .unwrap();
    sh(&["systemctl", "daemon-reload"]);
    format!(
        r#"[[app]]
name = "site"
strategy = "command"
units = ["site.service"]
deploy = [ {{ run = ["python3", "-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[2])", "{}", "{{tag}}"] }} ]

[[app.health]]
name = "home page"
url = "http://127.0.0.1:{port}/"
timeout = "3s"

[[app.health]]
url = "http://127.0.0.1:{port}/api/health"
expect = "ok"
timeout = "2s"
"#,
        dir.join("state").display()
    )
}

#[test]
fn every_health_check_must_pass_on_a_real_systemd() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_every_health_check_must_pass");
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test]
async fn inside_every_health_check_must_pass() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let server = support::server::start(&site(dir.path(), port)).await;
    let ctx = &server.ctx;
    let home = format!("http://127.0.0.1:{port}/");
    let api = format!("http://127.0.0.1:{port}/api/health");

    // t1: both checks pass; the output names each and its answer.
    let job = deploy::request(ctx, &ada(), "site", "t1").await.unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    assert!(
        output.contains(&format!(
            "$ GET {home} (expecting 2xx); GET {api} (expecting 2xx and \"ok\")"
        )),
        "{output}"
    );
    assert!(
        output.contains(&format!("home page: {home} answered 200")),
        "{output}"
    );
    assert!(output.contains(&format!("{api} answered 200")), "{output}");
    assert_eq!(answer_when_up(port).await, "t1");

    // t2-broken: its home page answers, its API does not; the deploy
    // fails naming the API's URL and runs t1's steps again.
    let job = deploy::request(ctx, &ada(), "site", "t2-broken")
        .await
        .unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Failed, "{output}");
    let summary = ctx.jobs.job(job).await.unwrap().summary.unwrap();
    assert_eq!(
        summary,
        "step \"Health check\" failed; the recovery steps succeeded"
    );
    assert!(
        output.contains(&format!("1 of 2 health checks failed: {api}")),
        "{output}"
    );
    assert!(
        output.contains(&format!("health check {api} failed")),
        "{output}"
    );
    assert!(
        output.contains(&format!("home page: {home} answered 200")),
        "{output}"
    );
    assert_eq!(answer_when_up(port).await, "t1");
    let log = opsdeck::releases::list(&ctx.db, "site", 10).await.unwrap();
    assert_eq!(log[0].outcome(), "failed, rolled back");

    // The glance shows each check: healthy now…
    let (cookie, _) = server.session("olga", Role::Viewer).await;
    let glance = server
        .browse("/apps/site/health", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(glance.contains(">healthy</span>"), "{glance}");
    assert!(
        glance.contains(&format!(
            "Health check <strong>home page</strong>: {home} answered 200"
        )),
        "{glance}"
    );
    assert!(
        glance.contains(&format!("Health check: {api} answered 200")),
        "{glance}"
    );
    // …and which one fails when one does (the unit restarted by hand with
    // a broken tag).
    std::fs::write(dir.path().join("state"), "t9-broken").unwrap();
    sh(&["systemctl", "restart", "site.service"]);
    assert_eq!(answer_when_up(port).await, "t9-broken");
    let glance = server
        .browse("/apps/site/health", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(glance.contains(">unhealthy</span>"), "{glance}");
    assert!(
        glance.contains(&format!(
            "Health check <strong>home page</strong>: {home} answered 200"
        )),
        "{glance}"
    );
    assert!(
        glance.contains(&format!(
            r#"<li class="check unit-failed">Health check: health check {api} failed"#
        )),
        "{glance}"
    );
    let token = server.token("watch", Role::Viewer).await;
    let health = json(server.get_as("/api/apps/site/health", &token).await).await;
    assert_eq!(health["verdict"], "unhealthy");
    assert_eq!(health["units"][0]["unit"], "site.service");
    assert_eq!(health["units"][0]["active_state"], "active");
    let checks: Vec<(&str, &str, bool)> = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["url"].as_str().unwrap(),
                c["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        checks,
        [
            ("home page", home.as_str(), true),
            (api.as_str(), api.as_str(), false)
        ]
    );
    assert_eq!(answer(port).await, "t9-broken");
}
