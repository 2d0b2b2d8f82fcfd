//! The small web app deploy tests ship: an HTTP service under a real unit
//! (in the systemd sandbox), deployed from a real git repository whose
//! commits can fail their build (`BROKEN_BUILD`) or their health check
//! (`UNHEALTHY`).

use super::sandbox::sh;
use std::time::Duration;

use opsdeck::auth::{Actor, Role, Via};
use opsdeck::jobs::State;
use opsdeck::ops::deploy;

use super::repos::{Repos, sh_git};
use super::server::Server;

/// Reads `VERSION` once at start (like an app loading its code), answers
/// every GET with it, and answers 500 when the commit has an `UNHEALTHY` file.
pub const SERVER: &str = r#"import http.server, pathlib, sys
here = pathlib.Path(__file__).parent
version = (here / "VERSION").read_text().strip()
status = 500 if (here / "UNHEALTHY").exists() else 200
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (version + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

pub const BUILD: &str = "set -e
if [ -e BROKEN_BUILD ]; then echo 'build failed: syntax error in app.js' >&2; exit 1; fi
echo \"built $(cat VERSION)\" > build.out
";

/// The owner who clicks Deploy.
pub fn ada() -> Actor {
    Actor {
        login: "ada".into(),
        role: Role::Owner,
        via: Via::Session,
        remote: "127.0.0.1".into(),
    }
}

/// What the service answers now.
pub async fn answer(port: u16) -> String {
    let body = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.trim().to_owned()
}

/// The unit was just started; it listens a moment later.
pub async fn answer_when_up(port: u16) -> String {
    let health = opsdeck::config::Health {
        name: None,
        url: format!("http://127.0.0.1:{port}/"),
        expect: None,
        timeout: Duration::from_secs(30),
        interval: None,
    };
    opsdeck::host::probe::check(&health).await.unwrap();
    answer(port).await
}

/// The web app at v1: its repository, its unit and an opsdeck that deploys it.
pub struct WebApp {
    pub repos: Repos,
    pub server: super::server::Server,
    pub port: u16,
    pub v1: String,
    /// `releases` strategy: where `releases/`, `shared/` and `current` live.
    pub root: Option<tempfile::TempDir>,
}

impl WebApp {
    /// Deployed with the `checkout` strategy: the unit runs from the work
    /// tree, started at v1.
    pub async fn checkout() -> WebApp {
        let (repos, v1) = repository();
        let port = super::free_port();
        let server = super::server::start(&checkout_setup(&repos, port)).await;
        assert_eq!(answer_when_up(port).await, "v1");
        WebApp {
            repos,
            server,
            port,
            v1,
            root: None,
        }
    }

    /// Deployed with the `releases` strategy, keeping `keep` good releases
    /// and `.env` shared; nothing is deployed yet (the unit is stopped).
    pub async fn releases(keep: usize) -> WebApp {
        let (repos, v1) = repository();
        let root = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let config = releases_setup(&repos, root.path(), port, keep);
        let server = super::server::start(&config).await;
        WebApp {
            repos,
            server,
            port,
            v1,
            root: Some(root),
        }
    }

    /// The release directories on disk, oldest first.
    pub fn release_dirs(&self) -> Vec<String> {
        let root = self.root.as_ref().expect("a releases app");
        let mut names: Vec<String> = std::fs::read_dir(root.path().join("releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The release `current` points to.
    pub fn current(&self) -> String {
        let root = self.root.as_ref().expect("a releases app");
        let target = std::fs::read_link(root.path().join("current")).unwrap();
        target.file_name().unwrap().to_string_lossy().into_owned()
    }
}

/// Installs and starts the unit running the work tree of `repos` (the
/// `checkout` strategy); its `[[app]]` block.
pub fn checkout_setup(repos: &Repos, port: u16) -> String {
    install_unit(&repos.app, port);
    sh(&["systemctl", "start", "web.service"]);
    format!(
        "[[app]]\nname = \"web\"\nrepo = \"{}\"\n{}",
        repos.app.display(),
        common(port)
    )
}

/// Prepares `root` (a `shared/.env`) and the unit for a `releases` app;
/// its `[[app]]` block.
pub fn releases_setup(repos: &Repos, root: &std::path::Path, port: u16, keep: usize) -> String {
    std::fs::create_dir(root.join("shared")).unwrap();
    std::fs::write(root.join("shared/.env"), "GREETING=hello\n").unwrap();
    install_unit(&root.join("current"), port);
    format!(
        "[[app]]\nname = \"web\"\nrepo = \"{}\"\nstrategy = \"releases\"\npath = \"{}\"\nkeep = {keep}\nshared = [\".env\"]\n{}",
        repos.app.display(),
        root.display(),
        common(port)
    )
}

/// A repository whose first commit is the app at v1.
pub fn repository() -> (Repos, String) {
    let repos = Repos::new();
    let v1 = repos.push_files(
        &[
            ("server.py", Some(SERVER)),
            ("build.sh", Some(BUILD)),
            ("VERSION", Some("v1")),
        ],
        "A web app",
    );
    sh_git(&repos.app, &["pull", "-q"]);
    (repos, v1)
}

/// `web.service`, running `server.py` from `dir`. Inside the sandbox,
/// /run/systemd/system is the sandbox's own.
fn install_unit(dir: &std::path::Path, port: u16) {
    std::fs::write(
        "/run/systemd/system/web.service",
        format!(
            "[Service]\nExecStart=/usr/bin/python3 {}/server.py {port}\n",
            dir.display()
        ),
    )
    .unwrap();
    sh(&["systemctl", "daemon-reload"]);
}

/// The config keys both strategies share.
fn common(port: u16) -> String {
    format!(
        r#"units = ["web.service"]
health = {{ url = "http://127.0.0.1:{port}/", expect = "v", timeout = "3s" }}
build = [ {{ run = ["sh", "build.sh"] }} ]
"#
    )
}

/// Pushes v4, whose build fails, and deploys it (after v2 went live): the
/// job fails at the build step, naming it, and v2 still answers on `port`.
pub async fn deploy_a_broken_build(repos: &Repos, server: &Server, port: u16) {
    repos.push_files(
        &[
            ("VERSION", Some("v4")),
            ("UNHEALTHY", None),
            ("BROKEN_BUILD", Some("yes")),
        ],
        "Version 4",
    );
    let ctx = &server.ctx;
    let job = deploy::request(ctx, &ada(), "web", "main").await.unwrap();
    assert_eq!(server.finished(job).await, State::Failed);
    let summary = ctx.jobs.job(job).await.unwrap().summary.unwrap();
    assert!(
        summary.starts_with("step \"Build: sh build.sh\" failed"),
        "{summary}"
    );
    assert_eq!(answer(port).await, "v2");
}
