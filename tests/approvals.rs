//! Four-eyes approvals (README "Approvals") against a real git repository:
//! two signed-in people in real Chromium — one asks for a production
//! deploy, the other sees the commit that ships and approves it, and that
//! commit goes live though the branch moved meanwhile; self-approval,
//! denial with a reason, expiry (also across a restart), an owner's
//! emergency deploy, and the audit rows of each.

mod support;

use std::time::Duration;

use opsdeck::auth::Role;
use opsdeck::jobs::{Decision, State};
use serde_json::json;
use support::browser::Browser;
use support::deck::{Deck, actor};
use support::repos::{Repos, sh_git};
use support::server::{self, Server};

/// A production app deploying `repo` (checkout), its deploys approved by
/// an admin, its action `tidy` by an owner.
fn app(repo: &std::path::Path, jobs: &str) -> String {
    format!(
        "{jobs}\n[[app]]\nname = \"web\"\nenvironment = \"production\"\nrepo = \"{}\"\napproval = {{ deploy = \"admin\" }}\n\n[[app.action]]\nname = \"tidy\"\nrun = [\"true\"]\napproval = \"owner\"\n",
        repo.display()
    )
}

/// Signs `browser` in as `login` with `role`.
async fn sign_in(browser: &Browser, s: &Server, login: &str, role: Role) {
    let (cookie, _) = s.session(login, role).await;
    let (name, value) = cookie.split_once('=').unwrap();
    browser.goto(&s.at("/healthz")).await;
    browser.set_cookie(name, value).await;
}

/// Waits until the page's text holds `text`; the text.
async fn shows(browser: &Browser, text: &str) -> String {
    let found = browser
        .until(&format!(
            "var t = document.body.innerText; return t.includes({}) && t",
            json!(text)
        ))
        .await;
    found.as_str().unwrap().to_owned()
}

async fn state(s: &Server, job: i64) -> State {
    s.ctx.jobs.job(job).await.unwrap().state
}

/// Posts a page form as `session` (cookie, CSRF token); (status,
/// Location or body).
async fn post_as(
    s: &Server,
    session: &(String, String),
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let res = s.post_form(path, (&session.0, &session.1), fields).await;
    let status = res.status().as_u16();
    match res.headers().get("location") {
        Some(to) => (status, to.to_str().unwrap().to_owned()),
        None => (status, res.text().await.unwrap()),
    }
}

