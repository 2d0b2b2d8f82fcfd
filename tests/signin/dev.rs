//! The dev sign-in (`auth.dev_login = true`), sign-out, session cookies.

use opsdeck::auth::{Role, session};

use crate::app::{App, client, set_cookie};

const DEV: &str = "[auth]\ndev_login = true\n";

/// Signs in through the dev form; returns the `name=value` cookie.
pub async fn dev_sign_in(app: &App, login: &str, role: &str) -> String {
    let res = client()
        .post(format!("{}/auth/dev", app.url))
        .header("origin", &app.url)
        .form(&[("login", login), ("role", role), ("next", "/apps/x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    assert_eq!(res.headers()["location"], "/apps/x");
    set_cookie(&res).expect("a session cookie").0
}

fn value(cookie: &str) -> &str {
    cookie.split_once('=').unwrap().1
}

/// The live session behind a `name=value` cookie, as the middleware sees it.
async fn session_of(app: &App, cookie: &str) -> Option<session::Session> {
    app.ctx.sessions.lookup(value(cookie)).await.unwrap()
}

#[tokio::test]
async fn dev_sign_in_creates_a_session_with_safe_cookie_flags() {
    let app = App::start(DEV).await;
    let res = client()
        .post(format!("{}/auth/dev", app.url))
        .header("origin", &app.url)
        .form(&[
            ("login", "ann"),
            ("role", "admin"),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/", "foreign next is ignored");
    let (cookie, header) = set_cookie(&res).unwrap();
    assert!(cookie.starts_with("opsdeck_session="), "{header}");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(header.contains(flag), "{flag} missing in {header}");
    }
    assert!(!header.contains("Secure"), "no Secure on http: {header}");

    let live = session_of(&app, &cookie)
        .await
        .expect("the session is live");
    assert_eq!((live.login.as_str(), live.role), ("ann", Role::Admin));
    assert_eq!(live.csrf.len(), 64);
    // Only the hash is stored: the cookie value appears nowhere in the table.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT id_hash FROM sessions")
        .fetch_all(&app.ctx.db)
        .await
        .unwrap();
    assert!(stored.iter().all(|(h,)| h != value(&cookie)));
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|(who, action, outcome, _)| who == "ann" && action == "signin" && outcome == "ok")
    );
}

#[tokio::test]
async fn https_public_url_gets_secure_host_prefixed_cookie() {
    let app = App::start_with_public_url(DEV, Some("https://ops.example.org")).await;
    let res = client()
        .post(format!("{}/auth/dev", app.url))
        .header("origin", "https://ops.example.org")
        .form(&[("login", "ann"), ("role", "viewer")])
        .send()
        .await
        .unwrap();
    let (cookie, header) = set_cookie(&res).unwrap();
    assert!(cookie.starts_with("__Host-opsdeck_session="), "{header}");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
        assert!(header.contains(flag), "{flag} missing in {header}");
    }
    assert!(
        !header.contains("Domain"),
        "__Host- forbids Domain: {header}"
    );
}

#[tokio::test]
async fn dev_sign_in_is_off_unless_enabled_and_validates_input() {
    let app = App::start("").await;
    let res = client()
        .post(format!("{}/auth/dev", app.url))
        .header("origin", &app.url)
        .form(&[("login", "ann"), ("role", "owner")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(set_cookie(&res).is_none());

    let app = App::start(DEV).await;
    for (login, role) in [("ann", "god"), ("", "owner"), ("a b", "owner")] {
        let res = client()
            .post(format!("{}/auth/dev", app.url))
            .header("origin", &app.url)
            .form(&[("login", login), ("role", role)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{login:?} {role:?}");
        assert!(set_cookie(&res).is_none());
    }
}

#[tokio::test]
async fn sign_out_ends_the_session_and_needs_its_csrf_token() {
    let app = App::start(DEV).await;
    let cookie = dev_sign_in(&app, "ann", "operator").await;
    let live = session_of(&app, &cookie).await.unwrap();

    let res = client()
        .post(format!("{}/auth/logout", app.url))
        .header("origin", &app.url)
        .header("cookie", &cookie)
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(session_of(&app, &cookie).await.is_some());

    let res = client()
        .post(format!("{}/auth/logout", app.url))
        .header("origin", &app.url)
        .header("cookie", &cookie)
        .form(&[("csrf", live.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/auth/login");
    let (_, header) = set_cookie(&res).unwrap();
    assert!(header.contains("Max-Age=0"), "{header}");
    assert!(session_of(&app, &cookie).await.is_none());
    assert!(
        app.audit()
            .await
            .iter()
            .any(|(who, action, _, _)| who == "ann" && action == "signout")
    );
}

#[tokio::test]
async fn idle_and_absolute_expiry_end_sessions() {
    let app = App::start(DEV).await;
    let (idle, max) = session::lifetimes(&app.ctx.config.auth);
    assert_eq!(idle.as_secs(), 8 * 3600);
    assert_eq!(max.as_secs(), 7 * 24 * 3600);
    let idle_cookie = dev_sign_in(&app, "idle", "viewer").await;
    let old_cookie = dev_sign_in(&app, "old", "viewer").await;
    let hour = 3_600_000i64;
    // Move the clocks stored in the database instead of waiting: the idle
    // session was last seen 8 h + 1 min ago; the old one was created 7 days
    // ago but used a minute ago.
    sqlx::query("UPDATE sessions SET last_seen_at = last_seen_at - ? WHERE login = 'idle'")
        .bind(8 * hour + 60_000)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE sessions SET created_at = created_at - ?, last_seen_at = last_seen_at - 60000
         WHERE login = 'old'",
    )
    .bind(7 * 24 * hour)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    for cookie in [&idle_cookie, &old_cookie] {
        assert!(
            session_of(&app, cookie).await.is_none(),
            "{cookie} should have expired"
        );
    }
    // A session just short of both limits is live, and its use refreshes it.
    let fresh = dev_sign_in(&app, "fresh", "viewer").await;
    sqlx::query("UPDATE sessions SET last_seen_at = last_seen_at - ? WHERE login = 'fresh'")
        .bind(8 * hour - 60_000)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let live = session_of(&app, &fresh).await.unwrap();
    assert!(live.last_seen_at > live.created_at);
    assert!(session_of(&app, &fresh).await.is_some());
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_address() {
    let app = App::start(DEV).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let res = client()
            .post(format!("{}/auth/dev", app.url))
            .header("origin", &app.url)
            .form(&[("login", "ann"), ("role", "viewer")])
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            let body = res.text().await.unwrap();
            assert!(
                body.contains("Too many sign-in attempts from 127.0.0.1"),
                "{body}"
            );
        }
    }
    assert_eq!(&statuses[..10], &[303; 10]);
    assert_eq!(statuses[11], 429, "{statuses:?}");
}

#[tokio::test]
async fn a_session_revoked_behind_opsdecks_back_ends_at_its_next_idle_clock_write() {
    // Live sessions are kept in memory; a row changed by hand is seen when
    // the idle clock is next written: a tenth of the idle time, 1 s here.
    let app = App::start("[auth]\ndev_login = true\nsession_idle = \"10s\"\n").await;
    let cookie = dev_sign_in(&app, "ann", "operator").await;
    let dashboard = |cookie: String| {
        let url = format!("{}/", app.url);
        async move { crate::flow::in_browser(&cookie, &url).await.status() }
    };
    assert_eq!(dashboard(cookie.clone()).await, 200);
    sqlx::query("UPDATE sessions SET revoked_at = 1 WHERE login = 'ann'")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        dashboard(cookie.clone()).await,
        303,
        "sent to sign in again"
    );
    assert!(session_of(&app, &cookie).await.is_none());
}
