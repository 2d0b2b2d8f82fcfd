//! A real Chromium, driven over WebDriver (chromedriver, plain JSON calls),
//! signs in through the provider's own sign-in page and lands on the
//! dashboard showing the user's name and role.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::flow::{Pair, ready};
use crate::oidc::{self, free_port};

/// chromedriver and its session; both end when dropped.
struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn installed(program: &str) -> bool {
    let found = Command::new("which")
        .arg(program)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let why =
            format!("`{program}` is not installed (apt-get install -y chromium chromium-driver)");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the browser test cannot run: {why}");
        }
        eprintln!("\n*** SKIPPED: the browser test cannot run: {why} ***\n");
    }
    found
}

impl Browser {
    async fn start(profile: &std::path::Path) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs");
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if http.get(format!("{root}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,800",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let res: Value = http
            .post(format!("{root}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {res}"));
        Browser {
            driver,
            base: format!("{root}/session/{id}"),
            http,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let req = self.http.request(method, format!("{}{path}", self.base));
        let req = if body.is_null() { req } else { req.json(&body) };
        let res: Value = req.send().await.unwrap().json().await.unwrap();
        res["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    async fn url(&self) -> String {
        let v = self.call(reqwest::Method::GET, "/url", Value::Null).await;
        v.as_str().unwrap_or_default().to_string()
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    async fn click(&self, css: &str) {
        let el = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            json!({}),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let el = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn text(&self) -> String {
        let body = self.element("body").await;
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{body}/text"),
                Value::Null,
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    async fn screenshot(&self, file: &std::path::Path) {
        let v = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(file, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test]
async fn chromium_signs_in_through_the_provider_and_sees_the_dashboard() {
    if !oidc::available() || !installed("chromium") || !installed("chromedriver") {
        return;
    }
    let pair = Pair::start().await;
    ready(&pair.app).await;
    let profile = tempfile::tempdir().unwrap();
    let browser = Browser::start(profile.path()).await;

    browser.go(&format!("{}/auth/login", pair.app.url)).await;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    browser.screenshot(&shots.join("signin-page.png")).await;
    browser.click("#sign-in-gitea").await;
    // The provider's own sign-in page, as Gitea would show it.
    assert!(browser.text().await.contains("Sign in to Gitea"));
    browser.type_into("#user_name", "ann").await;
    browser.click("#sign-in").await;

    let home = format!("{}/", pair.app.url);
    let mut url = browser.url().await;
    for _ in 0..200 {
        if url == home {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        url = browser.url().await;
    }
    assert_eq!(url, home);
    let text = browser.text().await;
    browser
        .screenshot(&shots.join("signin-dashboard.png"))
        .await;
    assert!(text.contains("ann"), "{text}");
    assert!(text.contains("owner"), "{text}");
    assert!(text.contains("Sign out"), "{text}");
}
