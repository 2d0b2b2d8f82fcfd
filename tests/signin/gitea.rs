//! Gitea sign-in against a real OpenID provider configured like Gitea.

use opsdeck::auth::Role;

use crate::app::{App, client, readable, set_cookie};
use crate::flow::{
    Pair, authorize_url, in_browser, ready, settled_sign_in_page, sign_in, signed_in_cookie,
    through_provider,
};
use crate::oidc::{self, Provider, gitea_config};
use crate::support::free_port;

fn value(cookie: &str) -> &str {
    cookie.split_once('=').unwrap().1
}

async fn role_of(app: &App, cookie: &str) -> Option<Role> {
    app.ctx
        .sessions
        .lookup(value(cookie))
        .await
        .unwrap()
        .map(|s| s.role)
}

#[tokio::test]
async fn owner_via_a_team_and_operator_via_an_org() {
    if !oidc::available() {
        return;
    }
    let pair = Pair::start().await;
    ready(&pair.app).await;
    let ann = signed_in_cookie(&pair, "ann").await;
    assert_eq!(role_of(&pair.app, &ann).await, Some(Role::Owner));
    let olly = signed_in_cookie(&pair, "olly").await;
    assert_eq!(role_of(&pair.app, &olly).await, Some(Role::Operator));

    let audit = pair.app.audit().await;
    let ann_row = audit
        .iter()
        .find(|(who, action, outcome, _)| who == "ann" && action == "signin" && outcome == "ok")
        .expect("ann's sign-in is audited");
    assert!(ann_row.3.contains("wiggleverse:owners"), "{}", ann_row.3);
}

#[tokio::test]
async fn an_account_without_a_role_is_refused_and_audited() {
    if !oidc::available() {
        return;
    }
    let pair = Pair::start().await;
    ready(&pair.app).await;
    for (login, groups) in [("nobody", ""), ("eve", "elsewhere, elsewhere:devs")] {
        let res = sign_in(&pair, login).await;
        assert_eq!(res.status(), 403);
        assert!(set_cookie(&res).is_none());
        let body = res.text().await.unwrap();
        assert!(
            body.contains(&format!(
                "Your Gitea account <strong>{login}</strong> has no role on this dashboard; ask an owner to add you to <code>[roles]</code>"
            )),
            "{body}"
        );
        assert!(body.contains(&format!("user:{login}")), "{body}");
        assert!(body.contains(groups), "{body}");
    }
    let audit = pair.app.audit().await;
    for login in ["nobody", "eve"] {
        assert!(
            audit.iter().any(|(who, action, outcome, _)| who == login
                && action == "signin"
                && outcome == "denied"),
            "{audit:?}"
        );
    }
}

#[tokio::test]
async fn a_wrong_client_secret_is_named_on_the_sign_in_page() {
    if !oidc::available() {
        return;
    }
    let pair = Pair::start_with(|issuer| (issuer.to_string(), "not-the-secret".into())).await;
    ready(&pair.app).await;
    let res = sign_in(&pair, "ann").await;
    assert_eq!(res.status(), 502);
    assert!(set_cookie(&res).is_none());
    let body = readable(&res.text().await.unwrap());
    assert!(
        body.contains("Gitea refused opsdeck's client credentials"),
        "{body}"
    );
    assert!(body.contains("invalid_client"), "{body}");
    assert!(body.contains("client_secret_file"), "{body}");
    let audit = pair.app.audit().await;
    assert!(
        audit
            .iter()
            .any(|(_, action, outcome, detail)| action == "signin"
                && outcome == "failed"
                && detail.contains("invalid_client"))
    );
}

