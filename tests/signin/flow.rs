//! Walking a sign-in through opsdeck and the OpenID provider the way a
//! browser does: each redirect by hand, the provider's cookies in a jar.

use std::collections::BTreeMap;

use crate::app::{App, client, set_cookie, sign_in_page};
use crate::oidc::{CLIENT_SECRET, Provider, gitea_config};
use crate::support::free_port;

/// An opsdeck and a provider that agree on everything (the happy setup).
pub struct Pair {
    pub app: App,
    pub provider: Provider,
    _secret_dir: tempfile::TempDir,
}

impl Pair {
    pub async fn start() -> Pair {
        Pair::start_with(|issuer| (issuer.to_string(), CLIENT_SECRET.to_string())).await
    }

    /// `adjust(issuer)` → `(gitea_url, client secret)` opsdeck is given.
    pub async fn start_with(adjust: impl Fn(&str) -> (String, String)) -> Pair {
        let port = free_port();
        let issuer = format!("http://127.0.0.1:{port}/");
        let (gitea_url, secret) = adjust(&issuer);
        let secret_dir = tempfile::tempdir().unwrap();
        let app = App::start(&gitea_config(secret_dir.path(), &gitea_url, &secret)).await;
        let provider = Provider::start(port, &format!("{}/auth/callback", app.url));
        Pair {
            app,
            provider,
            _secret_dir: secret_dir,
        }
    }
}

/// The sign-in page's text once opsdeck has stopped "contacting Gitea",
/// whether that worked or not. Polls: discovery runs in the background.
pub async fn settled_sign_in_page(app: &App) -> String {
    for _ in 0..300 {
        let body = sign_in_page(app).await;
        if !body.contains("opsdeck is contacting Gitea") {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("opsdeck never finished contacting Gitea");
}

/// Waits until Gitea sign-in is ready (background discovery succeeded).
pub async fn ready(app: &App) {
    for _ in 0..600 {
        if settled_sign_in_page(app)
            .await
            .contains("Sign in with your team's Gitea account")
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "Gitea sign-in never became ready: {}",
        settled_sign_in_page(app).await
    );
}

/// `GET /auth/gitea`: the provider authorization URL opsdeck sends us to,
/// and the `Cookie` header of the browser that asked (the sign-in cookie
/// opsdeck set with the redirect, if any).
pub async fn authorize_url(app: &App) -> (String, String) {
    let res = client()
        .get(format!("{}/auth/gitea?next=/apps", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .collect::<Vec<_>>()
        .join("; ");
    let url = res.headers()["location"].to_str().unwrap().to_string();
    (url, cookie)
}

/// `GET url` from the browser whose `Cookie` header is `cookie`.
pub async fn in_browser(cookie: &str, url: &str) -> reqwest::Response {
    client()
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// Follows the provider's redirects from `url` (signing in as `login`)
/// until it sends the browser back to opsdeck; returns that callback URL.
pub async fn through_provider(provider: &Provider, url: &str, login: &str) -> String {
    let base = format!("http://127.0.0.1:{}", provider.port);
    let mut url = format!("{url}&login_hint={login}");
    let mut jar: BTreeMap<String, String> = BTreeMap::new();
    for _ in 0..10 {
        let cookies: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let res = client()
            .get(&url)
            .header("cookie", cookies.join("; "))
            .send()
            .await
            .unwrap();
        for c in res.headers().get_all("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                jar.insert(k.to_string(), v.to_string());
            }
        }
        let status = res.status();
        let Some(location) = res.headers().get("location") else {
            panic!(
                "the provider stopped at {url}: {status} {}",
                res.text().await.unwrap()
            );
        };
        let location = location.to_str().unwrap();
        url = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location.to_string()
        };
        if !url.starts_with(&base) {
            return url;
        }
    }
    panic!("the provider redirected more than 10 times");
}

/// A whole sign-in as `login`: opsdeck's answer to the callback.
pub async fn sign_in(pair: &Pair, login: &str) -> reqwest::Response {
    let (start, cookie) = authorize_url(&pair.app).await;
    let back = through_provider(&pair.provider, &start, login).await;
    assert!(
        back.starts_with(&format!("{}/auth/callback?", pair.app.url)),
        "{back}"
    );
    in_browser(&cookie, &back).await
}

/// A whole sign-in that must succeed: the session cookie.
pub async fn signed_in_cookie(pair: &Pair, login: &str) -> String {
    let res = sign_in(pair, login).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert_eq!(res.headers()["location"], "/apps");
    set_cookie(&res).expect("a session cookie").0
}
