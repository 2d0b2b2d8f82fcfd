//! The app page's Deploy section over real HTTP, deploying a real git
//! repository: what ships (commits with authors), the production
//! confirmation, a preview gone stale, the release history's Rollback
//! buttons, roles, and the health fragment.

mod support;

use opsdeck::auth::Role;
use opsdeck::host::Host;
use opsdeck::host::git;
use opsdeck::jobs::State;
use support::repos::Repos;
use support::server::{self, Server};

/// A signed-in browser: its cookie and CSRF token.
struct Browser<'a> {
    server: &'a Server,
    cookie: String,
    csrf: String,
}

impl Browser<'_> {
    async fn page(&self, path: &str) -> (u16, String) {
        let res = self.server.browse(path, &self.cookie).await;
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// Posts a form as the page would; the status and the Location or body.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        let res = server::client()
            .post(self.server.at(path))
            .header("cookie", &self.cookie)
            .header("origin", &self.server.url)
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        match res.headers().get("location") {
            Some(to) => (status, to.to_str().unwrap().to_owned()),
            None => (status, res.text().await.unwrap()),
        }
    }
}

async fn sign_in<'a>(server: &'a Server, login: &str, role: Role) -> Browser<'a> {
    let (cookie, csrf) = server.session(login, role).await;
    Browser {
        server,
        cookie,
        csrf,
    }
}

/// The job a redirect to `/jobs/{id}` names, once it ended.
async fn job_of(server: &Server, location: &str) -> i64 {
    let id: i64 = location.trim_start_matches("/jobs/").parse().unwrap();
    assert_eq!(server.finished(id).await, State::Succeeded);
    id
}

