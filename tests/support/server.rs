//! Serves `opsdeck::web::router` on 127.0.0.1 with a config of the test's
//! own, exactly as `opsdeck serve` does (with the client address).

use std::net::SocketAddr;
use std::path::Path;

use opsdeck::Context;
use opsdeck::auth::Role;
use opsdeck::config::Config;
use opsdeck::jobs::{Followed, State};

/// Two apps for tests of the web shell: `rfc-app` (production) with an
/// action anyone from operator up may run and one for admins, and `books`
/// (staging, deploys from a repo) that only admins may view.
pub const TWO_APPS: &str = r#"
[[app]]
name = "rfc-app"
environment = "production"
host = "local"

[[app.action]]
name = "cleanup-sessions"
run = ["true"]
confirm = "Delete expired sessions of rfc-app?"

[[app.action]]
name = "reindex"
run = ["true"]
role = "admin"

[[app]]
name = "books"
environment = "staging"
permissions = { view = "admin" }
repo = "/srv/books"
branch = "release"
"#;

/// The body of a JSON response.
pub async fn json(res: reqwest::Response) -> serde_json::Value {
    res.json().await.unwrap()
}

pub struct Server {
    /// `http://127.0.0.1:<port>`, also the config's `server.public_url`.
    pub url: String,
    pub ctx: Context,
    pub dir: tempfile::TempDir,
}

/// Starts a server whose config is `[server]` (listen, public_url,
/// data_dir) followed by `rest` (apps, roles, …).
pub async fn start(rest: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}");
    let text = format!(
        "[server]\nlisten = \"{addr}\"\npublic_url = \"{url}\"\ndata_dir = \"{}\"\nmax_body_bytes = 4096\n\n{rest}",
        dir.path().join("data").display()
    );
    let config_path = dir.path().join("opsdeck.toml");
    std::fs::write(&config_path, &text).unwrap();
    let config = Config::parse(&text, Path::new(&config_path)).unwrap();
    let ctx = Context::start(config).await.unwrap();
    let app = opsdeck::web::router(ctx.clone());
    tokio::spawn(async move {
        axum::serve(
            opsdeck::web::listen(listener),
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Server { url, ctx, dir }
}

/// A server with the two apps of [`TWO_APPS`], the set-up of the API and
/// page tests.
pub async fn two_apps() -> Server {
    start(TWO_APPS).await
}

impl Server {
    pub async fn token(&self, name: &str, role: Role) -> String {
        opsdeck::auth::token::create(&self.ctx.db, name, role)
            .await
            .unwrap()
    }

    /// `GET path` as a browser with the `Cookie` header `cookie`.
    pub async fn browse(&self, path: &str, cookie: &str) -> reqwest::Response {
        client()
            .get(self.at(path))
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await
            .unwrap()
    }

    /// Signs `login` in as the sign-in flow does; the `Cookie` header value
    /// and the session's CSRF token.
    pub async fn session(&self, login: &str, role: Role) -> (String, String) {
        let (cookie, session) = self
            .ctx
            .sessions
            .create(opsdeck::auth::session::NewSession {
                login,
                role,
                groups: &[],
                remote: "127.0.0.1",
                user_agent: "tests",
            })
            .await
            .unwrap();
        (format!("opsdeck_session={cookie}"), session.csrf)
    }

    /// Follows job `id` until it ends; its final state.
    pub async fn finished(&self, id: i64) -> State {
        self.outcome(id).await.0
    }

    /// Follows job `id` until it ends; its final state and its output.
    pub async fn outcome(&self, id: i64) -> (State, String) {
        let mut follower = self.ctx.jobs.follow(id, 0).await.unwrap();
        let mut output = String::new();
        loop {
            match follower.next().await.unwrap() {
                Some(Followed::End(state)) => return (state, output),
                Some(Followed::Lines { lines, .. }) => {
                    for line in lines {
                        output.push_str(&line);
                        output.push('\n');
                    }
                }
                None => panic!("job {id}'s output ended without its end"),
            }
        }
    }

    /// How many jobs were ever requested.
    pub async fn job_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(&self.ctx.db)
            .await
            .unwrap()
    }

    /// Posts a page form to `path` as the browser of session `cookie`,
    /// `fields` after its CSRF token `csrf`.
    pub async fn post_form(
        &self,
        path: &str,
        (cookie, csrf): (&str, &str),
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![("csrf", csrf)];
        form.extend_from_slice(fields);
        client()
            .post(self.at(path))
            .header(reqwest::header::COOKIE, cookie)
            .header(reqwest::header::ORIGIN, &self.url)
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Posts `body` to the JSON API's `path` with token `token`.
    pub async fn post_json(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        client()
            .post(self.at(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The text of the page at `path`, as the browser of session `cookie`.
    pub async fn page(&self, path: &str, cookie: &str) -> String {
        self.browse(path, cookie).await.text().await.unwrap()
    }

    /// There are `n` audit rows of `action`, each `denied`, each detail
    /// holding `holds`.
    pub async fn assert_denied(&self, action: &str, n: usize, holds: &str) {
        let rows = self.audit_rows(action).await;
        assert_eq!(rows.len(), n, "{rows:?}");
        assert!(
            rows.iter()
                .all(|(outcome, detail)| outcome == "denied" && detail.contains(holds)),
            "{rows:?}"
        );
    }

    /// `(outcome, detail)` of every audit row of `action`, oldest first.
    pub async fn audit_rows(&self, action: &str) -> Vec<(String, String)> {
        sqlx::query_as("SELECT outcome, detail FROM audit_events WHERE action = ? ORDER BY id")
            .bind(action)
            .fetch_all(&self.ctx.db)
            .await
            .unwrap()
    }

    /// The detail of job `job`'s `job.request` audit row.
    pub async fn request_detail(&self, job: i64) -> String {
        sqlx::query_scalar(
            "SELECT detail FROM audit_events WHERE action = 'job.request' AND job_id = ?",
        )
        .bind(job)
        .fetch_one(&self.ctx.db)
        .await
        .unwrap()
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `GET path`, as anyone.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        client().get(self.at(path)).send().await.unwrap()
    }

    /// `GET path` with `Authorization: Bearer <token>`.
    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        client()
            .get(self.at(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// `res` is a 400 whose answer (the API's `error`, or the error page)
/// says `says`.
pub async fn assert_refused(res: reqwest::Response, says: &str) {
    assert_eq!(res.status(), 400, "{res:?}");
    let text = res.text().await.unwrap();
    let said = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) => json["error"].as_str().unwrap_or_default().to_owned(),
        Err(_) => text,
    };
    assert!(said.contains(says), "{says:?} is not in {said}");
}

/// The job a button's answer (`303 See Other` to `/jobs/{id}`) leads to.
pub fn job_of(res: &reqwest::Response) -> i64 {
    assert_eq!(res.status(), 303, "{res:?}");
    res.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .trim_start_matches("/jobs/")
        .parse()
        .unwrap()
}

/// A client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Runs opsdeck's migrations older than `version` on `db`: a database as
/// an earlier opsdeck left it, for tests of what an upgrade does to it.
pub async fn migrate_before(db: &sqlx::SqlitePool, version: i64) {
    sqlx::migrate::Migrator {
        migrations: opsdeck::db::MIGRATIONS
            .iter()
            .filter(|m| m.version < version)
            .cloned()
            .collect(),
        ..sqlx::migrate::Migrator::DEFAULT
    }
    .run(db)
    .await
    .unwrap();
}
