//! The audit figures of issue 8, on 1,000,000 rows: a filtered page of
//! `/audit` over HTTP (p50/p99), export throughput, full chain verification.
//! Prints Markdown table rows; `cargo bench --bench audit -- --bench`.
//! Without `--bench` (as `cargo test --all-targets` runs it) it returns at
//! once: generating the rows alone takes a minute.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use opsdeck::audit::{self, Filter, Format, GENESIS, Record};
use opsdeck::auth::Role;

const ROWS: i64 = 1_000_000;

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n",
        dir.path().join("data").display().to_string()
    );
    let config = opsdeck::config::Config::parse(&text, &dir.path().join("opsdeck.toml")).unwrap();
    let ctx = opsdeck::Context::start(config).await.unwrap();

    let started = Instant::now();
    generate(&ctx.db).await;
    eprintln!("generated {ROWS} chained rows in {:?}", started.elapsed());

    let started = Instant::now();
    let cpu = cpu_seconds();
    let verified = audit::verify(&ctx.db).await.unwrap();
    let verify_rate = verified.count as f64 / started.elapsed().as_secs_f64();
    let verify_cpu_rate = verified.count as f64 / (cpu_seconds() - cpu);
    assert_eq!(verified.count, ROWS as u64);

    let started = Instant::now();
    let cpu = cpu_seconds();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let db = ctx.db.clone();
    let writer =
        tokio::spawn(
            async move { audit::export(&db, &Filter::default(), Format::Jsonl, tx).await },
        );
    let mut bytes = 0;
    while let Some(chunk) = rx.recv().await {
        bytes += chunk.len();
    }
    let exported = writer.await.unwrap().unwrap();
    let export_rate = exported as f64 / started.elapsed().as_secs_f64();
    let export_cpu_rate = exported as f64 / (cpu_seconds() - cpu);

    let token = opsdeck::auth::token::create(&ctx.db, "bench", Role::Admin)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = opsdeck::web::router(ctx.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::new();
    let filters = [
        "actor=user3",
        "outcome=denied",
        "app=app1&action=job.end",
        "since=2026-01-06T00:00:00Z&until=2026-01-07T00:00:00Z&actor=user5",
        "actor=user7&before=500000",
        "job=12345",
    ];
    let mut times = Vec::new();
    for round in 0..50 {
        for f in filters {
            let t = Instant::now();
            let r = client
                .get(format!("{url}/audit?{f}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{f}");
            r.text().await.unwrap();
            if round > 0 {
                times.push(t.elapsed());
            }
        }
    }
    times.sort();
    let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "| audit: filtered page of /audit on 1,000,000 rows, p50 / p99 | {} / {} | — | {:.2} (p99 ÷ 20 ms) | p99 ≤ 20 ms |",
        ms(p(0.5)),
        ms(p(0.99)),
        p(0.99).as_secs_f64() / 0.020
    );
    println!(
        "| audit: export (JSON Lines) | {export_rate:.0} rows/s ({:.0} MB/s); {export_cpu_rate:.0} rows per CPU-second | — | — | — |",
        bytes as f64 / 1e6 / (exported as f64 / export_rate)
    );
    println!(
        "| audit: full chain verification | {verify_rate:.0} rows/s; {verify_cpu_rate:.0} rows per CPU-second | — | {:.2} (÷ 200,000) | ≥ 200,000 rows/s |",
        verify_rate / 200_000.0
    );
}

/// CPU time of this process so far (all threads): on a shared machine the
/// wall-clock rates above depend on the neighbours, this does not.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Rows like a busy year's: ten actors, three apps, a few denied and failed,
/// one second apart from 2026-01-01, properly chained.
async fn generate(db: &sqlx::SqlitePool) {
    let mut tx = db.begin().await.unwrap();
    let mut prev = GENESIS.to_string();
    for id in 1..=ROWS {
        let mut r = Record {
            id,
            at: 1_767_225_600_000 + id * 1000,
            actor: format!("user{}", id % 10),
            role: "operator".into(),
            action: ["job.request", "job.start", "job.end", "signin"][(id % 4) as usize].into(),
            app: format!("app{}", id % 3),
            detail: format!("{{\"n\":{id}}}"),
            outcome: if id % 1000 == 0 {
                "denied"
            } else if id % 97 == 0 {
                "failed"
            } else {
                "ok"
            }
            .into(),
            job_id: (id % 5 == 0).then_some(id / 5),
            remote: "10.0.0.1".into(),
            prev_hash: prev,
            hash: String::new(),
        };
        r.hash = audit::row_hash(&r);
        sqlx::query(
            "INSERT INTO audit_events (id, at, actor, role, action, app, detail, outcome, job_id, remote, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.id)
        .bind(r.at)
        .bind(&r.actor)
        .bind(&r.role)
        .bind(&r.action)
        .bind(&r.app)
        .bind(&r.detail)
        .bind(&r.outcome)
        .bind(r.job_id)
        .bind(&r.remote)
        .bind(&r.prev_hash)
        .bind(&r.hash)
        .execute(&mut *tx)
        .await
        .unwrap();
        prev = r.hash;
    }
    tx.commit().await.unwrap();
}
