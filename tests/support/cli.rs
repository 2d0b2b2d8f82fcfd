//! Runs the real `opsdeck` binary against a config and a data directory in a
//! temp dir of the test's own.

#![allow(dead_code)] // each test file uses part of this

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use super::free_port;

pub const BIN: &str = env!("CARGO_BIN_EXE_opsdeck");

pub struct Instance {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub port: u16,
}

impl Instance {
    /// A config listening on a free loopback port; `extra` is appended.
    pub fn new(extra: &str) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("opsdeck.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\ndata_dir = {:?}\n{extra}",
                dir.path().join("data").display().to_string()
            ),
        )
        .unwrap();
        Instance { dir, config, port }
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("data").join("opsdeck.db")
    }

    /// `opsdeck <args> --config <this config>`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        let config = self.config.to_str().unwrap();
        all.extend(["--config", config]);
        run(&all)
    }

    /// `opsdeck token create`; returns the token it printed.
    pub fn token(&self, name: &str, role: &str) -> String {
        let out = self.run(&["token", "create", "--name", name, "--role", role]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    }

    /// Starts `opsdeck serve` and waits until /healthz answers.
    pub async fn serve(&self) -> Server {
        self.serve_with(&[], Stdio::null(), Stdio::piped()).await
    }

    /// `serve` with extra environment variables and where its output goes.
    pub async fn serve_with(&self, env: &[(&str, &str)], stdout: Stdio, stderr: Stdio) -> Server {
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .envs(env.iter().copied())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            url: format!("http://127.0.0.1:{}", self.port),
        };
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", server.url)).send().await {
                if r.status().is_success() {
                    return server;
                }
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(stderr) = server.child.stderr.as_mut() {
                    std::io::Read::read_to_string(stderr, &mut err).unwrap();
                }
                panic!("opsdeck serve exited with {status}: {err}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// A connection to the database that bypasses opsdeck (to tamper with it).
    pub async fn sqlite(&self) -> sqlx::SqlitePool {
        sqlx::SqlitePool::connect(&format!("sqlite://{}", self.database().display()))
            .await
            .unwrap()
    }
}

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Waits until the server dies on its own (at a crash point it sends
    /// itself SIGKILL); the signal that ended it.
    pub async fn death_signal(mut self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        tokio::task::spawn_blocking(move || self.child.wait().unwrap().signal())
            .await
            .unwrap()
    }

    /// SIGTERM, then the exit status and everything it wrote to stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        let out = child.wait_with_output().unwrap();
        (out.status, text(&out.stderr))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET <url>/api/jobs/{job}` with `token`: the job as JSON.
pub async fn job(url: &str, token: &str, job: i64) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{url}/api/jobs/{job}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `GET <url>/api/jobs/{job}/output` with `token`: what the job printed.
pub async fn job_output(url: &str, token: &str, job: i64) -> String {
    reqwest::Client::new()
        .get(format!("{url}/api/jobs/{job}/output"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Polls `GET <url>/api/jobs/{job}` with `token` until the job ends; its
/// final state.
pub async fn job_end(url: &str, token: &str, id: i64) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let body = job(url, token, id).await;
        let state = body["state"].as_str().unwrap().to_string();
        if !matches!(state.as_str(), "queued" | "running") {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} did not end"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
