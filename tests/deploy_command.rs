//! The Deploy and Rollback buttons, `command` strategy, shaped like the
//! CommunityRule runbook ("`cloudron update --image repo:TAG`"): a
//! stand-in `cloudron` (not the real CLI) records the image it was given
//! in a state file; the app's service, a real unit on a real systemd,
//! serves that image's tag, and fails its health check for a broken tag.

mod support;

use std::path::Path;

use opsdeck::Error;
use opsdeck::auth::Role;
use opsdeck::jobs::State;
use opsdeck::ops::{deploy, rollback};
use opsdeck::releases;
use support::sandbox::{self, Sandbox, sh};
use support::webapp::{ada, answer, answer_when_up};

const IMAGE: &str = "git.medlab.host/communityrule/community-rule";

/// `cloudron update --app APP --image IMAGE`: appends its argv (JSON) to
/// `calls`, writes the image to `state`. Anything else fails, like the
/// real CLI given a wrong command.
const CLOUDRON: &str = r#"#!/usr/bin/python3
import json, pathlib, sys
here = pathlib.Path(__file__).parent
with open(here / "calls", "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\n")
args = sys.argv[1:]
if args[:1] != ["update"] or "--image" not in args:
    sys.exit("cloudron: expected `update --app APP --image IMAGE`")
(here / "state").write_text(args[args.index("--image") + 1])
"#;

/// Serves the image in `state` as read at start; a `broken` tag answers 500.
const SERVICE: &str = r#"import http.server, pathlib, sys
image = (pathlib.Path(sys.argv[1]) / "state").read_text().strip()
status = 500 if image.endswith("broken") else 200
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (image + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()
"#;

#[test]
fn command_deploys_roll_back_and_recover_on_a_real_systemd() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.run_test_inside("inside_command_deploys_roll_back_and_recover");
}

/// The stand-in, the service's unit and the `[[app]]` block.
fn community_rule(dir: &Path, port: u16) -> String {
    let cloudron = dir.join("cloudron");
    std::fs::write(&cloudron, CLOUDRON).unwrap();
    sh(&["chmod", "755", cloudron.to_str().unwrap()]);
    std::fs::write(dir.join("service.py"), SERVICE).unwrap();
    std::fs::write(
        "/run/systemd/system/community.service",
        format!(
            "[Service]\nExecStart=/usr/bin/python3 {0}/service.py {0} {port}\n",
            dir.display()
        ),
    )
    .unwrap();
    sh(&["systemctl", "daemon-reload"]);
    format!(
        r#"[[app]]
name = "community"
strategy = "command"
units = ["community.service"]
health = {{ url = "http://127.0.0.1:{port}/", expect = "community-rule:", timeout = "3s" }}
deploy = [ {{ run = ["{}", "update", "--app", "communityrule.info", "--image", "{IMAGE}:{{tag}}"] }} ]
"#,
        cloudron.display()
    )
}

