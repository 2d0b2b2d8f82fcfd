//! `opsdeck serve`: checks the listen address, starts the context, records
//! the config load, serves the router until SIGTERM/SIGINT, then drains.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use crate::audit::Event;
use crate::auth::Actor;
use crate::config::Config;

/// How long open connections (SSE streams) get to finish after the jobs
/// drained; then the process exits anyway.
const CONNECTION_GRACE: Duration = Duration::from_secs(5);

pub async fn run(config: Config) -> anyhow::Result<()> {
    run_then(config, |_| {}).await
}

/// [`run`], calling `ready` once the context is up and requests are
/// served (the demo's first deploy starts there).
pub async fn run_then(config: Config, ready: impl FnOnce(&crate::Context)) -> anyhow::Result<()> {
    let addrs = listen_addresses(&config.server.listen).await?;
    if config.auth.dev_login && !addrs.iter().all(|a| a.ip().is_loopback()) {
        anyhow::bail!(
            "refusing to start: dev_login = true lets anyone sign in as anyone, so it only works on a loopback address, \
             and listen = {:?} is not one; set listen = \"127.0.0.1:PORT\" or turn dev_login off in {}",
            config.server.listen,
            config.path.display()
        );
    }
    let config_hash = file_sha256(&config.path)?;
    let listener = tokio::net::TcpListener::bind(addrs.as_slice())
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let grace = config.jobs.shutdown_grace;
    let ctx = crate::Context::start(config).await?;
    ctx.audit
        .record(
            Event::new(&Actor::system("system:opsdeck"), "config.load", "").detail(
                serde_json::json!({
                    "path": std::fs::canonicalize(&ctx.config.path)
                        .unwrap_or_else(|_| ctx.config.path.clone())
                        .display()
                        .to_string(),
                    "sha256": config_hash,
                }),
            ),
        )
        .await
        .context("cannot write the audit log")?;

    ctx.audit.watch_chain();
    // Sends what the outbox holds (also what a previous run left pending).
    tokio::spawn(crate::notify::deliver_forever(
        ctx.config.clone(),
        ctx.db.clone(),
        ctx.audit.clone(),
    ));
    crate::ops::health_watch::start(&ctx);
    crate::ops::overdue_watch::start(&ctx);
    let scheduler = crate::ops::schedule::Scheduler::new(ctx.clone());
    tokio::spawn(async move {
        scheduler.run(&crate::ops::schedule::SystemClock).await;
    });
    let local = listener.local_addr()?;
    tracing::info!("opsdeck listening on http://{local}");
    let app = crate::web::router(ctx.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(crate::web::listen(listener), app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });

    ready(&ctx);
    let signal = shutdown_signal().await?;
    tracing::info!("{signal}: no new connections; letting running jobs finish for up to {grace:?}");
    // Stop accepting first, so no new job starts while the engine drains.
    let _ = stop_tx.send(());
    ctx.jobs.shutdown(grace).await;
    match tokio::time::timeout(CONNECTION_GRACE, server).await {
        Ok(Ok(result)) => result.context("the HTTP server failed")?,
        Ok(Err(e)) => anyhow::bail!("the HTTP server task failed: {e}"),
        Err(_) => tracing::info!("closing connections still open (live streams)"),
    }
    tracing::info!("opsdeck stopped");
    Ok(())
}

/// `listen` resolved (a host name such as `localhost` is allowed).
async fn listen_addresses(listen: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .with_context(|| format!("listen = {listen:?} is not an address like \"127.0.0.1:8080\""))?
        .collect();
    anyhow::ensure!(
        !addrs.is_empty(),
        "listen = {listen:?} resolves to no address"
    );
    Ok(addrs)
}

/// The config file's SHA-256, recorded so an admin can tell which config ran.
fn file_sha256(path: &std::path::Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

async fn shutdown_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
