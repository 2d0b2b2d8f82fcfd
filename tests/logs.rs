//! Live journald logs on a real systemd + journald: a unit writes lines,
//! viewers read them over SSE through opsdeck's follow hub.

mod support;

use std::time::{Duration, Instant};

use opsdeck::auth::Role;
use support::chatty::{self, say};
use support::sandbox::{self, Sandbox};
use support::server::{self, Server};
use support::sse::read_events_as;

type Event = (String, Option<String>, String);

#[test]
fn logs_follow_filter_backfill_and_resume_on_a_real_journal() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_logs_follow_filter_backfill_and_resume");
}

#[test]
fn viewers_share_one_journalctl_and_a_slow_viewer_costs_bounded_memory() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_viewers_share_one_journalctl");
}

/// Starts `chatty.service` and an opsdeck that shows its logs.
async fn start() -> (Server, String) {
    chatty::start();
    let server = server::start(
        "[logs]\nmax_followers = 8\nmax_viewers = 150\n\n[[app]]\nname = \"chatty\"\nunits = [\"chatty.service\"]\n\n[[app]]\nname = \"other\"\nunits = [\"other.service\"]\n",
    )
    .await;
    let token = server.token("oncall", Role::Operator).await;
    (server, token)
}

async fn open(
    server: &Server,
    token: &str,
    query: &str,
    resume: Option<&str>,
) -> reqwest::Response {
    let mut req = server::client()
        .get(server.at(&format!("/api/apps/chatty/logs?{query}")))
        .bearer_auth(token);
    if let Some(cursor) = resume {
        req = req.header("last-event-id", cursor);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200, "{query}");
    res
}

/// Reads entries until one's message is `last` (named events — the
/// stream's opening `command`, `skipped` — are not entries).
async fn until(res: &mut reqwest::Response, buf: &mut String, last: &str) -> Vec<Event> {
    let want = last.to_owned();
    let events = tokio::time::timeout(
        Duration::from_secs(120),
        read_events_as(res, buf, move |e: &Event| message(e) == want),
    )
    .await
    .unwrap_or_else(|_| panic!("no {last:?} within a minute"));
    events.into_iter().filter(|e| e.0 == "message").collect()
}

fn message(event: &Event) -> String {
    let entry: serde_json::Value = serde_json::from_str(&event.2).unwrap_or_default();
    entry["m"].as_str().unwrap_or_default().to_owned()
}

/// `/earlier` as JSON entries.
async fn earlier(server: &Server, token: &str, query: &str) -> Vec<serde_json::Value> {
    let res = server
        .get_as(&format!("/api/apps/chatty/logs/earlier?{query}"), token)
        .await;
    assert_eq!(res.status(), 200, "{query}");
    let body: serde_json::Value = res.json().await.unwrap();
    body["entries"].as_array().unwrap().clone()
}

