//! The demo's service: a real process standing in for the app systemd would
//! run — it serves what its last build produced on a health URL and writes a
//! log file, so Deploy, Rollback and Logs have something real to act on.
//!
//! Without systemd (a laptop, a container), nothing can `systemctl restart`
//! it, so the demo app's last build step is `opsdeck demo-service restart`:
//! it stops the running service, starts a new one from the work tree, and
//! succeeds only once the new process itself answers its health URL. The
//! service exits with the `opsdeck demo` that owns it, even when that one
//! is killed, so nothing outlives the demo.

use std::ffi::OsStr;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sha2::Digest as _;

/// Where the service listens (loopback only, like the demo itself).
pub const ADDRESS: &str = "127.0.0.1:8081";
/// How long a restart waits for the new process to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping process gets before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often the service looks whether its owner still runs.
const WATCH: Duration = Duration::from_secs(1);
/// Every how many looks it writes a line, so the Logs page always has a
/// fresh one.
const HEARTBEAT_EVERY: u64 = 3;

pub fn health_url() -> String {
    format!("http://{ADDRESS}/health")
}

/// The service's files inside the demo directory.
pub fn repo(dir: &Path) -> PathBuf {
    dir.join("demo-app")
}
pub fn log_file(dir: &Path) -> PathBuf {
    dir.join("logs").join("demo-app.log")
}
pub fn env_file(dir: &Path) -> PathBuf {
    dir.join("demo-app.env")
}
fn pid_file(dir: &Path) -> PathBuf {
    dir.join("run").join("demo-app.pid")
}