/// The `value` of hidden input `name` in `html`.
fn hidden<'a>(html: &'a str, name: &str) -> &'a str {
    html.split(&format!(r#"name="{name}" value=""#))
        .nth(1)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        .split('"')
        .next()
        .unwrap()
}

#[tokio::test]
async fn what_ships_then_deploy_with_the_production_confirmation_then_roll_back() {
    let repos = Repos::new();
    // The health check asks a small HTTP service of the test's own.
    let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health_url = format!("http://{}/up", health.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route("/up", axum::routing::get(|| async { "fine" }));
        axum::serve(health, app).await.unwrap();
    });
    let server = server::start(&format!(
        "[roles]\noperator = [\"user:olga\"]\n\n[[app]]\nname = \"web\"\nenvironment = \"production\"\nrepo = \"{}\"\nhealth = {{ url = \"{health_url}\", expect = \"fine\" }}\n",
        repos.app.display()
    ))
    .await;
    let owner = sign_in(&server, "ben", Role::Owner).await;

    let (status, html) = owner.page("/apps/web").await;
    assert_eq!(status, 200);
    assert!(html.contains("Nothing deployed by opsdeck yet."), "{html}");
    assert!(
        html.contains(r#"hx-get="/apps/web/deploy/preview""#),
        "{html}"
    );

    // What ships: the new commits, newest first, with their authors.
    let v2 = repos.push("version", "v2", "Version 2");
    let v3 = repos.push("version", "v3", "Version 3: faster search");
    let (status, preview) = owner.page("/apps/web/deploy/preview?ref=main").await;
    assert_eq!(status, 200, "{preview}");
    assert!(
        preview.contains(&format!("main is <code>{}</code>", &v3[..7])),
        "{preview}"
    );
    assert!(preview.contains("Ships 2 commits:"), "{preview}");
    let first = preview.find("Version 3: faster search").unwrap();
    let second = preview.find("Version 2").unwrap();
    assert!(first < second, "newest first: {preview}");
    assert!(preview.contains("— Ada Lovelace"), "{preview}");
    assert_eq!(hidden(&preview, "sha"), v3);
    assert!(
        preview.contains("is <strong>production</strong>. Type <code>web</code>"),
        "{preview}"
    );

    // Production: the app's name must be typed.
    let fields = [("ref", "main"), ("sha", v3.as_str())];
    let (status, said) = owner.post("/apps/web/deploy", &fields).await;
    assert_eq!(status, 400);
    assert!(
        said.contains("web is production: type its name to confirm the deploy"),
        "{said}"
    );
    assert_eq!(server.job_count().await, 0);

    // A preview gone stale (main moved since) is refused, naming both.
    let v4 = repos.push("version", "v4", "Version 4");
    let typed = [("ref", "main"), ("sha", v3.as_str()), ("confirm", "web")];
    let (status, said) = owner.post("/apps/web/deploy", &typed).await;
    assert_eq!(status, 409);
    assert!(
        said.contains(&format!(
            "main moved since the preview: it was {}, it is now {}",
            &v3[..7],
            &v4[..7]
        )),
        "{said}"
    );
    assert_eq!(server.job_count().await, 0);

    // Deploy v3 exactly, then v4.
    let (status, to) = owner
        .post(
            "/apps/web/deploy",
            &[
                ("ref", v3.as_str()),
                ("sha", v3.as_str()),
                ("confirm", "web"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{to}");
    job_of(&server, &to).await;
    assert_eq!(
        git::head(&Host::Local, &repos.app).await.unwrap().as_str(),
        v3
    );
    let (_, preview) = owner.page("/apps/web/deploy/preview?ref=main").await;
    assert!(
        preview.contains("Ships 1 commit:") && preview.contains("Version 4"),
        "{preview}"
    );
    let (status, to) = owner
        .post(
            "/apps/web/deploy",
            &[("ref", "main"), ("sha", v4.as_str()), ("confirm", "web")],
        )
        .await;
    assert_eq!(status, 303, "{to}");
    job_of(&server, &to).await;

    // The page: what is live, the history, a Rollback button on v3 only.
    let (_, html) = owner.page("/apps/web").await;
    assert!(
        html.contains(&format!("Live: <code>{}</code> (main)", &v4[..7])),
        "{html}"
    );
    assert!(html.contains("deploy by ben"), "{html}");
    assert_eq!(html.matches("Roll back to this").count(), 1, "{html}");
    let rollback = &html[html.find(r#"action="/apps/web/rollback""#).unwrap()..];
    assert!(
        rollback.contains(&format!(
            "Roll web (production) back to release 1 ({}, deploy by ben)?",
            &v3[..7]
        )),
        "{rollback}"
    );
    let release = hidden(rollback, "release").to_owned();
    let (status, to) = owner
        .post("/apps/web/rollback", &[("release", release.as_str())])
        .await;
    assert_eq!(status, 303, "{to}");
    job_of(&server, &to).await;
    assert_eq!(
        git::head(&Host::Local, &repos.app).await.unwrap().as_str(),
        v3
    );
    let (status, said) = owner.post("/apps/web/rollback", &[("release", "x1")]).await;
    assert_eq!(status, 400);
    assert!(
        said.contains("&#34;x1&#34; is not a release number"),
        "{said}"
    );

    // Going back is spelled out in what ships.
    let (_, preview) = owner
        .page(&format!("/apps/web/deploy/preview?ref={v2}"))
        .await;
    assert!(
        preview.contains("takes away 1 commit that runs now:"),
        "{preview}"
    );

    // An operator (the on-call engineer) may roll back but not deploy: no
    // deploy form, refused when trying anyway. No Rollback button is left:
    // release 1 is what runs now (v3) and v4 was rolled away from.
    let olga = sign_in(&server, "olga", Role::Operator).await;
    let (_, html) = olga.page("/apps/web").await;
    assert!(
        html.contains("Deploying web needs a higher role than yours."),
        "{html}"
    );
    assert!(!html.contains("Roll back to this"), "{html}");
    assert!(html.contains("succeeded, later rolled back"), "{html}");
    let before = server.job_count().await;
    let (status, _) = olga
        .post(
            "/apps/web/deploy",
            &[("ref", "main"), ("sha", v4.as_str()), ("confirm", "web")],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = olga.page("/apps/web/deploy/preview?ref=main").await;
    assert_eq!(status, 403);
    assert_eq!(server.job_count().await, before);

    // Health at a glance: the check answers, no units to ask.
    let (status, glance) = olga.page("/apps/web/health").await;
    assert_eq!(status, 200);
    assert!(glance.contains(">healthy</span>"), "{glance}");
    assert!(
        glance.contains(&format!("Health check: {health_url} answered 200")),
        "{glance}"
    );
    let (_, dashboard) = olga.page("/").await;
    assert!(
        dashboard.contains(r#"hx-get="/apps/web/health""#),
        "{dashboard}"
    );
}

/// A repository nobody cloned (`git init` on the host, no `origin`): What
/// ships says so in one sentence, with the command that fixes it, and no
/// job starts.
#[tokio::test]
async fn a_repository_without_origin_says_how_to_add_one() {
    let dir = tempfile::tempdir().unwrap();
    support::repos::sh_git(dir.path(), &["init", "-q"]);
    support::repos::sh_git(dir.path(), &["commit", "-q", "--allow-empty", "-m", "one"]);
    let server = server::start(&format!(
        "[[app]]\nname = \"web\"\nrepo = \"{}\"\n",
        dir.path().display()
    ))
    .await;
    let owner = sign_in(&server, "ben", Role::Owner).await;
    let (status, said) = owner.page("/apps/web/deploy/preview?ref=main").await;
    assert_eq!(status, 409, "{said}");
    assert!(
        said.contains(&format!(
            "has no remote named origin, so opsdeck has nothing to fetch a deploy from; add the repository you push to: git -C {} remote add origin &#60;url&#62;",
            dir.path().display()
        )),
        "{said}"
    );
    let (status, _) = owner
        .post(
            "/apps/web/deploy",
            &[
                ("ref", "main"),
                ("sha", &"0".repeat(40)),
                ("confirm", "web"),
            ],
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(server.job_count().await, 0);
}

/// Without JavaScript the ref form reloads the app page with `?ref=`: what
/// ships, or why not, appears under the form (where htmx would put it),
/// the typed ref kept, never a separate error page.
#[tokio::test]
async fn without_javascript_the_ref_form_answers_beside_itself() {
    let repos = Repos::new();
    let server = server::start(&format!(
        "[[app]]\nname = \"web\"\nrepo = \"{}\"\n",
        repos.app.display()
    ))
    .await;
    let owner = sign_in(&server, "ben", Role::Owner).await;
    let (_, page) = owner.page("/apps/web").await;
    assert!(
        page.contains(r#"<form class="deploy-form" method="get" action="/apps/web#deploy""#),
        "{page}"
    );
    let (status, page) = owner.page("/apps/web?ref=no-such-branch").await;
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains(r#"name="ref" value="no-such-branch""#),
        "{page}"
    );
    let beside = page
        .split(r#"<div id="what-ships" aria-live="polite">"#)
        .nth(1)
        .unwrap_or_else(|| panic!("{page}"));
    assert!(
        beside.starts_with(r#"<p class="problem" role="alert">"#)
            && beside.contains("no-such-branch"),
        "{beside}"
    );
    assert!(page.contains("<h3>Releases</h3>"), "{page}");

    let v2 = repos.push("version", "v2", "Version 2");
    let (status, page) = owner.page("/apps/web?ref=main").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(hidden(&page, "sha"), v2, "{page}");
    assert!(page.contains("Version 2"), "{page}");
}

/// A deploy whose build fails, and whose recovery's rebuild fails too: the
/// job page says loudest that the app may be down, above the steps, and
/// the recovery step names the commit it went back to.
#[tokio::test]
async fn a_failed_recovery_is_the_loudest_thing_on_the_job_page() {
    let repos = Repos::new();
    let server = server::start(&format!(
        "[[app]]\nname = \"web\"\nrepo = \"{}\"\nbuild = [ {{ run = [\"sh\", \"-c\", \"echo broken >&2; exit 1\"] }} ]\n",
        repos.app.display()
    ))
    .await;
    let owner = sign_in(&server, "ben", Role::Owner).await;
    let v1 = support::repos::sh_git(&repos.app, &["rev-parse", "HEAD"]);
    let v2 = repos.push("version", "v2", "Version 2");
    let (status, to) = owner
        .post(
            "/apps/web/deploy",
            &[("ref", "main"), ("sha", v2.as_str()), ("confirm", "web")],
        )
        .await;
    assert_eq!(status, 303, "{to}");
    let id: i64 = to.trim_start_matches("/jobs/").parse().unwrap();
    let (state, output) = server.outcome(id).await;
    assert_eq!(state, State::Failed, "{output}");
    assert!(
        output.contains(&format!("git checkout --detach {v1}")),
        "{output}"
    );
    let (_, page) = owner.page(&to).await;
    // The recovery step names the commit it goes back to, not a placeholder.
    assert!(
        page.contains(&format!(
            "check out the commit this deploy replaced ({})",
            &v1[..7]
        )),
        "{page}"
    );
    assert!(page.contains(&format!("checkout --detach {v1}")), "{page}");
    assert!(
        !page.contains("&lt;the commit this job replaced&gt;"),
        "{page}"
    );
    let alarm = page
        .find(r#"<div class="alarm" role="alert"><strong>The recovery failed too: web may be down now.</strong>"#)
        .unwrap_or_else(|| panic!("{page}"));
    assert!(alarm < page.find("<h2>Steps</h2>").unwrap(), "{page}");
    assert!(page.contains("Took <span class=\"elapsed\">"), "{page}");
}

/// The dashboard card answers "how is it now?": the live commit and the
/// last deploy (who, outcome) stay there after a failing action, which is
/// only the last job; the card's live part refreshes on its own.
#[tokio::test]
async fn the_dashboard_card_shows_what_runs_and_the_last_deploy() {
    let repos = Repos::new();
    let server = server::start(&format!(
        "[[app]]\nname = \"web\"\nenvironment = \"staging\"\nrepo = \"{}\"\n\n[[app.action]]\nname = \"check\"\nrun = [\"false\"]\n",
        repos.app.display()
    ))
    .await;
    let owner = sign_in(&server, "ben", Role::Owner).await;
    let (_, dashboard) = owner.page("/").await;
    assert!(
        dashboard.contains("nothing deployed by opsdeck yet"),
        "{dashboard}"
    );
    let v2 = repos.push("version", "v2", "Version 2");
    let (_, to) = owner
        .post("/apps/web/deploy", &[("ref", "main"), ("sha", v2.as_str())])
        .await;
    job_of(&server, &to).await;
    let (_, to) = owner.post("/apps/web/actions/check/run", &[]).await;
    let id: i64 = to.trim_start_matches("/jobs/").parse().unwrap();
    assert_eq!(server.finished(id).await, State::Failed);

    let (_, dashboard) = owner.page("/").await;
    assert!(
        dashboard.contains(&format!("<dt>Live</dt>\n    <dd><code>{}</code>", &v2[..7])),
        "{dashboard}"
    );
    assert!(dashboard.contains("<dt>Last deploy</dt>"), "{dashboard}");
    assert!(
        dashboard.contains(r#"main</a> by ben, <time"#)
            && dashboard.contains(
                r#"just now</time> <span class="state state-succeeded">succeeded</span>"#
            ),
        "{dashboard}"
    );
    assert!(dashboard.contains("nothing running"), "{dashboard}");
    assert!(
        dashboard.contains(r#"action check</a> <span class="state state-failed">failed</span>"#),
        "{dashboard}"
    );
    assert!(
        dashboard.contains(r#"hx-get="/apps/web/now" hx-trigger="every 10s""#),
        "{dashboard}"
    );
    let (status, now) = owner.page("/apps/web/now").await;
    assert_eq!(status, 200);
    assert!(now.starts_with(r#"<div class="now""#), "{now}");
}