#[tokio::test]
async fn an_issuer_without_its_trailing_slash_is_named_with_both_strings() {
    if !oidc::available() {
        return;
    }
    // opsdeck configured without the slash Gitea publishes.
    let pair = Pair::start_with(|issuer| {
        (
            issuer.trim_end_matches('/').to_string(),
            oidc::CLIENT_SECRET.into(),
        )
    })
    .await;
    let body = settled_sign_in_page(&pair.app).await;
    let published = &pair.provider.issuer;
    let configured = published.trim_end_matches('/');
    assert!(body.contains("Gitea sign-in is unavailable"), "{body}");
    assert!(
        body.contains(&format!(
            "Gitea publishes the issuer \"{published}\", but gitea_url is \"{configured}\""
        )),
        "{body}"
    );

    // And the other way round: a provider publishing no slash, opsdeck
    // configured with one.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let with_slash = format!("http://127.0.0.1:{port}/");
    let app = App::start(&gitea_config(dir.path(), &with_slash, oidc::CLIENT_SECRET)).await;
    let _provider = Provider::start_with_issuer(
        port,
        &format!("{}/auth/callback", app.url),
        with_slash.trim_end_matches('/'),
    );
    let mut body = settled_sign_in_page(&app).await;
    for _ in 0..200 {
        if body.contains("issuer does not match") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        body = settled_sign_in_page(&app).await;
    }
    assert!(
        body.contains(&format!(
            "Gitea publishes the issuer \"{}\", but gitea_url is \"{with_slash}\"",
            with_slash.trim_end_matches('/')
        )),
        "{body}"
    );
}