/// Stops the running service (if any), starts a new one owned by `owner`
/// (the `opsdeck demo` process), and waits until that very process answers
/// its health URL. Returns what it answered.
pub fn restart(dir: &Path, owner: u32) -> anyhow::Result<String> {
    if let Some(pid) = stop(dir)? {
        println!("stopped demo-app (pid {pid})");
    }
    let log = open_log(dir)?;
    let exe = std::env::current_exe().context("cannot find opsdeck's own executable")?;
    let owner = owner.to_string();
    let args = [
        OsStr::new("demo-service"),
        OsStr::new("serve"),
        OsStr::new("--dir"),
    ]
    .into_iter()
    .chain([dir.as_os_str(), OsStr::new("--owner"), OsStr::new(&owner)]);
    let args: Vec<&OsStr> = args.collect();
    let mut child = crate::host::local::spawn_detached(&exe, &args, &repo(dir), &log)
        .context("cannot start the demo service")?;
    let pid = child.id();
    let pid_path = pid_file(dir);
    std::fs::write(&pid_path, format!("{pid}\n"))
        .with_context(|| format!("cannot write {}", pid_path.display()))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "demo-app exited as it started ({status}); the end of {}:\n{}",
                log_file(dir).display(),
                tail(&log_file(dir), 5)
            );
        }
        // Another process may still hold the port: only this pid counts.
        match ask(ADDRESS, "/health") {
            Ok(body) if body.contains(&format!("pid {pid}")) => {
                return Ok(format!("demo-app restarted: {}", body.trim()));
            }
            Ok(body) if started.elapsed() > START_TIMEOUT => anyhow::bail!(
                "demo-app (pid {pid}) did not answer in {START_TIMEOUT:?}; {ADDRESS} is answered by another process: {}",
                body.trim()
            ),
            Err(e) if started.elapsed() > START_TIMEOUT => anyhow::bail!(
                "demo-app (pid {pid}) did not answer on {ADDRESS} in {START_TIMEOUT:?}: {e}"
            ),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Stops the service the pid file names, if it still runs: SIGTERM, then
/// SIGKILL after [`STOP_GRACE`]. Returns the pid it stopped.
pub fn stop(dir: &Path) -> anyhow::Result<Option<u32>> {
    let path = pid_file(dir);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let _ = std::fs::remove_file(&path);
    let Ok(pid) = text.trim().parse::<u32>() else {
        return Ok(None);
    };
    // The pid may have been reused by an unrelated process since.
    if !is_service(pid) {
        return Ok(None);
    }
    let target = Pid::from_raw(i32::try_from(pid).context("a pid out of range")?);
    let _ = kill(target, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while running(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if running(pid) {
        let _ = kill(target, Signal::SIGKILL);
    }
    Ok(Some(pid))
}

/// The service itself: `GET /health` answers `ok` with the version the
/// last build wrote and this process's pid; every request and a heartbeat
/// are logged to stdout (the log file). Ends on SIGTERM or when `owner`
/// is gone.
pub async fn serve(dir: &Path, owner: u32) -> anyhow::Result<()> {
    let version_file = repo(dir).join("dist").join("version");
    let version = std::fs::read_to_string(&version_file)
        .map(|v| v.trim().to_owned())
        .with_context(|| {
            format!(
                "demo-app is not built: {} is missing (its build step ./build.sh writes it)",
                version_file.display()
            )
        })?;
    let message = std::fs::read_to_string(repo(dir).join("message.txt")).unwrap_or_default();
    let listener = bind().await?;
    let pid = std::process::id();
    log(
        "INFO",
        &format!(
            "demo-app {version} (pid {pid}) listening on http://{ADDRESS}; SECRET_KEY fingerprint {}",
            secret_fingerprint(&env_file(dir))
        ),
    );
    let served = Arc::new(AtomicU64::new(0));
    let health = format!("ok: demo-app {version} (pid {pid})\n");
    let home = format!("demo-app {version}\n\n{message}");
    let app = axum::Router::new()
        .route("/health", axum::routing::get(move || async move { health }))
        .route("/", axum::routing::get(move || async move { home }))
        .layer(axum::middleware::from_fn({
            let served = served.clone();
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let served = served.clone();
                async move {
                    let line = format!("{} {}", req.method(), req.uri().path());
                    let res = next.run(req).await;
                    served.fetch_add(1, Ordering::Relaxed);
                    log("INFO", &format!("{line} → {}", res.status().as_u16()));
                    res
                }
            }
        }));
    let started = Instant::now();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut beat = tokio::time::interval(WATCH);
    let watch = async {
        let mut looks = 0u64;
        loop {
            tokio::select! {
                _ = term.recv() => return "SIGTERM: stopping".to_owned(),
                _ = beat.tick() => {}
            }
            if !running(owner) {
                return format!("opsdeck demo (pid {owner}) stopped; demo-app stops too");
            }
            looks += 1;
            if looks % HEARTBEAT_EVERY != 0 {
                continue;
            }
            log(
                "INFO",
                &format!(
                    "heartbeat: {version} up {}s, {} requests served",
                    started.elapsed().as_secs(),
                    served.load(Ordering::Relaxed)
                ),
            );
        }
    };
    tokio::select! {
        served = axum::serve(listener, app) => served.context("demo-app stopped serving")?,
        why = watch => log("INFO", &why),
    }
    Ok(())
}

/// Listens on [`ADDRESS`]; while the demo-app being replaced (or one whose
/// demo just stopped) still holds it, tries again for a few seconds.
async fn bind() -> anyhow::Result<tokio::net::TcpListener> {
    let started = Instant::now();
    loop {
        match tokio::net::TcpListener::bind(ADDRESS).await {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse && started.elapsed() < STOP_GRACE =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            bound => return bound.with_context(|| format!("demo-app cannot listen on {ADDRESS}")),
        }
    }
}

/// One log line: UTC time, level, message (stdout is the log file).
fn log(level: &str, message: &str) {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    println!("{now} {level} {message}");
}

/// The first 12 hex digits of SECRET_KEY's SHA-256 (never the value), so
/// a rotation shows in the log at the next restart.
fn secret_fingerprint(env_file: &Path) -> String {
    let text = std::fs::read_to_string(env_file).unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("SECRET_KEY="))
        .map(|value| hex::encode(sha2::Sha256::digest(value.trim()))[..12].to_owned())
        .unwrap_or_else(|| "(not set)".to_owned())
}

fn open_log(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = log_file(dir);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Whether `pid` runs (a zombie does not: it has exited, unreaped).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the command name, which may hold spaces.
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// Whether `pid` is a running demo service (not a reused pid).
fn is_service(pid: u32) -> bool {
    running(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmd| cmd.split(|&b| b == 0).any(|arg| arg == b"demo-service"))
}

/// A plain HTTP/1.0 GET on loopback; the body of a 200 answer.
fn ask(address: &str, path: &str) -> anyhow::Result<String> {
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    anyhow::ensure!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "it answered {}",
        head.lines().next().unwrap_or("nothing")
    );
    Ok(body.to_owned())
}
