//! A real headless Chromium, driven over WebDriver by `chromedriver`
//! (Debian's `chromium` + `chromium-driver`), for tests that must see what
//! a user sees: CSP, htmx, confirm dialogs, live output.
//!
//! Use: `let Some(browser) = Browser::start().await else { return };`
//! (None = skipped because Chromium is missing; under `CI=true` that is a
//! failure). Dropping it ends the browser and the driver.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::free_port;

pub struct Browser {
    driver: Child,
    /// `http://127.0.0.1:<port>/session/<id>`
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

impl Browser {
    pub async fn start() -> Option<Browser> {
        Browser::launch(&[]).await
    }

    /// A browser with JavaScript turned off, as some users (and broken
    /// networks that lose a script) have it.
    pub async fn without_javascript() -> Option<Browser> {
        Browser::launch(&["--blink-settings=scriptEnabled=false"]).await
    }

    async fn launch(extra: &[&str]) -> Option<Browser> {
        if !std::path::Path::new(CHROMIUM).exists() || !std::path::Path::new(CHROMEDRIVER).exists()
        {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and Chromium is missing: apt-get install chromium chromium-driver"
            );
            eprintln!("skipped: {CHROMIUM} or {CHROMEDRIVER} is missing");
            return None;
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        // The driver answers /status once it listens.
        let mut ready = false;
        for _ in 0..200 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "chromedriver did not start");
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1200,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                // Without the background-networking flags Chromium floods
                // a closed network with refused connections.
                "args": args,
            },
        }}});
        let res: Value = http
            .post(format!("{base}/session"))
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
        Some(Browser {
            driver,
            session: format!("{base}/session/{id}"),
            http,
            _profile: profile,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res: Value = req.send().await.unwrap().json().await.unwrap();
        res["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Sets a cookie for the current page's site.
    pub async fn set_cookie(&self, name: &str, value: &str) {
        self.post(
            "/cookie",
            json!({"cookie": {"name": name, "value": value, "path": "/", "httpOnly": true}}),
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Waits until `script` returns something truthy; returns it. The
    /// deadline is generous: it only stops a broken test from hanging.
    pub async fn until(&self, script: &str) -> Value {
        for _ in 0..600 {
            let value = self.js(script, json!([])).await;
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page never satisfied: {script}");
    }

    /// The WebDriver id of the first element matching `css`.
    async fn element(&self, css: &str) -> String {
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string()
    }

    /// Clicks the element matching `css` as a user would; a click the
    /// browser refuses (the element was just replaced by a swap, or moved
    /// under something else while the page settled) is tried again, and
    /// fails the test with the browser's reason if it keeps failing.
    pub async fn click(&self, css: &str) {
        let mut refused = Value::Null;
        for _ in 0..40 {
            let id = self.element(css).await;
            refused = self.post(&format!("/element/{id}/click"), json!({})).await;
            if refused.get("error").is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} failed: {refused}");
    }

    /// Types `text` into the field matching `css`, as a user would.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        let body = self.element("body").await;
        let text = self.get(&format!("/element/{body}/text")).await;
        text.as_str().unwrap_or_default().to_string()
    }

    /// The text of the open alert/confirm dialog (waits for it to open).
    pub async fn dialog(&self) -> String {
        for _ in 0..200 {
            if let Some(text) = self.get("/alert/text").await.as_str() {
                return text.to_string();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no dialog opened");
    }

    pub async fn accept_dialog(&self) {
        self.post("/alert/accept", json!({})).await;
    }

    pub async fn dismiss_dialog(&self) {
        self.post("/alert/dismiss", json!({})).await;
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// How far the page scrolls sideways, in CSS pixels: more than 0 means
    /// something is wider than the window.
    pub async fn sideways_overflow(&self) -> i64 {
        let overflow = self
            .js(
                "return document.documentElement.scrollWidth - window.innerWidth",
                json!([]),
            )
            .await;
        overflow.as_i64().unwrap_or(i64::MAX)
    }

    /// Makes pages see `prefers-color-scheme: dark` (or light), as a
    /// reader whose system is dark does; it lasts across navigations.
    pub async fn prefer_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.post(
            "/goog/cdp/execute",
            json!({"cmd": "Emulation.setEmulatedMedia", "params": {
                "features": [{"name": "prefers-color-scheme", "value": scheme}],
            }}),
        )
        .await;
    }

    /// The console messages since the last call (CSP violations land here).
    pub async fn console(&self) -> Vec<String> {
        let logs = self.post("/se/log", json!({"type": "browser"})).await;
        logs.as_array()
            .into_iter()
            .flatten()
            .map(|l| format!("{} {}", l["level"], l["message"]))
            .collect()
    }

    /// Saves a PNG screenshot to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let png = self.get("/screenshot").await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Deleting the session ends Chromium (killing only the driver would
        // orphan it); a plain blocking request, as Drop cannot await.
        use std::io::{Read, Write};
        let Some((authority, path)) = self
            .session
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once('/'))
        else {
            return;
        };
        if let Ok(mut conn) = std::net::TcpStream::connect(authority) {
            let _ = write!(
                conn,
                "DELETE /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
            );
            // The driver answers once the session is gone; it may keep the
            // connection open afterwards, so read the answer, not to the end.
            let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(30)));
            let _ = conn.read(&mut [0u8; 1024]);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
