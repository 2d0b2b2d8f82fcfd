//! The HTTP health check after a restart: the app's `health.url` must answer
//! 2xx (and contain `health.expect` when set) within `health.timeout`;
//! retried with backoff because an app needs a moment to listen.

use std::time::Duration;

use crate::config::Health;
use crate::{Error, Result};

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(2);
/// One request never waits longer than this, so a hung app still leaves
/// time for retries.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the attempt at the deadline may take.
const LAST_ATTEMPT: Duration = Duration::from_secs(1);
/// Only the start of the body is searched for `expect`.
const MAX_BODY: usize = 64 * 1024;

/// A passed health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthy {
    pub status: u16,
    pub attempts: u32,
}

/// Asks `health.url` until it answers well or `health.timeout` runs out.
pub async fn check(health: &Health) -> Result<Healthy> {
    let client = reqwest::Client::builder()
        // A redirect is an answer to report, not to follow (a login page is
        // not health).
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Internal(anyhow::anyhow!("building the HTTP client: {e}")))?;
    let started = tokio::time::Instant::now();
    let deadline = started + health.timeout;
    let mut pause = FIRST_RETRY;
    let mut attempts = 0;
    loop {
        attempts += 1;
        // The last attempt, at the deadline, still gets a moment to answer.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let wait = left.clamp(LAST_ATTEMPT, REQUEST_TIMEOUT);
        let problem = match ask(&client, health, wait).await {
            Ok(status) => return Ok(Healthy { status, attempts }),
            Err(problem) => problem,
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(Error::Unavailable(format!(
                "health check {} failed {attempts} times in {:.1}s; last: {problem}",
                health.url,
                (now - started).as_secs_f32()
            )));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(LONGEST_RETRY);
    }
}

/// One attempt; the error is what went wrong, in a phrase.
async fn ask(client: &reqwest::Client, health: &Health, timeout: Duration) -> Result<u16, String> {
    let mut response = client
        .get(&health.url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("it answered {status}"));
    }
    let Some(expect) = &health.expect else {
        return Ok(status.as_u16());
    };
    let mut body = Vec::new();
    while body.len() < MAX_BODY {
        match response.chunk().await.map_err(|e| describe(&e))? {
            Some(chunk) => body.extend_from_slice(&chunk),
            None => break,
        }
    }
    if String::from_utf8_lossy(&body).contains(expect.as_str()) {
        Ok(status.as_u16())
    } else {
        Err(format!(
            "it answered {status} but the body does not contain {expect:?}"
        ))
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "no answer in time".into()
    } else if error.is_connect() {
        "nothing answers there (connection refused or unreachable)".into()
    } else {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        text
    }
}