#[ignore = "runs inside the systemd sandbox; started by the test above"]
#[tokio::test]
async fn inside_command_deploys_roll_back_and_recover() {
    let Some(_dir) = sandbox::inside() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let server = support::server::start(&community_rule(dir.path(), port)).await;
    let ctx = &server.ctx;
    let deployed = |tag: &str| format!("{IMAGE}:{tag}");

    // t1, then t2 (through the API): each runs the stand-in with the tag
    // in one word, restarts the unit and probes.
    let job = deploy::request(ctx, &ada(), "community", "t1")
        .await
        .unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    assert_eq!(answer_when_up(port).await, deployed("t1"));
    let token = server.token("ci", Role::Admin).await;
    let accepted = support::server::client()
        .post(server.at("/api/apps/community/deploy"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"ref": "t2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let job = support::server::json(accepted).await["job"]
        .as_i64()
        .unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert_eq!(answer(port).await, deployed("t2"));

    // Rollback: the deploy steps again with t1's values.
    let job = rollback::request(ctx, &ada(), "community", None)
        .await
        .unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert_eq!(answer(port).await, deployed("t1"));

    // t2 again, then a tag whose service fails its health check: the job
    // fails and runs the deploy steps with t2's values, the release it
    // replaced (not t1, the one before).
    let job = deploy::request(ctx, &ada(), "community", "t2")
        .await
        .unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    let job = deploy::request(ctx, &ada(), "community", "t3-broken")
        .await
        .unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Failed, "{output}");
    let summary = ctx.jobs.job(job).await.unwrap().summary.unwrap();
    assert_eq!(
        summary,
        "step \"Health check\" failed; the recovery steps succeeded"
    );
    assert!(
        output.contains("the release this job replaced: release 4 (t2)"),
        "{output}"
    );
    assert_eq!(answer(port).await, deployed("t2"));

    // The stand-in got each image as one word, in order.
    let calls: Vec<Vec<String>> = std::fs::read_to_string(dir.path().join("calls"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let images: Vec<&str> = calls.iter().map(|c| c[4].as_str()).collect();
    let expected: Vec<String> = ["t1", "t2", "t1", "t2", "t3-broken", "t2"]
        .iter()
        .map(|t| deployed(t))
        .collect();
    assert_eq!(images, expected);
    assert!(calls.iter().all(|c| c.len() == 5 && c[..4] == ["update", "--app", "communityrule.info", "--image"]));

    // The release log shows each tag, what it ran with and how it ended.
    let log = releases::list(&ctx.db, "community", 10).await.unwrap();
    let shown: Vec<(&str, &str, &str, String)> = log
        .iter()
        .map(|r| {
            (
                r.kind.as_str(),
                r.git_ref.as_str(),
                r.values["tag"].as_str(),
                r.outcome(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            (
                "deploy",
                "t3-broken",
                "t3-broken",
                "failed, rolled back".into()
            ),
            ("deploy", "t2", "t2", "succeeded".into()),
            ("rollback", "release 1 (t1)", "t1", "succeeded".into()),
            ("deploy", "t2", "t2", "succeeded, later rolled back".into()),
            ("deploy", "t1", "t1", "succeeded".into()),
        ]
    );
    assert_eq!(log[0].values["ref"], "t3-broken");
    assert_eq!(log[0].values["sha"], "");

    // A tag that would read as an option, or holds a shell's words, is
    // refused before anything is queued.
    let before = server.job_count().await;
    for hostile in ["--help", "t1;rm -rf /", "t1\nt2"] {
        let refused = deploy::request(ctx, &ada(), "community", hostile).await;
        assert!(
            matches!(refused, Err(Error::BadRequest(ref m)) if m.contains("is refused")),
            "{hostile:?}: {refused:?}"
        );
    }
    assert_eq!(server.job_count().await, before);
}

/// With `repo` set, a ref is fetched and resolved: `{sha}` is its commit,
/// `{tag}` the ref when it is a git tag and the short SHA otherwise (how
/// the runbook's release script tags an untagged build); "what ships"
/// lists the commits since the live release.
#[tokio::test]
async fn command_with_a_repo_fills_sha_and_tag_and_shows_what_ships() {
    let repos = support::repos::Repos::new();
    let (dump, argv_file) = support::argv_recorder(repos.app.parent().unwrap());
    let deck = support::deck::Deck::start(&format!(
        r#"[[app]]
name = "community"
repo = "{}"
strategy = "command"
deploy = [ {{ run = ["python3", "{}", "{{ref}}", "{{sha}}", "image:{{tag}}"] }} ]
"#,
        repos.app.display(),
        dump.display()
    ))
    .await;
    let ctx = &deck.ctx;
    let owner = support::deck::actor("ada", Role::Owner);
    let v2 = repos.push("version", "v2", "Version 2");
    support::repos::sh_git(&repos.author, &["tag", "v2.0"]);
    support::repos::sh_git(&repos.author, &["push", "-q", "origin", "v2.0"]);
    let job = deploy::request(ctx, &owner, "community", "v2.0")
        .await
        .unwrap();
    let (output, state) = deck.wait(job).await;
    assert_eq!(state, State::Succeeded, "{output:#?}");

    let v3 = repos.push("version", "v3", "Version 3");
    let ships = opsdeck::ops::what_ships::preview(ctx, &owner, "community", "main")
        .await
        .unwrap();
    assert_eq!(
        ships.current.as_ref().map(|s| s.as_str()),
        Some(v2.as_str())
    );
    let subjects: Vec<&str> = ships.commits.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(subjects, ["Version 3"]);
    let job = deploy::request(ctx, &owner, "community", "main")
        .await
        .unwrap();
    let (output, state) = deck.wait(job).await;
    assert_eq!(state, State::Succeeded, "{output:#?}");

    let calls = support::recorded_argvs(&argv_file);
    assert_eq!(
        calls,
        [
            vec!["v2.0".to_owned(), v2.clone(), "image:v2.0".into()],
            vec!["main".to_owned(), v3.clone(), format!("image:{}", &v3[..7])],
        ]
    );
    let log = releases::list(&ctx.db, "community", 10).await.unwrap();
    assert_eq!(
        (log[0].sha.as_str(), log[1].sha.as_str()),
        (v3.as_str(), v2.as_str())
    );
}

/// Without `repo` the app page's Deploy form names a tag (no "what ships":
/// there are no commits) and works without JavaScript; the release
/// history lists tags.
#[tokio::test]
async fn the_page_deploys_a_tag_without_a_repository() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let server = support::server::start(&format!(
        r#"[[app]]
name = "community"
environment = "staging"
strategy = "command"
deploy = [ {{ run = ["cp", "/dev/null", "{}.{{tag}}"] }} ]
"#,
        state.display()
    ))
    .await;
    let (cookie, csrf) = server.session("ada", Role::Admin).await;
    let page = server
        .browse("/apps/community", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<label for="deploy-ref">Tag</label>"#),
        "{page}"
    );
    assert!(!page.contains("What ships?"), "{page}");
    let res = support::server::client()
        .post(server.at("/apps/community/deploy"))
        .header("cookie", &cookie)
        .header("origin", &server.url)
        .form(&[("csrf", csrf.as_str()), ("ref", "0.1.9")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap();
    let job: i64 = location.trim_start_matches("/jobs/").parse().unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert!(dir.path().join("state.0.1.9").exists());
    let page = server
        .browse("/apps/community", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("<code>0.1.9</code>"), "{page}");
}

/// `[[app.deploy_param]]`: values asked for at each deploy reach the
/// deploy steps as one argv word each, through the API and the page's
/// Deploy form; refused values are 400 and a `denied` audit row, nothing
/// queued; a rollback runs with the values the release was deployed with.
#[tokio::test]
async fn deploy_parameters_reach_the_steps_as_one_word_and_refusals_are_denied() {
    use support::server::{assert_refused, job_of, json};

    let dir = tempfile::tempdir().unwrap();
    let (dump, argv) = support::argv_recorder(dir.path());
    let server = support::server::start(&format!(
        r#"[[app]]
name = "community"
environment = "staging"
strategy = "command"
deploy = [ {{ run = ["python3", "{}", "image:{{tag}}", "--note", "{{note}}", "{{region}}"] }} ]

[[app.deploy_param]]
name = "note"
label = "Why"
pattern = "[A-Za-z0-9][A-Za-z0-9 ./-]*"
required = true

[[app.deploy_param]]
name = "region"
kind = "choice"
choices = ["eu", "us"]
default = "eu"
"#,
        dump.display()
    ))
    .await;
    let ctx = &server.ctx;
    let token = server.token("ci", Role::Admin).await;
    let api = "/api/apps/community/deploy";
    let body = |tag: &str, note: &str, region: &str| serde_json::json!({"ref": tag, "params": {"note": note, "region": region}});
    let res = server
        .post_json(api, &token, &body("t1", "hot fix 2", "us"))
        .await;
    assert_eq!(res.status(), 202);
    let job = json(res).await["job"].as_i64().unwrap();
    let (state, output) = server.outcome(job).await;
    assert_eq!(state, State::Succeeded, "{output}");
    assert_eq!(
        support::recorded_argvs(&argv),
        [["image:t1", "--note", "hot fix 2", "us"]]
    );
    // The job's title and plan show the values, and so do its request row
    // and the release log.
    let shown = ctx.jobs.job(job).await.unwrap();
    assert_eq!(shown.what(), "deploy t1 (note='hot fix 2' region=us)");
    assert_eq!(shown.steps[0].title, "Check the parameters");
    assert!(
        shown.steps[1].title.ends_with("--note 'hot fix 2' us"),
        "{:?}",
        shown.steps[1].title
    );
    let detail = server.request_detail(job).await;
    assert!(detail.contains("note='hot fix 2' region=us"), "{detail}");
    let log = releases::list(&ctx.db, "community", 1).await.unwrap();
    assert_eq!(log[0].values["note"], "hot fix 2");

    // The page's Deploy form (without JavaScript) asks for them too.
    let (cookie, csrf) = server.session("ada", Role::Admin).await;
    let session = (cookie.as_str(), csrf.as_str());
    let page = server.page("/apps/community", &cookie).await;
    assert!(
        page.contains(r#"<label for="deploy-param-note">Why</label>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<select id="deploy-param-region" name="param.region">"#),
        "{page}"
    );
    let form = "/apps/community/deploy";
    let res = server
        .post_form(
            form,
            session,
            &[("ref", "t2"), ("param.note", "from the page")],
        )
        .await;
    assert_eq!(server.finished(job_of(&res)).await, State::Succeeded);
    assert_eq!(
        support::recorded_argvs(&argv)[1],
        ["image:t2", "--note", "from the page", "eu"]
    );

    // A rollback runs the steps with the values t1 was deployed with.
    let job = rollback::request(ctx, &ada(), "community", None)
        .await
        .unwrap();
    assert_eq!(server.finished(job).await, State::Succeeded);
    assert_eq!(
        support::recorded_argvs(&argv)[2],
        ["image:t1", "--note", "hot fix 2", "us"]
    );

    // Hostile values, through the API and through the form: 400, a
    // denied audit row each, nothing queued.
    let before = server.job_count().await;
    for (note, region, says) in [
        ("x; rm -rf /", "eu", "does not match"),
        ("--help", "eu", "does not match"),
        ("a\nb", "eu", "line break"),
        ("fine", "mars", "not one of the choices"),
    ] {
        let res = server
            .post_json(api, &token, &body("t3", note, region))
            .await;
        assert_refused(res, says).await;
        let fields = [
            ("ref", "t3"),
            ("param.note", note),
            ("param.region", region),
        ];
        assert_refused(server.post_form(form, session, &fields).await, says).await;
    }
    assert_eq!(server.job_count().await, before);
    server
        .assert_denied("deploy.params", 8, r#""ref":"t3""#)
        .await;
    assert_eq!(support::recorded_argvs(&argv).len(), 3);
}