#[tokio::test]
async fn one_asks_for_a_production_deploy_another_approves_and_that_exact_commit_goes_live() {
    let Some(ada_browser) = Browser::start().await else {
        return;
    };
    let Some(ben_browser) = Browser::without_javascript().await else {
        return;
    };
    let repos = Repos::new();
    let s = server::start(&app(&repos.app, "")).await;
    sign_in(&ada_browser, &s, "ada", Role::Admin).await;
    sign_in(&ben_browser, &s, "ben", Role::Admin).await;
    let v2 = repos.push("version", "v2", "Version 2: the one asked for");

    // Ada asks: the Deploy form says deploys wait for an admin's approval.
    ada_browser.goto(&s.at("/apps/web?ref=main")).await;
    let form = shows(
        &ada_browser,
        "wait for the approval of someone else with the admin role",
    )
    .await;
    assert!(form.contains(&v2[..7]), "{form}");
    assert!(
        !form.contains("Emergency: skip approval"),
        "only owners may skip: {form}"
    );
    ada_browser.type_into("#deploy-confirm", "web").await;
    ada_browser
        .click(".what-ships form button[type=submit]")
        .await;
    ada_browser
        .until("return location.pathname === '/jobs/1'")
        .await;
    let waiting = shows(&ada_browser, "awaiting approval").await;
    assert!(
        waiting.contains("You asked for it: someone else with the admin role must approve it"),
        "{waiting}"
    );
    assert!(waiting.contains(&v2), "the exact commit: {waiting}");
    assert_eq!(state(&s, 1).await, State::AwaitingApproval);
    // Waiting holds no place: the app's queue is free for other jobs.
    assert!(s.ctx.jobs.queue("web").await.unwrap().waiting.is_empty());

    // Ada cannot approve her own request, not even by posting the form.
    let ada = s.session("ada", Role::Admin).await;
    let (status, said) = post_as(
        &s,
        &ada,
        "/jobs/1/approve",
        &[("reason", "looks fine to me")],
    )
    .await;
    assert_eq!(status, 403, "{said}");
    assert!(
        said.contains("someone else with the admin role must approve it"),
        "{said}"
    );
    s.assert_denied("approval.approve", 1, "four eyes").await;
    assert_eq!(state(&s, 1).await, State::AwaitingApproval);

    // The branch moves on while the request waits.
    let v3 = repos.push("version", "v3", "Version 3: not asked for");

    // Ben sees the request on the dashboard, and on the job page what ships.
    ben_browser.goto(&s.at("/")).await;
    let dashboard = shows(&ben_browser, "Waiting for approval").await;
    assert!(
        dashboard.contains("#1 deploy main of web, asked by ada"),
        "{dashboard}"
    );
    assert!(
        dashboard.contains("you may approve or deny it"),
        "{dashboard}"
    );
    ben_browser.goto(&s.at("/jobs/1")).await;
    let page = shows(&ben_browser, "Why approve").await;
    assert!(
        page.contains(&format!("Ships\n{v2} (main)")) || page.contains(&v2),
        "{page}"
    );
    assert!(
        page.contains(&format!("Check out {} (main)", &v2[..7])),
        "{page}"
    );
    assert!(!page.contains(&v3[..7]), "{page}");
    // On a phone the box, its forms and the dashboard's list fit.
    ben_browser.resize(390, 844).await;
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (path, name) in [("/", "approvals-dashboard"), ("/jobs/1", "approval-box")] {
        ben_browser.goto(&s.at(path)).await;
        shows(&ben_browser, "ada").await;
        let overflow = ben_browser.sideways_overflow().await;
        assert!(overflow <= 0, "{path} scrolls sideways by {overflow}px");
        ben_browser
            .screenshot(&shots.join(format!("{name}-phone.png")))
            .await;
    }
    ben_browser.resize(1280, 900).await;

    // Approving takes a reason; without one the form is refused.
    let ben = s.session("ben", Role::Admin).await;
    let (status, said) = post_as(&s, &ben, "/jobs/1/approve", &[("reason", "  ")]).await;
    assert_eq!(status, 400, "{said}");
    assert!(said.contains("a reason is required"), "{said}");
    ben_browser
        .type_into("#approve-reason", "Reviewed v2 with ada; ship it")
        .await;
    ben_browser
        .click("form[action='/jobs/1/approve'] button")
        .await;
    for _ in 0..200 {
        if ben_browser.url().await.ends_with("/jobs/1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(s.finished(1).await, State::Succeeded);

    // What went live is the commit asked for, not the branch's tip.
    assert_eq!(sh_git(&repos.app, &["rev-parse", "HEAD"]), v2);
    ben_browser.goto(&s.at("/jobs/1")).await;
    let decided = shows(&ben_browser, "Approved by ben").await;
    assert!(
        decided.contains("Reviewed v2 with ada; ship it"),
        "{decided}"
    );
    // Ada's page follows: the job ran.
    ada_browser.goto(&s.at("/jobs/1")).await;
    ada_browser
        .until("return document.querySelector('#job-state').innerText.trim() === 'succeeded'")
        .await;

    let requested = s.audit_rows("approval.request").await;
    assert_eq!(requested.len(), 1, "{requested:?}");
    assert!(
        requested[0].1.contains("\"role\":\"admin\""),
        "{requested:?}"
    );
    let approved = s.audit_rows("approval.approve").await;
    // Ada's own try and the empty reason, refused; then Ben's approval.
    let outcomes: Vec<&str> = approved.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(outcomes, ["denied", "denied", "ok"], "{approved:?}");
    assert!(
        approved[1].1.contains("a reason is required"),
        "{approved:?}"
    );
    assert!(
        approved[2].1.contains("Reviewed v2 with ada; ship it"),
        "{approved:?}"
    );
    // The approval rows are links of the audit log's hash chain.
    opsdeck::audit::verify(&s.ctx.db)
        .await
        .expect("the chain verifies");
}

#[tokio::test]
async fn a_deny_closes_the_request_with_its_reason_and_roles_are_enforced() {
    let repos = Repos::new();
    let s = server::start(&app(&repos.app, "")).await;
    let ci = s.token("ci", Role::Admin).await;
    let res = s
        .post_json("/api/apps/web/deploy", &ci, &json!({"ref": "main"}))
        .await;
    assert_eq!(res.status(), 202);
    let id = server::json(res).await["job"].as_i64().unwrap();
    let job = server::json(s.get_as(&format!("/api/jobs/{id}"), &ci).await).await;
    assert_eq!(job["state"], "awaiting_approval");
    assert_eq!(job["approval"]["role"], "admin");

    // The same deploy again is refused while it waits.
    let again = s
        .post_json("/api/apps/web/deploy", &ci, &json!({"ref": "main"}))
        .await;
    assert_eq!(again.status(), 409);

    // An operator may not decide an admin's approval.
    let olga = s.token("olga", Role::Operator).await;
    let res = s
        .post_json(
            &format!("/api/jobs/{id}/deny"),
            &olga,
            &json!({"reason": "no"}),
        )
        .await;
    assert_eq!(res.status(), 403);
    s.assert_denied("approval.deny", 1, "\"needed\":\"admin\"")
        .await;
    // A deny without a reason is refused, audited.
    let ben_token = s.token("ben", Role::Admin).await;
    let res = s
        .post_json(
            &format!("/api/jobs/{id}/deny"),
            &ben_token,
            &json!({"reason": ""}),
        )
        .await;
    server::assert_refused(res, "a reason is required").await;
    assert_eq!(s.audit_rows("approval.deny").await.len(), 2);

    // The page's Deny asks first (without JavaScript, on a page).
    let ben = s.session("ben", Role::Admin).await;
    let page = s.page(&format!("/jobs/{id}"), &ben.0).await;
    assert!(page.contains("Why deny"), "{page}");
    let ask = format!("Deny job {id} (deploy main of web, asked by token:ci)? It will not run.");
    let fields = [("reason", "Friday evening: not now"), ("ask", ask.as_str())];
    let (status, asked) = post_as(&s, &ben, &format!("/jobs/{id}/deny"), &fields).await;
    assert_eq!(status, 200);
    assert!(asked.contains(&ask), "{asked}");
    assert_eq!(state(&s, id).await, State::AwaitingApproval);
    let yes = [
        ("reason", "Friday evening: not now"),
        ("ask", ask.as_str()),
        ("confirmed", "yes"),
    ];
    let (status, to) = post_as(&s, &ben, &format!("/jobs/{id}/deny"), &yes).await;
    assert_eq!((status, to.as_str()), (303, format!("/jobs/{id}").as_str()));
    assert_eq!(state(&s, id).await, State::Denied);
    let page = s.page(&format!("/jobs/{id}"), &ben.0).await;
    assert!(page.contains("Denied by <strong>ben</strong>"), "{page}");
    assert!(page.contains("Friday evening: not now"), "{page}");
    assert!(page.contains("state-denied"), "{page}");
    let rows = s.audit_rows("approval.deny").await;
    assert_eq!(rows.last().unwrap().0, "ok");

    // Closed: it cannot be approved any more, and nothing was checked out.
    let res = s
        .post_json(
            &format!("/api/jobs/{id}/approve"),
            &ben_token,
            &json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(res.status(), 409);
    let v1 = sh_git(&repos.app, &["rev-parse", "HEAD"]);
    assert_eq!(s.ctx.jobs.job(id).await.unwrap().steps[0].state, "skipped");
    assert_eq!(sh_git(&repos.app, &["rev-parse", "HEAD"]), v1);

    // An action's own `approval` (owner): an admin cannot approve it.
    let res = s
        .post_json("/api/apps/web/actions/tidy/run", &ci, &json!({}))
        .await;
    assert_eq!(res.status(), 202, "{res:?}");
    let tidy = server::json(res).await["job"].as_i64().unwrap();
    assert_eq!(state(&s, tidy).await, State::AwaitingApproval);
    let res = s
        .post_json(
            &format!("/api/jobs/{tidy}/approve"),
            &ben_token,
            &json!({"reason": "fine"}),
        )
        .await;
    assert_eq!(res.status(), 403);
    let owner = s.token("olivia", Role::Owner).await;
    let res = s
        .post_json(
            &format!("/api/jobs/{tidy}/approve"),
            &owner,
            &json!({"reason": "fine"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(s.finished(tidy).await, State::Succeeded);
}

#[tokio::test]
async fn an_owner_deploys_in_an_emergency_only_with_a_reason_audited_as_such() {
    let repos = Repos::new();
    let s = server::start(&app(&repos.app, "")).await;
    let v2 = repos.push("version", "v2", "Version 2: the fix");
    let admin = s.token("ci", Role::Admin).await;
    let owner = s.token("olivia", Role::Owner).await;

    // Only an owner may skip the approval.
    let body = json!({"ref": "main", "emergency": "site down"});
    let res = s.post_json("/api/apps/web/deploy", &admin, &body).await;
    assert_eq!(res.status(), 403);
    s.assert_denied("approval.emergency", 1, "\"needed\":\"owner\"")
        .await;
    // Not without a reason.
    let res = s
        .post_json(
            "/api/apps/web/deploy",
            &owner,
            &json!({"ref": "main", "emergency": " "}),
        )
        .await;
    server::assert_refused(res, "a reason is required").await;
    assert_eq!(s.job_count().await, 0);

    let res = s
        .post_json(
            "/api/apps/web/deploy",
            &owner,
            &json!({"ref": "main", "emergency": "site down since 14:02, fix is v2"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let id = server::json(res).await["job"].as_i64().unwrap();
    assert_eq!(s.finished(id).await, State::Succeeded);
    assert_eq!(sh_git(&repos.app, &["rev-parse", "HEAD"]), v2);
    let rows = s.audit_rows("approval.emergency").await;
    let (outcome, detail) = rows.last().unwrap();
    assert_eq!(outcome, "ok");
    assert!(
        detail.contains("site down since 14:02, fix is v2"),
        "{detail}"
    );
    assert!(detail.contains("\"skipped\":\"admin\""), "{detail}");
    let session = s.session("olivia", Role::Owner).await;
    let page = s.page(&format!("/jobs/{id}"), &session.0).await;
    assert!(
        page.contains(
            "<strong>Emergency:</strong> token:olivia ran this without the approval it needed"
        ),
        "{page}"
    );

    // The page's Deploy form: the checkbox and the reason, for owners.
    let v3 = repos.push("version", "v3", "Version 3");
    let form = s.page("/apps/web?ref=main", &session.0).await;
    assert!(form.contains("Emergency: skip approval"), "{form}");
    let ticked = [
        ("ref", "main"),
        ("sha", v3.as_str()),
        ("confirm", "web"),
        ("skip_approval", "yes"),
        ("emergency", ""),
    ];
    let (status, said) = post_as(&s, &session, "/apps/web/deploy", &ticked).await;
    assert_eq!(status, 400, "{said}");
    let ticked = [
        ("ref", "main"),
        ("sha", v3.as_str()),
        ("confirm", "web"),
        ("skip_approval", "yes"),
        ("emergency", "hotfix, approver asleep"),
    ];
    let (status, to) = post_as(&s, &session, "/apps/web/deploy", &ticked).await;
    assert_eq!(status, 303, "{to}");
    let job: i64 = to.trim_start_matches("/jobs/").parse().unwrap();
    assert_eq!(s.finished(job).await, State::Succeeded);
    assert_eq!(sh_git(&repos.app, &["rev-parse", "HEAD"]), v3);
}

#[tokio::test]
async fn a_request_expires_unapproved_and_waits_across_a_restart() {
    let repos = Repos::new();
    let config = app(&repos.app, "[jobs]\napproval_ttl = \"2s\"\n");
    let deck = Deck::start(&config).await;
    let ada = actor("ada", Role::Admin);
    let ben = actor("ben", Role::Admin);
    let v2 = repos.push("version", "v2", "Version 2");

    // Asked for, then opsdeck restarts: the request still awaits approval.
    let kept = opsdeck::ops::deploy::request(&deck.ctx, &ada, "web", "main")
        .await
        .unwrap();
    deck.ctx.jobs.shutdown(Duration::from_secs(1)).await;
    let Deck { dir, .. } = deck;
    let deck = Deck::start_in(dir, &config).await;
    assert_eq!(
        deck.ctx.jobs.job(kept).await.unwrap().state,
        State::AwaitingApproval
    );
    // Approved after the restart, it deploys the commit pinned before.
    let v3 = repos.push("version", "v3", "Version 3");
    opsdeck::ops::approval::decide(
        &deck.ctx,
        &ben,
        kept,
        Decision::Approve,
        "after the restart",
    )
    .await
    .unwrap();
    assert_eq!(deck.wait(kept).await.1, State::Succeeded);
    assert_eq!(sh_git(&repos.app, &["rev-parse", "HEAD"]), v2);

    // Nobody approves this one in time: approving it afterwards is refused.
    let late = opsdeck::ops::deploy::request(&deck.ctx, &ada, "web", "main")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let refused =
        opsdeck::ops::approval::decide(&deck.ctx, &ben, late, Decision::Approve, "too late")
            .await
            .unwrap_err();
    assert!(refused.to_string().contains("expired"), "{refused}");
    let job = deck.ctx.jobs.job(late).await.unwrap();
    assert_eq!(job.state, State::Expired);
    assert!(
        job.summary
            .unwrap()
            .contains("nobody with the admin role approved it in time")
    );
    assert_eq!(sh_git(&repos.app, &["rev-parse", "HEAD"]), v2, "not {v3}");

    // Expiry is kept after a restart too, with nobody asking: the request
    // left awaiting by the previous run ends `expired` on its own.
    let left = opsdeck::ops::deploy::request(&deck.ctx, &ada, "web", "main")
        .await
        .unwrap();
    deck.ctx.jobs.shutdown(Duration::from_secs(1)).await;
    let Deck { dir, .. } = deck;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let deck = Deck::start_in(dir, &config).await;
    let mut state = State::AwaitingApproval;
    for _ in 0..100 {
        state = deck.ctx.jobs.job(left).await.unwrap().state;
        if state != State::AwaitingApproval {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, State::Expired);
    let expired: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT actor, outcome, job_id FROM audit_events WHERE action = 'approval.expire' ORDER BY id",
    )
    .fetch_all(&deck.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        expired,
        vec![
            (
                "system:approvals".to_owned(),
                "failed".to_owned(),
                Some(late)
            ),
            (
                "system:approvals".to_owned(),
                "failed".to_owned(),
                Some(left)
            ),
        ]
    );
}

#[tokio::test]
async fn a_sweeps_own_approval_holds_its_run_but_never_its_dry_run() {
    let s = server::start(
        "[[app]]\nname = \"web\"\n\n[[app.sweep]]\nname = \"old-output\"\nkind = \"job-output\"\ndays = 30\napproval = \"admin\"\n",
    )
    .await;
    let olga = s.token("olga", Role::Operator).await;
    let path = "/api/apps/web/sweeps/old-output/run";

    // A dry run changes nothing: it runs at once.
    let res = s.post_json(path, &olga, &json!({"dry_run": true})).await;
    assert_eq!(res.status(), 202);
    let dry = server::json(res).await["job"].as_i64().unwrap();
    assert_eq!(s.finished(dry).await, State::Succeeded);

    // The sweep itself waits for an admin.
    let res = s.post_json(path, &olga, &json!({"dry_run": false})).await;
    assert_eq!(res.status(), 202);
    let run = server::json(res).await["job"].as_i64().unwrap();
    assert_eq!(state(&s, run).await, State::AwaitingApproval);
    let operator = s.session("otto", Role::Operator).await;
    let page = s.page(&format!("/jobs/{run}"), &operator.0).await;
    assert!(page.contains("Deciding it needs the admin role."), "{page}");
    assert!(!page.contains("Why approve"), "{page}");
    // The requester may still withdraw it.
    let res = s
        .post_json(&format!("/api/jobs/{run}/cancel"), &olga, &json!({}))
        .await;
    assert_eq!(res.status(), 202);
    assert_eq!(state(&s, run).await, State::Cancelled);
}
