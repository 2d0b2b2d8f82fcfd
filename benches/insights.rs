//! Issue 25's figure: `/insights` over 100,000 jobs of four apps spread
//! over the last 89 days (70 % sweeps, 15 % actions, 10 % deploys, 2 %
//! rollbacks, 3 % rotations; a tenth of them failing), fetched over HTTP
//! by an admin who sees all four, p50 and p99 per range; in the 90-day
//! range every job is in range. Prints Markdown table rows;
//! `cargo bench --bench insights -- --bench`. Without `--bench` (as
//! `cargo test --all-targets` runs it) it does the same on 2,000 jobs with
//! a few requests, checking the page rather than timing it.

use std::time::{Duration, Instant};

use opsdeck::auth::Role;
use opsdeck::insights::{Range, Window};

#[path = "../tests/support/mod.rs"]
mod support;

const APPS: &str = "[[app]]\nname = \"app0\"\nrepo = \"/srv/app0\"\n\n[[app]]\nname = \"app1\"\nrepo = \"/srv/app1\"\n\n\
                    [[app]]\nname = \"app2\"\nrepo = \"/srv/app2\"\n\n[[app]]\nname = \"app3\"\nrepo = \"/srv/app3\"\n";

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (jobs, rounds) = if bench { (100_000, 200) } else { (2_000, 2) };
    let s = support::server::start(APPS).await;
    let started = Instant::now();
    // 89 days back from now: all within the 90-day range, which starts at
    // midnight 89 days ago.
    support::history::bulk(&s.ctx.db, jobs, 4, 89).await;
    eprintln!("wrote {jobs} jobs in {:?}", started.elapsed());
    let token = s.token("bench", Role::Admin).await;

    // The figure counts what the database holds in range.
    let since = Window::new(Range::Quarter, support::history::now()).since;
    let deploys: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE kind = 'deploy' AND created_at >= ?
           AND state IN ('succeeded', 'failed', 'timed_out', 'interrupted')",
    )
    .bind(since)
    .fetch_one(&s.ctx.db)
    .await
    .unwrap();
    let page = s
        .get_as("/insights?range=90d", &token)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("({deploys} deploys in the last 90 days")),
        "{deploys} deploys: {page}"
    );

    for range in ["7d", "30d", "90d"] {
        let mut times = Vec::new();
        for round in 0..=rounds {
            let t = Instant::now();
            let res = s.get_as(&format!("/insights?range={range}"), &token).await;
            assert_eq!(res.status(), 200, "{range}");
            let page = res.text().await.unwrap();
            // The first round warms the caches; it is not counted.
            if round > 0 {
                times.push(t.elapsed());
            }
            assert!(page.contains("Change failure rate: "), "{page}");
        }
        if !bench {
            continue;
        }
        times.sort();
        let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        let in_range = match range {
            "90d" => "every job in range".to_owned(),
            other => format!("{} days of them in range", other.trim_end_matches('d')),
        };
        println!(
            "| insights: `/insights?range={range}` over {},{:03} jobs of 4 apps ({in_range}), p50 / p99 | {} / {} | — | {:.2} (p99 ÷ 50 ms) | p99 ≤ 50 ms |",
            jobs / 1000,
            jobs % 1000,
            ms(p(0.5)),
            ms(p(0.99)),
            p(0.99).as_secs_f64() / 0.050
        );
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
