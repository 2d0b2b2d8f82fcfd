//! The sign-in figures of issue 3: the per-request cost of the session and
//! CSRF checks together (target ≤ 100 µs p50), and a full Gitea sign-in round
//! trip against the local OpenID provider. Prints Markdown table rows;
//! `cargo bench --bench signin -- --bench`. Without `--bench` (as
//! `cargo test --all-targets` runs it) it returns at once.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use opsdeck::auth::{Role, session};
use tower::ServiceExt;

#[path = "../tests/signin/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "../tests/signin/flow.rs"]
#[allow(dead_code)]
mod flow;
#[path = "../tests/support/mod.rs"]
mod support;

use support::oidc;

const ROUNDS: usize = 2_000;

fn p50(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let app = app::App::start("[auth]\ndev_login = true\n").await;
    let router = opsdeck::web::router(app.ctx.clone());
    let (cookie, live) = app
        .ctx
        .sessions
        .create(session::NewSession {
            login: "bench",
            role: Role::Owner,
            groups: &[],
            remote: "127.0.0.1",
            user_agent: "bench",
        })
        .await
        .unwrap();
    let cookie = format!(
        "{}={cookie}",
        session::cookie_name(&app.ctx.config, session::SESSION_COOKIE)
    );

    // The same request twice: with a session and its CSRF token (the
    // middleware looks the session up and checks Origin and the token), and
    // without (the middleware sends it to sign in). The router answers both
    // without a handler doing any work, so the difference is the checks.
    let request = |signed_in: bool| {
        let mut req = Request::post("/nothing-here").header("origin", &app.url);
        if signed_in {
            req = req
                .header("cookie", &cookie)
                .header("x-csrf-token", &live.csrf);
        }
        req.body(Body::empty()).unwrap()
    };
    let mut checked = Vec::with_capacity(ROUNDS);
    let mut bare = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let res = router.clone().oneshot(request(true)).await.unwrap();
        checked.push(t.elapsed());
        assert_eq!(
            res.status(),
            404,
            "the checks passed and reached the router"
        );
        let t = Instant::now();
        let res = router.clone().oneshot(request(false)).await.unwrap();
        bare.push(t.elapsed());
        assert!(res.status().is_redirection() || res.status() == 401);
    }
    let (checked, bare) = (p50(checked), p50(bare));
    let cost = checked.saturating_sub(bare);
    println!(
        "| session + CSRF check per request, p50 | {:.1} µs | request without them {:.1} µs | — | ≤ 100 µs |",
        cost.as_secs_f64() * 1e6,
        bare.as_secs_f64() * 1e6
    );

    if !oidc::available() {
        println!(
            "| Gitea sign-in round trip, p50 | skipped: the OpenID provider cannot run here | | | |"
        );
        return;
    }
    let pair = flow::Pair::start().await;
    flow::ready(&pair.app).await;
    // The sign-in rate limit allows 10 a minute per address, and a sign-in
    // spends two (its start and Gitea's callback): five fit in the burst.
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        flow::signed_in_cookie(&pair, "ann").await;
        times.push(t.elapsed());
    }
    println!(
        "| Gitea sign-in round trip (opsdeck → provider → callback → session), p50 of 5 | {:.1} ms | — | — | — |",
        p50(times).as_secs_f64() * 1e3
    );
}
