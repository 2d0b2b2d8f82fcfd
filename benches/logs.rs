//! Issue 7's figures, on a real systemd + journald (the test sandbox) and
//! the real `opsdeck serve`: latency from a unit writing a line to an SSE
//! viewer receiving it; throughput to one viewer against raw `journalctl
//! -o json` on the same entries; opsdeck's memory with 500 viewers of one
//! unit. Prints Markdown table rows; `cargo bench --bench logs -- --bench`.
//! Without `--bench` (as `cargo test --all-targets` runs it) it returns at
//! once.

use std::process::Stdio;

use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

#[path = "../tests/support/mod.rs"]
mod support;

use support::chatty::{self, say};
use support::cli::Instance;
use support::sandbox::{self, Sandbox};

const BURST: usize = 50_000;
const VIEWERS: usize = 500;
const LATENCY_SAMPLES: usize = 100;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if sandbox::inside().is_some() {
        tokio::runtime::Runtime::new().unwrap().block_on(inside());
        return;
    }
    let sandbox = Sandbox::boot().expect("the systemd sandbox boots (root, systemd)");
    let out = sandbox.run_self_inside(&["--bench"]);
    print!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn inside() {
    chatty::start();
    let instance = Instance::new(
        "[logs]\nmax_viewers = 1000\n\n[[app]]\nname = \"chatty\"\nunits = [\"chatty.service\"]\n",
    );
    let token = instance.token("bench", "operator");
    let server = instance
        .serve_with(&[], Stdio::null(), Stdio::inherit())
        .await;
    let url = format!("http://127.0.0.1:{}", instance.port);
    let client = reqwest::Client::new();
    let open = |query: String, resume: Option<String>| {
        let mut req = client
            .get(format!("{url}/api/apps/chatty/logs?{query}"))
            .bearer_auth(&token);
        if let Some(cursor) = resume {
            req = req.header("last-event-id", cursor);
        }
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 200);
            res
        }
    };
    let idle = server.rss_kib();

    eprintln!("logs bench: latency");
    // Latency: the unit stamps each line as it prints it; opsdeck's viewer
    // and a raw `journalctl --follow` (the floor: journald notifies its
    // readers in batches) receive the same lines.
    let mut viewer = open("backfill=0&grep=latency".into(), None).await;
    // From the journal's newest entry, as opsdeck's hub does: `--lines=0`
    // would race the first line against journalctl's start.
    let newest = newest_cursor(&[]).expect("the journal has entries");
    let mut raw = tokio::process::Command::new("journalctl")
        .args([
            "--output=json",
            "--follow",
            "--unit=chatty.service",
            "--grep=latency",
        ])
        .arg(format!("--cursor={newest}"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut raw_lines = tokio::io::BufReader::new(raw.stdout.take().unwrap()).lines();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut buf = String::new();
    for i in 0..LATENCY_SAMPLES {
        say(1, 6, &format!("latency {{ns}} {i}"));
        // Both read at once, each timed as it arrives.
        let (a, b) = within(async {
            tokio::join!(
                async { since_stamp(&next_data(&mut viewer, &mut buf).await) },
                async {
                    let line = raw_lines.next_line().await.unwrap();
                    since_stamp(&line.expect("journalctl -f ended"))
                },
            )
        })
        .await;
        ours.push(a);
        theirs.push(b);
        // Pauses that do not line up with journald's notification batches.
        tokio::time::sleep(Duration::from_millis((i as u64 * 37) % 300)).await;
    }
    drop((viewer, raw));
    let (ours, theirs) = (percentiles(ours), percentiles(theirs));
    println!(
        "| unit line → viewer latency, p50 / p99: opsdeck SSE vs raw `journalctl -f` | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.2} (p99) | p99 ≤ journalctl -f + 50 ms |",
        ours.0,
        ours.1,
        theirs.0,
        theirs.1,
        ours.1 / theirs.1,
    );

    eprintln!("logs bench: throughput");
    // Throughput: a burst already in the journal, read raw and through opsdeck.
    say(1, 6, "burst-start");
    let start = wait_for("burst-start 0").await;
    say(BURST, 6, "burst");
    wait_for(&format!("burst {}", BURST - 1)).await;
    let raw = Instant::now();
    let status = std::process::Command::new("journalctl")
        .args([
            "--output=json",
            "--all",
            "--no-pager",
            "--unit=chatty.service",
        ])
        .arg(format!("--after-cursor={start}"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let raw = raw.elapsed();
    let ours = Instant::now();
    let mut viewer = open("backfill=0".into(), Some(start)).await;
    let last = format!("burst {}\"", BURST - 1);
    let mut tail = Vec::new();
    while let Some(chunk) = within(viewer.chunk()).await.unwrap() {
        // Keep the end of the previous chunk: the marker may straddle two.
        tail.drain(..tail.len().saturating_sub(last.len()));
        tail.extend_from_slice(&chunk);
        if tail.windows(last.len()).any(|w| w == last.as_bytes()) {
            break;
        }
    }
    let ours = ours.elapsed();
    drop(viewer);
    println!(
        "| {BURST} entries to one viewer: opsdeck SSE vs raw `journalctl -o json` to /dev/null | {:.0} entries/s | {:.0} entries/s | {:.2} | ≥ 0.8 |",
        BURST as f64 / ours.as_secs_f64(),
        BURST as f64 / raw.as_secs_f64(),
        raw.as_secs_f64() / ours.as_secs_f64(),
    );

    eprintln!("logs bench: memory");
    // Memory: 500 viewers of one unit.
    let mut viewers = Vec::new();
    for _ in 0..VIEWERS {
        viewers.push(open("backfill=0".into(), None).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = server.rss_kib();
    println!(
        "| opsdeck RSS with {VIEWERS} viewers of one unit, over idle | +{:.1} MB | idle {:.1} MB | — | ≤ +20 MB |",
        (loaded.saturating_sub(idle)) as f64 / 1024.0,
        idle as f64 / 1024.0,
    );
    drop(viewers);
}

/// The data of the next entry event.
async fn next_data(res: &mut reqwest::Response, buf: &mut String) -> String {
    within(async {
        loop {
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                    if block.starts_with("id: ") {
                        return data.to_owned();
                    }
                }
            }
            let chunk = res.chunk().await.unwrap().expect("the stream ended");
            buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
}

/// Waits until journald's newest line of the unit is `text`; its cursor.
async fn wait_for(text: &str) -> String {
    within(async {
        loop {
            match newest_entry(&["--unit=chatty.service"]) {
                Some(entry) if entry["MESSAGE"] == text => {
                    return entry["__CURSOR"].as_str().unwrap_or_default().to_owned();
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
}

fn newest_cursor(filter: &[&str]) -> Option<String> {
    newest_entry(filter).and_then(|e| e["__CURSOR"].as_str().map(str::to_owned))
}

/// The newest journal entry matching `filter`, as journalctl's JSON.
fn newest_entry(filter: &[&str]) -> Option<serde_json::Value> {
    let out = std::process::Command::new("journalctl")
        .args(["--output=json", "--no-pager", "--lines=1"])
        .args(filter)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).ok()
}

/// `future`, or a panic saying the bench is stuck rather than a silent hang.
async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .expect("no progress for 60 s")
}

/// Milliseconds since the `latency <ns>` stamp in `text` was printed.
fn since_stamp(text: &str) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let sent: u128 = text
        .split("latency ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ns| ns.parse().ok())
        .expect("a stamped line");
    (now - sent) as f64 / 1e6
}

/// p50 and p99 of `samples`.
fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99))
}
