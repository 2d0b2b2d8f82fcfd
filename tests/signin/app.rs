//! An opsdeck server of the test's own: the library router on a free
//! loopback port, with a config and a data directory in a tempdir.

use std::net::SocketAddr;

use opsdeck::Context;
use opsdeck::config::Config;

pub struct App {
    pub url: String,
    pub ctx: Context,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl App {
    /// Serves opsdeck with `[server]` filled in and `extra` appended
    /// (`[auth]`, `[roles]`, …). `public_url` defaults to the real address.
    pub async fn start(extra: &str) -> App {
        App::start_with_public_url(extra, None).await
    }

    pub async fn start_with_public_url(extra: &str, public_url: Option<&str>) -> App {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let text = format!(
            "[server]\nlisten = \"{addr}\"\npublic_url = \"{}\"\ndata_dir = \"{}\"\n\n{extra}\n",
            public_url.unwrap_or(&url),
            dir.path().display()
        );
        let path = dir.path().join("opsdeck.toml");
        std::fs::write(&path, &text).unwrap();
        let config = Config::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"));
        let ctx = Context::start(config).await.unwrap();
        let router = opsdeck::web::router(ctx.clone());
        let server = tokio::spawn(async move {
            axum::serve(
                opsdeck::web::listen(listener),
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        App {
            url,
            ctx,
            _dir: dir,
            server,
        }
    }

    /// Audit rows as `(actor, action, outcome, detail)`, oldest first.
    pub async fn audit(&self) -> Vec<(String, String, String, String)> {
        sqlx::query_as("SELECT actor, action, outcome, detail FROM audit_events ORDER BY id")
            .fetch_all(&self.ctx.db)
            .await
            .unwrap()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A client that shows redirects instead of following them, so tests see
/// each hop (and its cookies) as a browser would receive it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` part of a `Set-Cookie` header, and the whole header.
pub fn set_cookie(res: &reqwest::Response) -> Option<(String, String)> {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("opsdeck_session="))
        .map(|v| (v.split(';').next().unwrap_or("").to_string(), v.to_string()))
}

/// A page's HTML with askama's escapes undone, so tests can look for the
/// sentences a user reads.
pub fn readable(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `GET /auth/login` as a user reads it (status 200 asserted).
pub async fn sign_in_page(app: &App) -> String {
    let res = client()
        .get(format!("{}/auth/login?next=/apps/x", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    readable(&res.text().await.unwrap())
}
