//! The sessions page: admins see who is signed in and end sessions; the
//! web middleware's CSRF check guards the revoke button.

use crate::app::{App, client, readable, sign_in_page};
use crate::dev::dev_sign_in;

/// The CSRF token a page renders into its forms.
fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf field")
        .to_string()
}

async fn get(app: &App, path: &str, cookie: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", app.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

async fn revoke(app: &App, id: i64, cookie: &str, csrf: Option<&str>) -> reqwest::Response {
    let form: Vec<(&str, &str)> = csrf.map(|c| ("csrf", c)).into_iter().collect();
    client()
        .post(format!("{}/sessions/{id}/revoke", app.url))
        .header("origin", &app.url)
        .header("cookie", cookie)
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_admin_lists_sessions_and_revokes_one_which_then_ends() {
    let app = App::start("[auth]\ndev_login = true\n").await;
    let admin = dev_sign_in(&app, "adele", "admin").await;
    let olly = dev_sign_in(&app, "olly", "operator").await;

    // The dashboard shows who is signed in.
    let home = get(&app, "/", &olly).await;
    assert_eq!(home.status(), 200);
    let home = home.text().await.unwrap();
    assert!(
        home.contains(">olly<") && home.contains(">operator<"),
        "{home}"
    );

    // An operator may not see the page; the refusal is audited.
    let res = get(&app, "/sessions", &olly).await;
    assert_eq!(res.status(), 403);
    assert!(
        app.audit()
            .await
            .iter()
            .any(|(who, action, outcome, _)| who == "olly"
                && action == "sessions"
                && outcome == "denied")
    );

    let page = get(&app, "/sessions", &admin).await;
    assert_eq!(page.status(), 200);
    let page = readable(&page.text().await.unwrap());
    assert!(
        page.contains(">adele<") && page.contains(">olly<"),
        "{page}"
    );
    let csrf = csrf_of(&page);

    let olly_id = app
        .ctx
        .sessions
        .list_active()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.login == "olly")
        .unwrap()
        .id;
    assert!(page.contains(&format!("/sessions/{olly_id}/revoke")));

    // Without the CSRF token, or with a wrong one, nothing happens.
    assert_eq!(revoke(&app, olly_id, &admin, None).await.status(), 403);
    assert_eq!(
        revoke(&app, olly_id, &admin, Some("0000")).await.status(),
        403
    );
    assert_eq!(get(&app, "/", &olly).await.status(), 200);

    let res = revoke(&app, olly_id, &admin, Some(&csrf)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/sessions");

    // Olly's next click goes to the sign-in page; the revoke is audited.
    let res = get(&app, "/", &olly).await;
    assert!(res.status().is_redirection(), "{}", res.status());
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/auth/login")
    );
    assert!(
        app.audit()
            .await
            .iter()
            .any(|(who, action, outcome, detail)| who == "adele"
                && action == "session.revoke"
                && outcome == "ok"
                && detail.contains("olly"))
    );
    let page = readable(&get(&app, "/sessions", &admin).await.text().await.unwrap());
    assert!(!page.contains(">olly<"), "{page}");

    // Revoking it again says there is no such session.
    assert_eq!(
        revoke(&app, olly_id, &admin, Some(&csrf)).await.status(),
        404
    );
}

#[tokio::test]
async fn the_sign_in_page_offers_the_dev_form_only_when_enabled() {
    let app = App::start("[auth]\ndev_login = true\n").await;
    let page = sign_in_page(&app).await;
    assert!(page.contains("action=\"/auth/dev\""), "{page}");
    assert!(page.contains("Gitea sign-in is off."), "{page}");
    assert!(page.contains("[auth] gitea_url is missing"), "{page}");

    let app = App::start("").await;
    let page = sign_in_page(&app).await;
    assert!(!page.contains("/auth/dev"), "{page}");
}