#[tokio::test]
async fn gitea_down_at_start_then_up_signs_in_after_background_retry() {
    if !oidc::available() {
        return;
    }
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let issuer = format!("http://127.0.0.1:{port}/");
    let app = App::start(&gitea_config(dir.path(), &issuer, oidc::CLIENT_SECRET)).await;

    // opsdeck serves, and says exactly what is wrong.
    let body = settled_sign_in_page(&app).await;
    assert!(
        body.contains(&format!(
            "opsdeck cannot reach Gitea at {issuer}.well-known/openid-configuration"
        )),
        "{body}"
    );
    assert!(body.contains("Connection refused"), "{body}");
    let res = client()
        .get(format!("{}/auth/gitea", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);

    // API tokens keep working.
    let token = opsdeck::auth::token::create(&app.ctx.db, "ci", Role::Operator)
        .await
        .unwrap();
    let res = client()
        .get(format!("{}/api/apps", app.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Gitea comes up; opsdeck notices on its own and sign-in works.
    let provider = Provider::start(port, &format!("{}/auth/callback", app.url));
    ready(&app).await;
    let (pair_url, cookie) = authorize_url(&app).await;
    let back = through_provider(&provider, &pair_url, "ann").await;
    let res = in_browser(&cookie, &back).await;
    assert_eq!(res.status(), 303);
    assert!(set_cookie(&res).is_some());
}

#[tokio::test]
async fn forged_replayed_and_tampered_callbacks_are_refused_and_audited() {
    if !oidc::available() {
        return;
    }
    let pair = Pair::start().await;
    ready(&pair.app).await;
    let callback = |query: &str| {
        let url = format!("{}/auth/callback?{query}", pair.app.url);
        async move { client().get(url).send().await.unwrap() }
    };

    // A state opsdeck never issued.
    let res = callback("code=abc&state=forged").await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("unknown state"));

    // A real callback used twice: the second is refused.
    let (start, cookie) = authorize_url(&pair.app).await;
    let back = through_provider(&pair.provider, &start, "ann").await;
    let first = in_browser(&cookie, &back).await;
    assert_eq!(first.status(), 303);
    let again = in_browser(&cookie, &back).await;
    assert_eq!(again.status(), 403);
    assert!(set_cookie(&again).is_none());
    assert!(again.text().await.unwrap().contains("unknown state"));

    // The nonce swapped on the way to Gitea: the id_token does not carry ours.
    let (start, cookie) = authorize_url(&pair.app).await;
    let nonce = start
        .split("nonce=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let tampered = start.replace(&format!("nonce={nonce}"), "nonce=someone-elses");
    let back = through_provider(&pair.provider, &tampered, "ann").await;
    let res = in_browser(&cookie, &back).await;
    assert_eq!(res.status(), 403);
    assert!(set_cookie(&res).is_none());
    let body = res.text().await.unwrap();
    assert!(body.contains("failed verification"), "{body}");
    assert!(body.to_lowercase().contains("nonce"), "{body}");

    // Gitea sending the user back with an error (they pressed Cancel).
    let res = cancelled(&pair, "the+user+said+no").await;
    assert_eq!(res.status(), 403);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("access_denied: the user said no")
    );

    // Audited: the tampered nonce and the cancel, sign-ins this browser
    // started. A state opsdeck never issued (or already used) is anyone's
    // to send: answered, never written down.
    let denied = pair
        .app
        .audit()
        .await
        .into_iter()
        .filter(|(_, action, outcome, _)| action == "signin" && outcome == "denied")
        .count();
    assert_eq!(denied, 2);
}

/// A sign-in started in this browser that Gitea sends back with
/// `access_denied` (the user pressed Cancel), described as `description`.
async fn cancelled(pair: &Pair, description: &str) -> reqwest::Response {
    let (start, cookie) = authorize_url(&pair.app).await;
    let state = url::Url::parse(&start)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let url = format!(
        "{}/auth/callback?error=access_denied&error_description={description}&state={state}",
        pair.app.url
    );
    in_browser(&cookie, &url).await
}

/// Issue 20, item 2: `/auth/callback?error=…` is reachable by anyone (a GET
/// any page can make a visitor's browser send): it is rate-limited like
/// every sign-in route, writes no audit row unless it answers a sign-in
/// this browser started here, and what the caller wrote is stored clipped.
#[tokio::test]
async fn callback_errors_are_rate_limited_and_audited_only_for_sign_ins_started_here() {
    if !oidc::available() {
        return;
    }
    let pair = Pair::start().await;
    ready(&pair.app).await;
    let long = "x".repeat(60_000);

    // A sign-in started here, cancelled with a novel for a reason.
    assert_eq!(cancelled(&pair, &long).await.status(), 403);

    // Fifty forged ones, as a script (or a page) would send them.
    let mut limited = 0;
    for _ in 0..50 {
        let url = format!(
            "{}/auth/callback?error=access_denied&error_description={long}",
            pair.app.url
        );
        let res = client().get(url).send().await.unwrap();
        if res.status() == 429 {
            limited += 1;
        } else {
            assert_eq!(res.status(), 403);
        }
    }
    assert!(limited >= 35, "only {limited} of 50 were rate-limited");

    let rows: Vec<(String, String, String, String)> = pair
        .app
        .audit()
        .await
        .into_iter()
        .filter(|(_, action, _, _)| action == "signin")
        .collect();
    assert_eq!(rows.len(), 1, "one row, for the sign-in started here");
    let detail = &rows[0].3;
    assert!(
        detail.contains("access_denied: xxx"),
        "{}",
        &detail[..200.min(detail.len())]
    );
    assert!(detail.len() < 2_000, "{} characters stored", detail.len());
    assert!(detail.contains("more characters)"), "the cut is said");
}

/// Issue 20, item 4: a sign-in link completed by the attacker at Gitea,
/// handed to someone else's browser, must not sign that browser in as the
/// attacker (sign-in CSRF): the `state` is bound to the browser that
/// started the sign-in by a short-lived cookie.
#[tokio::test]
async fn a_sign_in_completed_in_another_browser_signs_nobody_in() {
    if !oidc::available() {
        return;
    }
    let pair = Pair::start().await;
    ready(&pair.app).await;
    // The attacker starts a sign-in and goes through Gitea as themselves…
    let (start, attacker_cookie) = authorize_url(&pair.app).await;
    let back = through_provider(&pair.provider, &start, "ann").await;
    // …and gets the victim's browser (no sign-in cookie, or its own) to
    // open the callback URL.
    for victim in ["", "opsdeck_signin=the-victims-own-sign-in"] {
        let res = in_browser(victim, &back).await;
        assert_eq!(res.status(), 403);
        assert!(set_cookie(&res).is_none(), "the victim was signed in");
        let body = readable(&res.text().await.unwrap());
        assert!(body.contains("This sign-in was"), "{body}");
    }
    // The binding cookie is HttpOnly, SameSite=Lax and short-lived.
    assert!(
        attacker_cookie.starts_with("opsdeck_signin="),
        "{attacker_cookie:?}"
    );
    let res = client()
        .get(format!("{}/auth/gitea?next=/", pair.app.url))
        .send()
        .await
        .unwrap();
    let header = res.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Lax", "Max-Age=600", "Path=/"] {
        assert!(header.contains(flag), "{header}");
    }
}

/// `url` with query parameter `key` set to `value`.
fn with_param(url: &str, key: &str, value: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

#[tokio::test]
async fn a_code_for_another_application_or_from_another_issuer_is_refused() {
    if !oidc::available() {
        return;
    }
    let pair = Pair::start().await;
    ready(&pair.app).await;

    // The provider issues a code to another application (same user, same
    // provider), and it is slipped into opsdeck's callback with opsdeck's
    // own state: Gitea refuses to hand opsdeck tokens for it.
    let (start, cookie) = authorize_url(&pair.app).await;
    let for_other = with_param(
        &with_param(&start, "client_id", oidc::OTHER_CLIENT_ID),
        "redirect_uri",
        oidc::OTHER_REDIRECT,
    );
    let back = through_provider(&pair.provider, &for_other, "ann").await;
    assert!(back.starts_with(oidc::OTHER_REDIRECT), "{back}");
    let query = back.split_once('?').unwrap().1;
    let res = in_browser(&cookie, &format!("{}/auth/callback?{query}", pair.app.url)).await;
    assert_eq!(res.status(), 403);
    assert!(set_cookie(&res).is_none());
    let body = readable(&res.text().await.unwrap());
    assert!(
        body.contains("Gitea refused the sign-in code (invalid_grant"),
        "{body}"
    );
    assert!(body.contains("issued to another application"), "{body}");

    // A callback naming another issuer (RFC 9207 `iss`) is refused before
    // its code goes anywhere.
    let (start, cookie) = authorize_url(&pair.app).await;
    let back = through_provider(&pair.provider, &start, "ann").await;
    let res = in_browser(&cookie, &with_param(&back, "iss", "https://evil.example/")).await;
    assert_eq!(res.status(), 403);
    let body = readable(&res.text().await.unwrap());
    assert!(
        body.contains("came back from the issuer \"https://evil.example/\""),
        "{body}"
    );

    let denied = pair
        .app
        .audit()
        .await
        .into_iter()
        .filter(|(_, action, outcome, _)| action == "signin" && outcome == "denied")
        .count();
    assert_eq!(denied, 2);
}

/// The browser binding keeps two sign-ins started in one browser (two tabs,
/// a double click) good: the second keeps the first's sign-in cookie.
#[tokio::test]
async fn two_sign_ins_started_in_one_browser_both_finish() {
    if !oidc::available() {
        return;
    }
    let pair = Pair::start().await;
    ready(&pair.app).await;
    let (first, cookie) = authorize_url(&pair.app).await;
    let second = in_browser(&cookie, &format!("{}/auth/gitea?next=/", pair.app.url)).await;
    assert_eq!(second.status(), 303);
    let again = set_cookie_named(&second, "opsdeck_signin");
    assert_eq!(again.as_deref(), Some(cookie.as_str()));
    let second = second.headers()["location"].to_str().unwrap().to_string();
    for start in [first, second] {
        let back = through_provider(&pair.provider, &start, "ann").await;
        let res = in_browser(&cookie, &back).await;
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        assert!(set_cookie(&res).is_some());
        // Not dropped: the other tab's sign-in still needs it.
        assert_eq!(set_cookie_named(&res, "opsdeck_signin"), None);
    }
}

/// The `name=value` of the `Set-Cookie` header setting `name`.
fn set_cookie_named(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}