/// Waits until journald has `text`.
async fn logged(server: &Server, token: &str, grep: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let newest = earlier(server, token, &format!("grep={grep}&lines=1")).await;
        if newest.first().is_some_and(|e| e["m"] == text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "journald never got {text:?}; the newest is {:?}",
            newest.first().map(|e| e["m"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .rev()
                .take(12)
                .collect::<String>())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn journalctl_processes() -> usize {
    let out = std::process::Command::new("pgrep")
        .args(["-c", "-x", "journalctl"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test]
async fn inside_logs_follow_filter_backfill_and_resume() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let (server, token) = start().await;

    // A line the unit writes reaches a viewer, with its unit and priority.
    let mut live = open(&server, &token, "backfill=0", None).await;
    say(1, 6, "hello-live");
    let events = until(&mut live, &mut String::new(), "hello-live 0").await;
    let entry: serde_json::Value = serde_json::from_str(&events.last().unwrap().2).unwrap();
    assert_eq!(
        (entry["u"].as_str(), entry["p"].as_u64()),
        (Some("chatty.service"), Some(6))
    );
    assert_eq!(events.last().unwrap().1.as_deref(), entry["c"].as_str());
    drop(live);

    // Priority: only err and worse. Text: literally, not as a pattern.
    let mut errors = open(&server, &token, "backfill=0&priority=err", None).await;
    say(1, 6, "info-line");
    say(1, 3, "err-line");
    let got = until(&mut errors, &mut String::new(), "err-line 0").await;
    assert_eq!(got.iter().map(message).collect::<Vec<_>>(), ["err-line 0"]);
    let mut needles = open(&server, &token, "backfill=0&grep=needle.", None).await;
    say(1, 6, "needleX");
    say(1, 6, "a needle. here");
    let got = until(&mut needles, &mut String::new(), "a needle. here 0").await;
    assert_eq!(
        got.iter().map(message).collect::<Vec<_>>(),
        ["a needle. here 0"]
    );
    drop((errors, needles));

    // Backfill and "load earlier": the right lines, oldest first.
    say(30, 6, "batch");
    logged(&server, &token, "batch", "batch 29").await;
    let newest = earlier(&server, &token, "grep=batch&lines=10").await;
    let texts = |entries: &[serde_json::Value]| -> Vec<String> {
        entries
            .iter()
            .map(|e| e["m"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        texts(&newest),
        (20..30).map(|i| format!("batch {i}")).collect::<Vec<_>>()
    );
    let before = newest[0]["c"].as_str().unwrap();
    let older = earlier(
        &server,
        &token,
        &format!("grep=batch&lines=10&before={before}"),
    )
    .await;
    assert_eq!(
        texts(&older),
        (10..20).map(|i| format!("batch {i}")).collect::<Vec<_>>()
    );
    // The download has the selection as text, as journalctl prints it.
    let text = server
        .get_as("/api/apps/chatty/logs/download?grep=batch", &token)
        .await;
    assert_eq!(text.status(), 200);
    assert!(
        text.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("chatty-logs.txt")
    );
    let text = text.text().await.unwrap();
    assert_eq!(
        text.lines().filter(|l| l.contains("python3[")).count(),
        30,
        "{text}"
    );
    assert!(
        text.contains("batch 0\n") && text.contains("batch 29\n"),
        "{text}"
    );

    // The page: the filters, and the command an operator would type.
    let (cookie, _) = server.session("olga", Role::Operator).await;
    let page = server
        .browse("/apps/chatty/logs", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"data-app="chatty""#), "{page}");
    assert!(
        page.contains("<code id=\"log-command\">journalctl --unit=chatty.service --follow</code>"),
        "{page}"
    );
    assert!(
        page.contains(r#"<option value="3">3 err or worse</option>"#),
        "{page}"
    );

    // The stream opens with the command for its filters, which the page
    // shows to copy (the same text the server renders for the page).
    let mut filtered = open(&server, &token, "grep=a.b&priority=3&backfill=0", None).await;
    let head = filtered.chunk().await.unwrap().unwrap();
    let head = String::from_utf8_lossy(&head);
    assert!(
        head.contains(
            "event: command\ndata: \"journalctl --unit=chatty.service --priority=3 '--grep=a\\\\.b' --follow\"\n\n"
        ),
        "{head}"
    );
    drop(filtered);

    let mut backfilled = open(&server, &token, "grep=batch&backfill=5", None).await;
    let got = until(&mut backfilled, &mut String::new(), "batch 29").await;
    assert_eq!(
        got.iter().map(message).collect::<Vec<_>>(),
        (25..30).map(|i| format!("batch {i}")).collect::<Vec<_>>()
    );
    drop(backfilled);

    // A viewer leaves while 10,000 lines are written and comes back with its
    // last cursor: it gets every one of them exactly once, in order, and
    // then the live follow goes on.
    let mut viewer = open(&server, &token, "grep=bulk&backfill=0", None).await;
    say(1, 6, "bulk-first");
    let first = until(&mut viewer, &mut String::new(), "bulk-first 0").await;
    let cursor = first.last().unwrap().1.clone().unwrap();
    drop(viewer);
    say(10_000, 6, "bulk");
    logged(&server, &token, "bulk", "bulk 9999").await;
    let mut back = open(&server, &token, "grep=bulk&backfill=0", Some(&cursor)).await;
    let mut buf = String::new();
    let got = until(&mut back, &mut buf, "bulk 9999").await;
    assert_eq!(got.len(), 10_000, "every line once");
    for (i, event) in got.iter().enumerate() {
        assert_eq!(message(event), format!("bulk {i}"), "in order");
    }
    say(1, 6, "bulk-after");
    let next = until(&mut back, &mut buf, "bulk-after 0").await;
    assert_eq!(
        next.iter().map(message).collect::<Vec<_>>(),
        ["bulk-after 0"]
    );
    drop(back);

    // What is not allowed spawns nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = journalctl_processes();
    for (query, resume, status) in [
        ("unit=other.service", None, 403),
        ("unit=sshd.service", None, 403),
        ("unit=--output=cat", None, 403),
        ("priority=loud", None, 400),
        ("grep=%0Aa", None, 400),
        (&*format!("grep={}", "x".repeat(201)), None, 400),
        ("", Some("s=1;rm -rf /"), 400),
        ("after=--all", None, 400),
    ] {
        let mut req = server::client()
            .get(server.at(&format!("/api/apps/chatty/logs?{query}")))
            .bearer_auth(&token);
        if let Some(resume) = resume {
            req = req.header("last-event-id", resume);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), status, "{query} {resume:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    assert_eq!(
        journalctl_processes(),
        before,
        "a refused request started journalctl"
    );
    let guest = server.token("guest", Role::Viewer).await;
    let viewer = server.get_as("/api/apps/chatty/logs", &guest).await;
    assert_eq!(viewer.status(), 403, "logs need the operator role");
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test]
async fn inside_viewers_share_one_journalctl() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let (server, token) = start().await;

    // 100 viewers of one unit: one journalctl, and every one gets the line.
    let mut viewers = Vec::new();
    for _ in 0..100 {
        viewers.push(open(&server, &token, "backfill=0", None).await);
    }
    assert_eq!(journalctl_processes(), 1);
    assert_eq!(server.ctx.logs.counts(), (1, 100));
    say(1, 6, "fan-out");
    for viewer in &mut viewers {
        until(viewer, &mut String::new(), "fan-out 0").await;
    }
    drop(viewers);
    let deadline = Instant::now() + Duration::from_secs(10);
    while journalctl_processes() > 0 || server.ctx.logs.counts() != (0, 0) {
        assert!(
            Instant::now() < deadline,
            "journalctl outlived its viewers: {:?}",
            server.ctx.logs.counts()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Limits: the ninth distinct filter is refused, saying why.
    let mut filters = Vec::new();
    for i in 0..8 {
        filters.push(open(&server, &token, &format!("backfill=0&grep=f{i}"), None).await);
    }
    let refused = server
        .get_as("/api/apps/chatty/logs?backfill=0&grep=f8", &token)
        .await;
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("[logs] max_followers"),
        "{body}"
    );
    assert_eq!(journalctl_processes(), 8);
    drop(filters);

    // A viewer that never reads, while 20,000 lines of 400 bytes (8 MB)
    // go by: opsdeck's memory stays bounded, and the viewer is told what
    // it missed when it reads again.
    let mut stuck = open(&server, &token, "backfill=0&grep=flood", None).await;
    let mut reader = open(&server, &token, "backfill=0&grep=flood", None).await;
    let rss_before = rss_kib();
    let text = format!("flood {}", "x".repeat(390));
    let started = Instant::now();
    say(20_000, 6, &text);
    // Read without keeping: the test's own memory must not count.
    let last = format!("{text} 19999\"");
    tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(chunk) = reader.chunk().await.unwrap() {
            if String::from_utf8_lossy(&chunk).contains(&last) {
                return;
            }
        }
        panic!("the reading viewer's stream ended");
    })
    .await
    .expect("the reading viewer got the last line");
    let grown = rss_kib().saturating_sub(rss_before);
    println!(
        "20,000 lines through in {:?}; opsdeck grew {grown} KiB",
        started.elapsed()
    );
    assert!(
        grown < 6 * 1024,
        "opsdeck grew {grown} KiB for a viewer that does not read"
    );
    let mut buf = String::new();
    let seen = tokio::time::timeout(
        Duration::from_secs(60),
        read_events_as(&mut stuck, &mut buf, |e: &Event| e.0 == "skipped"),
    )
    .await
    .expect("the slow viewer is told it skipped lines");
    let skipped: serde_json::Value = serde_json::from_str(&seen.last().unwrap().2).unwrap();
    assert!(
        skipped["text"]
            .as_str()
            .unwrap()
            .ends_with("lines skipped: this viewer fell behind"),
        "{skipped}"
    );
}

/// This process's resident memory (opsdeck runs in it).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A file source (`logs = { files = [...] }`): backfill, live lines, a
/// logrotate-style rename and a copytruncate both followed, an exact resume
/// by cursor, load earlier, the text filter, download, and what is refused.
#[tokio::test]
async fn a_log_file_is_followed_through_rotation_and_resumed_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let append = |lines: &[String]| {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        for line in lines {
            std::io::Write::write_all(&mut file, format!("{line}\n").as_bytes()).unwrap();
        }
    };
    let numbered =
        |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix} {i}")).collect::<Vec<_>>();
    append(&numbered("before", 5));
    let server = server::start(&format!(
        "[[app]]\nname = \"chatty\"\nlogs = {{ files = [\"{}\"] }}\n",
        log.display()
    ))
    .await;
    let token = server.token("oncall", Role::Operator).await;

    // The page offers the file as a source.
    let page = text(&server, &token, "/apps/chatty/logs").await;
    assert!(
        page.contains(&format!("{}</option>", log.display())),
        "{page}"
    );
    assert!(page.contains("tail -F"), "{page}");

    // Backfill: the newest three, in order; then a live line.
    let mut res = open(&server, &token, "backfill=3", None).await;
    let mut buf = String::new();
    let got = until(&mut res, &mut buf, "before 4").await;
    assert_eq!(
        got.iter().map(message).collect::<Vec<_>>(),
        ["before 2", "before 3", "before 4"]
    );
    append(&["live".to_owned()]);
    until(&mut res, &mut buf, "live").await;

    // logrotate: renamed away, a new file in its place.
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&["after rotation".to_owned()]);
    let got = until(&mut res, &mut buf, "after rotation").await;
    assert_eq!(got.len(), 1, "{got:?}");
    // copytruncate: the same file emptied in place.
    // (Given time to notice the shrink: a truncation and a rewrite past
    // our place inside one poll is caught by the newline check, but not
    // when it lands between that check and the read.)
    std::fs::write(&log, "").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    append(&["after truncation".to_owned()]);
    let got = until(&mut res, &mut buf, "after truncation").await;
    assert_eq!(got.len(), 1, "{got:?}");
    let cursor = got[0].1.clone().expect("file lines carry cursors");
    drop(res);

    // Away while 1,000 lines are written: each arrives once, in order.
    let missed = numbered("missed", 1000);
    append(&missed);
    let mut res = open(&server, &token, "", Some(&cursor)).await;
    let mut buf = String::new();
    let got = until(&mut res, &mut buf, "missed 999").await;
    assert_eq!(got.iter().map(message).collect::<Vec<_>>(), missed);
    drop(res);

    // Load earlier than the first missed line: the two before it.
    let first = got[0].1.clone().unwrap();
    let before = earlier(&server, &token, &format!("before={first}&lines=2")).await;
    let texts: Vec<_> = before.iter().map(|e| e["m"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        ["after truncation"],
        "only this file's lines before it"
    );

    // The text filter holds, ignoring case, live and in backfill.
    let mut res = open(&server, &token, "grep=NEEDLE&backfill=5", None).await;
    append(&["hay".to_owned(), "a needle here".to_owned()]);
    let mut buf = String::new();
    let got = until(&mut res, &mut buf, "a needle here").await;
    assert_eq!(got.len(), 1, "{got:?}");
    drop(res);

    // Download: the file's lines as they are.
    let got = text(
        &server,
        &token,
        "/api/apps/chatty/logs/download?grep=missed%2099",
    )
    .await;
    let want: String = (990..1000).map(|i| format!("missed {i}\n")).collect();
    assert_eq!(got, format!("missed 99\n{want}"));

    // Refused: a priority or times on a file, a file not in the config.
    for (query, status) in [
        ("priority=err", 400),
        ("download?since=1&until=2", 400),
        ("unit=%2Fetc%2Fshadow", 403),
    ] {
        let path = match query.strip_prefix("download") {
            Some(rest) => format!("/api/apps/chatty/logs/download{rest}"),
            None => format!("/api/apps/chatty/logs?{query}"),
        };
        let res = server.get_as(&path, &token).await;
        assert_eq!(res.status(), status, "{query}");
    }
}

/// The body of a GET.
async fn text(server: &Server, token: &str, path: &str) -> String {
    let res = server.get_as(path, token).await;
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

/// A machine without systemd's journal (here: opsdeck's PATH has no
/// `journalctl`, as on a host without systemd): the Logs page says so up
/// front instead of showing "live" over nothing. An app that logs only to
/// files is not warned about a journal it does not use.
#[tokio::test]
async fn without_a_journal_the_logs_page_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "started\n").unwrap();
    let i = support::cli::Instance::new(&format!(
        "[[app]]\nname = \"web\"\nunits = [\"web.service\"]\n\n[[app]]\nname = \"files\"\nlogs = {{ files = [{:?}] }}\n",
        log.display().to_string()
    ));
    let token = i.token("oncall", "operator");
    let empty = tempfile::tempdir().unwrap();
    let server = i
        .serve_with(
            &[("PATH", empty.path().to_str().unwrap())],
            std::process::Stdio::null(),
            std::process::Stdio::null(),
        )
        .await;
    let page = |path: &'static str| {
        let request = reqwest::Client::new()
            .get(format!("{}{path}", server.url))
            .bearer_auth(&token);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let html = page("/apps/web/logs").await;
    assert!(
        html.contains(r#"<p class="warning" role="status" id="journal-problem"><strong>No journal to read.</strong> This machine cannot run journalctl ("#),
        "{html}"
    );
    assert!(
        html.find("journal-problem").unwrap() < html.find("id=\"log-filter\"").unwrap(),
        "the warning comes first: {html}"
    );
    let html = page("/apps/files/logs").await;
    assert!(!html.contains("journal-problem"), "{html}");
}
