//! The admin's audit review through a served `opsdeck serve`: the page, its
//! filters and keyset pages on a million rows, tamper evidence, roles, and
//! the streamed export.

mod support;

use support::cli::{Instance, Server, text};

/// An opsdeck serving at a URL: the binary (`support::cli`) or in this
/// process (`support::server`).
trait Served {
    fn url(&self) -> &str;
}

impl Served for Server {
    fn url(&self) -> &str {
        &self.url
    }
}

impl Served for support::server::Server {
    fn url(&self) -> &str {
        &self.url
    }
}

/// `GET path` with a bearer token: (status, body).
async fn get(server: &impl Served, token: &str, path: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", server.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The row ids a page of `/audit` lists, in order.
fn ids(html: &str) -> Vec<i64> {
    html.split("<td><a href=\"/audit/")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// The `before=` of the page's "Older" link.
fn older(html: &str) -> Option<String> {
    let at = html.find("rel=\"next\"")?;
    let href = &html[..at];
    let start = href.rfind("href=\"").unwrap() + 6;
    Some(
        href[start..]
            .split('"')
            .next()
            .unwrap()
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

/// Polls until the background verifier has spoken, then returns the page.
async fn audit_page_after_verification(server: &Server, token: &str) -> String {
    loop {
        let (status, html) = get(server, token, "/audit").await;
        assert_eq!(status, 200, "{html}");
        if !html.contains("chain-pending") {
            return html;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// 2026-01-01T00:00:00Z; generated row `id` is at BASE + id seconds.
const BASE_MS: i64 = 1_767_225_600_000;

#[tokio::test]
async fn filters_and_keyset_pages_on_a_million_rows() {
    let i = Instance::new("");
    assert!(i.run(&["migrate"]).status.success());
    let db = i.sqlite().await;
    let mut tx = db.begin().await.unwrap();
    sqlx::query(
        "WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < 1000000)
         INSERT INTO audit_events (id, at, actor, role, action, app, detail, outcome, job_id, remote, prev_hash, hash)
         SELECT id, ? + id * 1000, 'user' || (id % 10), 'operator',
                CASE id % 4 WHEN 0 THEN 'job.request' WHEN 1 THEN 'job.start' WHEN 2 THEN 'job.end' ELSE 'signin' END,
                'app' || (id % 3), json_object('n', id),
                CASE WHEN id % 1000 = 0 THEN 'denied' WHEN id % 97 = 0 THEN 'failed' ELSE 'ok' END,
                CASE WHEN id % 5 = 0 THEN id / 5 END, '10.0.0.1', 'generated', 'generated'
         FROM n",
    )
    .bind(BASE_MS)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    db.close().await;
    let token = i.token("admin", "admin"); // row #1000001
    let server = i.serve().await; // row #1000002: config.load

    // The first page: the newest rows, newest first.
    let (_, html) = get(&server, &token, "/audit").await;
    let first = ids(&html);
    assert_eq!(first, (999_953..=1_000_002).rev().collect::<Vec<_>>());
    let (_, html) = get(&server, &token, &older(&html).unwrap()).await;
    assert_eq!(ids(&html), (999_903..=999_952).rev().collect::<Vec<_>>());

    // Every denied row of user0, page after page: 1000 rows, 20 pages.
    let mut seen = Vec::new();
    let mut path = "/audit?actor=user0&outcome=denied".to_string();
    loop {
        let (status, html) = get(&server, &token, &path).await;
        assert_eq!(status, 200);
        assert!(html.contains("row-denied"));
        seen.extend(ids(&html));
        match older(&html) {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(seen, (1..=1000).rev().map(|k| k * 1000).collect::<Vec<_>>());

    // A time range (since inclusive, until exclusive), with an app.
    let since = "2026-01-06T18:53:20Z"; // BASE + 500000 s
    let until = "2026-01-06T18:53:30Z"; // BASE + 500010 s
    let (_, html) = get(
        &server,
        &token,
        &format!("/audit?since={since}&until={until}"),
    )
    .await;
    assert_eq!(ids(&html), (500_000..500_010).rev().collect::<Vec<_>>());
    let (_, html) = get(
        &server,
        &token,
        &format!("/audit?since={since}&until={until}&app=app1"),
    )
    .await;
    assert_eq!(ids(&html), vec![500_008, 500_005, 500_002]);

    // Free text in details, a job's rows, an action.
    let (_, html) = get(&server, &token, "/audit?q=123456%7D").await;
    assert_eq!(ids(&html), vec![123_456]);
    let (_, html) = get(&server, &token, "/audit?job=200").await;
    assert_eq!(ids(&html), vec![1000]);
    assert!(html.contains("href=\"/jobs/200\""));
    let (_, html) = get(&server, &token, "/audit?action=signin&app=app0&before=40").await;
    assert_eq!(ids(&html), vec![39, 27, 15, 3]);

    // Filter values are data; bad ones are a clear 400.
    let (status, html) = get(&server, &token, "/audit?actor=%27%20OR%20%271%27%3D%271").await;
    assert_eq!((status, ids(&html)), (200, vec![]));
    assert!(html.contains("No rows match this filter"));
    let long = "x".repeat(10_000);
    for (query, says) in [
        (format!("actor={long}"), "longer than 200 characters"),
        ("since=last%20friday".to_string(), "is not a time"),
        ("until=2026-13-45".to_string(), "is not a time"),
        (
            "outcome=%27%3B%20DROP%20TABLE%20audit_events%3B--".to_string(),
            "is not one of ok, denied, failed, cancelled, error",
        ),
        ("before=abc".to_string(), "must be a row number"),
        ("job=1%20OR%201".to_string(), "is not a job number"),
    ] {
        let (status, body) = get(&server, &token, &format!("/audit?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert!(body.contains(says), "{query}: {body}");
    }
    let (status, _) = get(&server, &token, "/api/audit?since=nope").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn tampering_shows_on_the_page_and_in_the_cli() {
    let i = Instance::new("");
    let admin = i.token("admin", "admin");
    for k in 0..5 {
        i.token(&format!("t{k}"), "viewer");
    }
    // Untampered: the page says how far the chain verified.
    let server = i.serve().await;
    let html = audit_page_after_verification(&server, &admin).await;
    assert!(html.contains("Chain verified through #7"), "{html}");
    server.stop();

    let db = i.sqlite().await;
    sqlx::query("DROP TRIGGER audit_no_update")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE audit_events SET detail = '{\"name\":\"t9\",\"role\":\"viewer\"}' WHERE id = 4",
    )
    .execute(&db)
    .await
    .unwrap();
    db.close().await;

    let server = i.serve().await;
    let html = audit_page_after_verification(&server, &admin).await;
    assert!(html.contains("chain-broken"), "{html}");
    assert!(html.contains("row #4 was changed"), "{html}");
    assert!(html.contains("href=\"/audit/4\""));
    let (_, row) = get(&server, &admin, "/audit/4").await;
    assert!(
        row.contains("does not match the row: it was changed"),
        "{row}"
    );
    let (_, row) = get(&server, &admin, "/audit/5").await;
    assert!(
        row.contains("matches the row") && row.contains("is row #4's hash"),
        "{row}"
    );

    let out = i.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("row #4 was changed"));
}

#[tokio::test]
async fn deleted_and_inserted_rows_show_on_the_page_and_in_the_cli() {
    for (tamper, says) in [
        (
            &["DELETE FROM audit_events WHERE id = 3"][..],
            "row #3 was deleted",
        ),
        (
            &[
                "UPDATE audit_events SET id = id + 1000 WHERE id > 4",
                "UPDATE audit_events SET id = id - 999 WHERE id > 1000",
                "INSERT INTO audit_events (id, at, actor, role, action, app, detail, outcome, job_id, remote, prev_hash, hash)
                 VALUES (5, 0, 'cli:ben', 'owner', 'token.create', '', '{}', 'ok', NULL, '', 'forged', 'forged')",
            ],
            "row #5 was inserted",
        ),
    ] {
        let i = Instance::new("");
        let admin = i.token("admin", "admin");
        for k in 0..5 {
            i.token(&format!("t{k}"), "viewer");
        }
        let db = i.sqlite().await;
        sqlx::query("DROP TRIGGER audit_no_update").execute(&db).await.unwrap();
        sqlx::query("DROP TRIGGER audit_no_delete").execute(&db).await.unwrap();
        for sql in tamper {
            sqlx::query(sql).execute(&db).await.unwrap();
        }
        db.close().await;

        let out = i.run(&["audit", "verify"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
        let server = i.serve().await;
        let html = audit_page_after_verification(&server, &admin).await;
        assert!(html.contains("chain-broken") && html.contains(says), "{html}");
    }
}

#[tokio::test]
async fn operators_and_viewers_are_refused_and_audited() {
    let i = Instance::new("");
    let viewer = i.token("look", "viewer");
    let operator = i.token("ops", "operator");
    let server = i.serve().await;
    for (token, who) in [(&viewer, "look"), (&operator, "ops")] {
        for path in [
            "/audit",
            "/audit/1",
            "/api/audit",
            "/audit/export?format=csv",
        ] {
            let (status, body) = get(&server, token, path).await;
            assert_eq!(status, 403, "{who} {path}: {body}");
            assert!(body.contains("audit needs the admin role"), "{body}");
        }
    }
    let denied = text(
        &i.run(&[
            "audit",
            "export",
            "--outcome",
            "denied",
            "--action",
            "audit",
        ])
        .stdout,
    );
    assert_eq!(denied.lines().count(), 8, "{denied}");
    assert!(
        denied.contains("\"actor\":\"token:look\"") && denied.contains("\"actor\":\"token:ops\""),
        "{denied}"
    );
}

#[tokio::test]
async fn the_api_streams_exports_that_verify_offline() {
    let i = Instance::new("");
    let admin = i.token("admin", "admin");
    i.token("ci", "operator");
    let server = i.serve().await;

    let r = reqwest::Client::new()
        .get(format!("{}/api/audit?format=jsonl", server.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/jsonl")
    );
    let jsonl = r.text().await.unwrap();
    assert_eq!(jsonl.lines().count(), 3, "{jsonl}");
    let file = i.dir.path().join("api.jsonl");
    std::fs::write(&file, &jsonl).unwrap();
    let out = support::cli::run(&["audit", "verify", "--file", file.to_str().unwrap()]);
    assert_eq!(
        text(&out.stdout),
        "verified 3 events (through #3)\n",
        "{}",
        text(&out.stderr)
    );

    let (status, csv) = get(
        &server,
        &admin,
        "/api/audit?format=csv&action=token.create&actor=",
    )
    .await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,at,actor,role,action,app,detail,outcome,job_id,remote,prev_hash,hash"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[2].contains("\"{\"\"name\"\":\"\"ci\"\",\"\"role\"\":\"\"operator\"\"}\""),
        "{csv}"
    );

    // The page's export buttons carry the current filter.
    let (_, html) = get(&server, &admin, "/audit?action=token.create").await;
    assert!(
        html.contains("href=\"/audit/export?action=token.create&amp;format=csv\""),
        "{html}"
    );
    let (status, body) = get(
        &server,
        &admin,
        "/audit/export?action=token.create&format=jsonl",
    )
    .await;
    assert_eq!((status, body.lines().count()), (200, 2));
    let (status, body) = get(&server, &admin, "/api/audit?format=xml").await;
    assert_eq!(status, 400);
    assert!(body.contains("not jsonl or csv"));
}

#[tokio::test]
async fn a_row_shows_its_record_and_hashes() {
    let i = Instance::new("");
    let admin = i.token("admin", "admin");
    let server = i.serve().await;
    let (status, html) = get(&server, &admin, "/audit/1").await;
    assert_eq!(status, 200, "{html}");
    for expected in [
        "token.create",
        "&#34;admin&#34;",
        "the chain's start",
        "matches the row",
    ] {
        assert!(html.contains(expected), "{expected}: {html}");
    }
    let out = i.run(&["audit", "export"]);
    let row: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert!(html.contains(row["hash"].as_str().unwrap()));
    assert!(html.contains(opsdeck::audit::GENESIS));
    let (status, _) = get(&server, &admin, "/audit/999").await;
    assert_eq!(status, 404);
    let (status, _) = get(&server, &admin, "/audit/abc").await;
    assert_eq!(status, 404);
}

/// The filters take what people type: `deploy` finds the rows of deploy
/// jobs (a deploy is `job.request` … `job.end`), `ci` finds `token:ci`,
/// `job` every `job.*` row; a date typo keeps the form as typed with the
/// problem under it; the CSV's times are ISO 8601.
#[tokio::test]
async fn filters_match_what_people_type_and_a_typo_keeps_the_form() {
    use support::server;
    let repos = support::repos::Repos::new();
    let s = server::start(&format!(
        "[[app]]\nname = \"web\"\nenvironment = \"staging\"\nrepo = \"{}\"\n\n[[app.action]]\nname = \"hello\"\nrun = [\"true\"]\n",
        repos.app.display()
    ))
    .await;
    let ci = s.token("ci", opsdeck::auth::Role::Owner).await;
    let admin = s.token("auditor", opsdeck::auth::Role::Admin).await;
    let post = |path: &'static str, body: serde_json::Value| {
        let request = server::client()
            .post(s.at(path))
            .bearer_auth(&ci)
            .json(&body);
        async move {
            server::json(request.send().await.unwrap()).await["job"]
                .as_i64()
                .unwrap()
        }
    };
    let deploy = post("/api/apps/web/deploy", serde_json::json!({"ref": "main"})).await;
    s.finished(deploy).await;
    let action = post("/api/apps/web/actions/hello/run", serde_json::json!({})).await;
    s.finished(action).await;

    let rows = |query: &'static str| {
        let request = server::client()
            .get(s.at(&format!("/api/audit?{query}")))
            .bearer_auth(&admin);
        async move {
            let text = request.send().await.unwrap().text().await.unwrap();
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .collect::<Vec<_>>()
        }
    };
    let deploys = rows("action=deploy").await;
    assert!(!deploys.is_empty());
    assert!(deploys.iter().all(|r| r["job_id"] == deploy), "{deploys:?}");
    let actions: Vec<_> = deploys
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"job.request") && actions.contains(&"job.end"),
        "{actions:?}"
    );
    let jobs = rows("action=job").await;
    assert!(
        jobs.iter()
            .all(|r| r["action"].as_str().unwrap().starts_with("job."))
    );
    assert!(jobs.iter().any(|r| r["job_id"] == action), "{jobs:?}");
    for typed in ["actor=ci", "actor=CI", "actor=token:ci"] {
        let by_ci = rows(typed).await;
        assert!(!by_ci.is_empty(), "{typed}");
        assert!(
            by_ci.iter().all(|r| r["actor"] == "token:ci"),
            "{typed}: {by_ci:?}"
        );
    }
    assert!(
        rows("actor=c").await.is_empty(),
        "a part of a name is not the name"
    );

    // The page: details as people read them, a job's rows as one group.
    let (_, html) = get(&s, &admin, "/audit?action=deploy").await;
    assert!(
        html.contains(r#"<td class="detail" data-label="Details">kind: deploy · target: "#),
        "{html}"
    );
    let grouped = html.matches(r#" in-job same-job">"#).count();
    assert_eq!(
        grouped,
        deploys.len() - 1,
        "all but the first row continue the job: {html}"
    );

    // A date typo: the form as typed, the problem under it, no rows.
    let (status, html) = get(&s, &admin, "/audit?actor=ci&since=2026-13-45").await;
    assert_eq!(status, 400);
    assert!(
        html.contains(r#"<input name="since" value="2026-13-45""#),
        "{html}"
    );
    assert!(html.contains(r#"<input name="actor" value="ci""#), "{html}");
    let form_end = html.find("</form>").unwrap();
    let problem = html
        .find(r#"<p class="problem" role="alert" id="filter-problem">since &#34;2026-13-45&#34; is not a time"#)
        .unwrap_or_else(|| panic!("{html}"));
    assert!(problem < form_end, "the problem is beside the form: {html}");

    // CSV times read as times, with the milliseconds the hash covers.
    let (_, csv) = get(&s, &admin, "/api/audit?format=csv&actor=ci").await;
    let at = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&at).is_ok() && at.ends_with('Z') && at.len() == 24,
        "{at}"
    );
}
