//! A real Chromium, driven over WebDriver (chromedriver), signs in through
//! the provider's own sign-in page and lands on the dashboard showing the
//! user's name and role.

use std::time::Duration;

use crate::flow::{Pair, ready};
use crate::oidc;
use crate::support::browser::Browser;

#[tokio::test]
async fn chromium_signs_in_through_the_provider_and_sees_the_dashboard() {
    if !oidc::available() {
        return;
    }
    let pair = Pair::start().await;
    ready(&pair.app).await;
    let Some(browser) = Browser::start().await else {
        return;
    };

    browser.goto(&format!("{}/auth/login", pair.app.url)).await;
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
