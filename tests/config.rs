//! `opsdeck.toml` validation: every mistake is reported at its line and
//! key, all of them at once, and `opsdeck check` says so with its exit code.

use std::path::{Path, PathBuf};
use std::process::Command;

use opsdeck::auth::Role;
use opsdeck::config::{Config, ConfigError};

/// DESIGN.md's example config, verbatim.
const DESIGN_EXAMPLE: &str = r#"[server]
listen = "127.0.0.1:8080"
public_url = "https://ops.example.org"
data_dir = "/var/lib/opsdeck"            # opsdeck.db lives here

[auth]
gitea_url = "https://git.example.org/"
client_id = "…"
client_secret_file = "/etc/opsdeck/client_secret"
dev_login = false

[roles]
owner = ["user:ben"]
admin = ["team:wiggleverse:admins"]
operator = ["org:wiggleverse"]

[[app]]
name = "rfc-app"
environment = "production"
host = "local"                            # or "ssh://deploy@host:22"
repo = "/opt/rfc-app"
branch = "main"
strategy = "checkout"                     # or "releases" (then: path, keep, shared)
units = ["rfc-app.service"]
env_file = "/opt/rfc-app/backend/.env"
health = { url = "http://127.0.0.1:8000/api/health", timeout = "30s" }
build = [ { run = ["npm", "ci"], cwd = "frontend" } ]
logs = { units = ["rfc-app.service"] }

[[app.secret]]
name = "SECRET_KEY"
generate = "hex:32"

[[app.sweep]]
name = "db-backup"
kind = "sqlite-backup"
database = "/opt/rfc-app/backend/data/rfc-app.db"
dir = "/opt/rfc-app/backend/data/backups"
keep = 30
schedule = "0 3 * * *"

[[app.action]]
name = "cleanup-sessions"
run = ["wppackages", "cleanup-sessions"]

[[app]]
name = "wppackages"
repo = "/srv/wppackages/repo"             # the git repository releases are made from
branch = "main"
strategy = "releases"
path = "/srv/wppackages"                  # releases/<ts>-<sha7>/ and current live here
keep = 5
shared = [".env", "storage"]              # linked from <path>/shared into each release
units = ["wppackages.service"]
health = { url = "http://127.0.0.1:8080/healthz" }
auto_deploy = "main"                      # Gitea push webhook deploys this branch
"#;

fn parse(toml: &str) -> Result<Config, Vec<ConfigError>> {
    Config::parse(toml, Path::new("opsdeck.toml")).map_err(|e| e.errors)
}

fn errors(toml: &str) -> Vec<ConfigError> {
    match parse(toml) {
        Ok(_) => panic!("accepted a bad config:\n{toml}"),
        Err(errors) => errors,
    }
}

/// The config is rejected with exactly one error, at `line`, naming `key`,
/// whose message contains `says`.
#[track_caller]
fn rejects(toml: &str, line: usize, key: &str, says: &str) {
    let errors = errors(toml);
    let all: Vec<String> = errors
        .iter()
        .map(|e| e.display_in(Path::new("opsdeck.toml")))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "expected one error, got:\n{}",
        all.join("\n")
    );
    let e = &errors[0];
    assert_eq!((e.line, e.key.as_str()), (line, key), "{}", all[0]);
    assert!(
        e.message.contains(says),
        "{:?} does not say {says:?}",
        e.message
    );
    assert!(
        all[0].starts_with(&format!("opsdeck.toml:{line}:")),
        "{}",
        all[0]
    );
    assert!(all[0].contains(key), "{}", all[0]);
}

/// A valid app block to build mistakes around.
const APP: &str = r#"
[[app]]
name = "web"
repo = "/srv/web"
units = ["web.service"]
"#;

#[test]
fn the_design_example_passes() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("client_secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let toml = DESIGN_EXAMPLE.replace("/etc/opsdeck/client_secret", secret.to_str().unwrap());
    let config = parse(&toml).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(config.apps.len(), 2);
    let rfc = config.app("rfc-app").unwrap();
    assert_eq!(rfc.health[0].timeout.as_secs(), 30);
    assert_eq!(
        rfc.secrets[0]
            .generate
            .parse::<opsdeck::config::Generator>(),
        Ok(opsdeck::config::Generator::Hex(32))
    );
    assert_eq!(config.client_secret().unwrap().as_deref(), Some("s3cret"));
    let warnings = config.warnings().join("\n");
    assert!(
        warnings.contains("app \"wppackages\" → auto_deploy"),
        "{warnings}"
    );
    assert!(
        warnings.contains("/srv/wppackages/repo does not exist yet"),
        "{warnings}"
    );
}

#[test]
fn an_empty_config_is_valid_with_defaults() {
    let config = parse("").unwrap();
    assert_eq!(config.server.listen, "127.0.0.1:8080");
    assert_eq!(config.jobs.step_timeout.as_secs(), 900);
    assert!(
        config.warnings()[0].contains("nobody can sign in"),
        "{:?}",
        config.warnings()
    );
}

#[test]
fn a_syntax_error_is_the_one_error_with_its_line() {
    rejects(
        "[server]\nlisten = \"127.0.0.1:8080\"\npublic_url = https://x\n",
        3,
        "",
        "TOML syntax error",
    );
}

#[test]
fn an_unknown_key_suggests_the_known_one() {
    rejects(
        "[server]\nlisen = \"127.0.0.1:8080\"\n",
        2,
        "server.lisen",
        "did you mean `listen`?",
    );
    rejects(
        "[sever]\nlisten = \"127.0.0.1:8080\"\n",
        1,
        "sever",
        "did you mean `server`?",
    );
}

#[test]
fn a_wrong_type_says_what_was_expected_and_found() {
    rejects(
        "[server]\nmax_body_bytes = \"big\"\n",
        2,
        "server.max_body_bytes",
        "expected a whole number ≥ 0, found the string \"big\"",
    );
    rejects(
        "[auth]\n\ndev_login = \"yes\"\n",
        3,
        "auth.dev_login",
        "expected true or false",
    );
}

#[test]
fn listen_and_urls_are_checked() {
    rejects(
        "[server]\nlisten = \"localhost\"\n",
        2,
        "server.listen",
        "expected an IP address and port",
    );
    rejects(
        "[server]\npublic_url = \"ops.example.org\"\n",
        2,
        "server.public_url",
        "http:// or https:// URL",
    );
}

#[test]
fn public_url_is_the_root_and_loses_its_trailing_slash() {
    rejects(
        "[server]\npublic_url = \"https://example.org/ops\"\n",
        2,
        "server.public_url",
        "opsdeck cannot live under a path",
    );
    let config = parse("[server]\npublic_url = \"https://ops.example.org/\"\n").unwrap();
    assert_eq!(config.server.public_url, "https://ops.example.org");
}

#[test]
fn dev_login_refuses_a_public_listen_address() {
    rejects(
        "[server]\nlisten = \"0.0.0.0:8080\"\n[auth]\ndev_login = true\n",
        4,
        "auth.dev_login",
        "loopback",
    );
}

#[test]
fn a_bad_role_entry_is_reported_at_its_own_line() {
    let toml = "[roles]\nowner = [\n  \"user:ben\",\n  \"group:ops\",\n]\n";
    rejects(
        toml,
        4,
        "roles.owner",
        "expected \"user:<login>\", \"org:<org>\" or \"team:<org>:<team>\", found \"group:ops\"",
    );
}

#[test]
fn permissions_name_known_actions_and_roles() {
    let toml = format!("{APP}permissions = {{ deploi = \"admin\" }}\n");
    rejects(
        &toml,
        6,
        "app \"web\" → permissions.deploi",
        "did you mean `deploy`?",
    );
    let toml = format!("{APP}permissions = {{ deploy = \"boss\" }}\n");
    rejects(
        &toml,
        6,
        "app \"web\" → permissions.deploy",
        "one of \"viewer\", \"operator\", \"admin\" or \"owner\"",
    );
}

#[test]
fn a_single_bracket_array_table_says_how_to_write_it() {
    rejects(
        "[app]\nname = \"web\"\n",
        1,
        "app",
        "expected an array of tables (`[[app]]`, not `[app]`), found a table",
    );
    rejects(
        &format!("{APP}\n[app.action]\nname = \"x\"\nrun = [\"true\"]\n"),
        7,
        "app \"web\" → action",
        "(`[[app.action]]`, not `[app.action]`)",
    );
}

#[test]
fn an_app_without_a_name_is_reported_at_its_table() {
    rejects(
        "\n[[app]]\nrepo = \"/srv/x\"\n",
        2,
        "app #1 → name",
        "missing required key `name`",
    );
}

#[test]
fn app_names_are_unique_and_safe() {
    let toml = format!("{APP}{APP}");
    rejects(
        &toml,
        8,
        "app #2 → name",
        "there is already an app named \"web\"",
    );
    rejects(
        "[[app]]\nname = \"../web\"\nrepo = \"/srv/x\"\n",
        2,
        "app \"../web\" → name",
        "lowercase letters",
    );
}

#[test]
fn a_strategy_needs_its_keys() {
    rejects(
        &APP.replace("repo = \"/srv/web\"\n", "strategy = \"checkout\"\n"),
        2,
        "app \"web\" → repo",
        "strategy \"checkout\" needs `repo`",
    );
    rejects(
        &format!("{APP}strategy = \"releases\"\n"),
        2,
        "app \"web\" → path",
        "strategy \"releases\" needs `path`",
    );
    rejects(
        &format!("{APP}strategy = \"command\"\n"),
        2,
        "app \"web\" → deploy",
        "needs `deploy`",
    );
    rejects(
        &format!("{APP}strategy = \"release\"\n"),
        6,
        "app \"web\" → strategy",
        "did you mean `releases`?",
    );
    rejects(
        &format!("{APP}keep = 0\n"),
        6,
        "app \"web\" → keep",
        "at least 1",
    );
}

#[test]
fn command_steps_name_only_the_values_opsdeck_fills() {
    let command = APP.replace("repo = \"/srv/web\"\n", "strategy = \"command\"\n");
    let with = |steps: &str| format!("{command}{steps}\n");
    assert!(
        parse(&with(
            r#"deploy = [ { run = ["c", "--image", "r:{tag}", "{ref}", "{}"] } ]"#
        ))
        .is_ok()
    );
    rejects(
        &with(r#"deploy = [ { run = ["c", "r:{tga}"] } ]"#),
        6,
        "app \"web\" → deploy #1 → run",
        "unknown placeholder {tga}; expected {ref}, {sha}, {tag} or a [[app.deploy_param]] name",
    );
    rejects(
        &with("rollback = [ { run = [\"c\", \"{sha}\"] } ]\ndeploy = [ { run = [\"c\"] } ]"),
        6,
        "app \"web\" → rollback #1 → run",
        "{sha} is the commit a ref resolves to, and the app has no `repo`",
    );
    rejects(
        &with(r#"deploy = [ { run = ["c"], cwd = "scripts" } ]"#),
        6,
        "app \"web\" → deploy #1 → cwd",
        "relative `cwd` is inside the app's `repo`, and the app has none",
    );
    rejects(
        &format!("{APP}deploy = [ {{ run = [\"c\"] }} ]\n"),
        6,
        "app \"web\" → deploy",
        "these steps are for strategy \"command\"",
    );
}

#[test]
fn action_params_are_checked_when_the_config_loads() {
    let action = format!(
        "{APP}\n[[app.action]]\nname = \"promote\"\nrun = [\"promote\", \"{{build}}\"]\n\n[[app.action.param]]\nname = \"build\"\n"
    );
    assert!(
        parse(&format!(
            "{action}pattern = \"b-[0-9]+\"\ndefault = \"b-1\"\n"
        ))
        .is_ok()
    );
    rejects(
        &format!("{action}pattern = \"b-[0-9\"\n"),
        13,
        "app \"web\" → action \"promote\" → param \"build\" → pattern",
        "is not a regular expression",
    );
    rejects(
        &format!("{action}kind = \"choice\"\n"),
        11,
        "app \"web\" → action \"promote\" → param \"build\"",
        "a `choice` needs `choices` or `choices_from`",
    );
    rejects(
        &format!("{action}kind = \"choice\"\nchoices = [\"b-1\"]\ndefault = \"b-2\"\n"),
        15,
        "app \"web\" → action \"promote\" → param \"build\" → default",
        "not one of the choices",
    );
    rejects(
        &format!("{action}default = \"--all\"\n"),
        13,
        "app \"web\" → action \"promote\" → param \"build\" → default",
        "starts with \"-\"",
    );
    rejects(
        &action.replace("{build}", "{biuld}"),
        9,
        "app \"web\" → action \"promote\" → run",
        "{biuld} names no parameter of this action",
    );
}

#[test]
fn sweep_and_deploy_params_are_checked_when_the_config_loads() {
    let sweep = format!(
        "{APP}\n[[app.sweep]]\nname = \"pin\"\nkind = \"command\"\nrun = [\"pin\", \"{{branch}}\"]\n"
    );
    let param = "\n[[app.sweep.param]]\nname = \"branch\"\nrequired = true\n";
    assert!(parse(&format!("{sweep}{param}")).is_ok());
    rejects(
        &format!("{sweep}schedule = \"0 3 * * *\"\n{param}"),
        13,
        "app \"web\" → sweep \"pin\" → param \"branch\"",
        "the sweep runs on a `schedule`, and nobody is there to give a value",
    );
    assert!(
        parse(&format!(
            "{sweep}schedule = \"0 3 * * *\"\n{param}default = \"main\"\n"
        ))
        .is_ok()
    );
    rejects(
        &format!("{sweep}{param}").replace("{branch}", "{brnach}"),
        10,
        "app \"web\" → sweep \"pin\" → run",
        "{brnach} names no parameter of this sweep",
    );
    rejects(
        &format!("{sweep}env_file = true\n"),
        11,
        "app \"web\" → sweep \"pin\" → env_file",
        "the app has no `env_file`",
    );
    rejects(
        &format!("{sweep}timeout = \"0s\"\n"),
        11,
        "app \"web\" → sweep \"pin\" → timeout",
        "longer than 0",
    );
    rejects(
        &format!(
            "{APP}\n[[app.sweep]]\nname = \"old\"\nkind = \"job-output\"\ndays = 3\ncwd = \"/srv\"\n"
        ),
        11,
        "app \"web\" → sweep \"old\" → cwd",
        "`cwd` does not apply to a \"job-output\" sweep",
    );
    // A commit is resolved in the app's repo; a release has no default.
    let action = "\n[[app.action]]\nname = \"pin\"\nrun = [\"pin\", \"{at}\"]\n\n[[app.action.param]]\nname = \"at\"\n";
    assert!(
        parse(&format!(
            "{APP}{action}kind = \"commit\"\ndefault = \"main\"\n"
        ))
        .is_ok()
    );
    rejects(
        &format!("[[app]]\nname = \"web\"\n{action}kind = \"commit\"\n"),
        10,
        "app \"web\" → action \"pin\" → param \"at\" → kind",
        "a `commit` is resolved in the app's `repo`, and the app has none",
    );
    rejects(
        &format!("{APP}{action}kind = \"release\"\ndefault = \"v1\"\n"),
        14,
        "app \"web\" → action \"pin\" → param \"at\" → default",
        "cannot have a default",
    );
    rejects(
        &format!("{APP}{action}kind = \"backup\"\n"),
        11,
        "app \"web\" → action \"pin\" → param \"at\"",
        "web has no \"sqlite-backup\" or \"postgres-backup\" sweep whose backups to offer",
    );
    // Deploy parameters: strategy "command", not named like its own
    // values, a default when pushes deploy.
    let command = APP.replace("repo = \"/srv/web\"\n", "strategy = \"command\"\n");
    let deploy = format!(
        "{command}deploy = [ {{ run = [\"c\", \"r:{{tag}}\", \"{{note}}\"] }} ]\n\n[[app.deploy_param]]\nname = \"note\"\nrequired = true\n"
    );
    assert!(parse(&deploy).is_ok());
    rejects(
        &deploy
            .replace("name = \"note\"", "name = \"tag\"")
            .replace("\"{note}\"", "\"{tag}\""),
        9,
        "app \"web\" → deploy_param \"tag\" → name",
        "{tag} is one of the deploy's own values",
    );
    rejects(
        &deploy.replace("{note}", "{nope}"),
        6,
        "app \"web\" → deploy #1 → run",
        "unknown placeholder {nope}",
    );
    let dir = tempfile::tempdir().unwrap();
    let hook = secret_file(dir.path(), "s3cret\n", 0o600);
    let pushed = format!(
        "strategy = \"command\"\nauto_deploy = \"main\"\nwebhook_secret_file = {:?}\n",
        hook.display().to_string()
    );
    rejects(
        &deploy.replace("strategy = \"command\"\n", &pushed),
        10,
        "app \"web\" → deploy_param \"note\"",
        "the app deploys on push (`auto_deploy`), and nobody is there to give a value",
    );
    rejects(
        &format!("{APP}\n[[app.deploy_param]]\nname = \"note\"\n"),
        7,
        "app \"web\" → deploy_param",
        "deploy parameters fill the `deploy` steps of strategy \"command\"",
    );
}

#[test]
fn env_file_true_needs_an_env_file_on_this_machine() {
    let action = "\n[[app.action]]\nname = \"run\"\nrun = [\"wp\", \"cron\"]\nenv_file = true\n";
    rejects(
        &format!("{APP}{action}"),
        10,
        "app \"web\" → action \"run\" → env_file",
        "the app has no `env_file`",
    );
    let with_env = APP.replace("repo = ", "env_file = \"/srv/web/.env\"\nrepo = ");
    assert!(parse(&format!("{with_env}{action}")).is_ok());
    rejects(
        &format!(
            "{}{action}",
            with_env.replace(
                "repo = ",
                "host = \"ssh://deploy@web.example.org\"\nrepo = "
            )
        ),
        12,
        "app \"web\" → action \"run\" → env_file",
        "works for apps on this machine",
    );
}

#[test]
fn an_app_without_repo_nor_strategy_is_not_deployed_but_valid() {
    let app = APP.replace("repo = \"/srv/web\"\n", "");
    let action = format!("{app}\n[[app.action]]\nname = \"hello\"\nrun = [\"true\"]\n");
    let config = parse(&action).unwrap();
    assert!(config.apps[0].repo.is_none());
    rejects(
        &format!("{action}cwd = \"scripts\"\n"),
        9,
        "app \"web\" → action \"hello\" → cwd",
        "relative `cwd` is inside the app's `repo`, and the app has none",
    );
    assert!(parse(&format!("{action}cwd = \"/srv/web\"\n")).is_ok());
}

#[test]
fn units_look_like_systemd_units() {
    rejects(
        &APP.replace("web.service", "web service"),
        5,
        "app \"web\" → units",
        "systemd unit name",
    );
}

#[test]
fn health_checks_need_an_http_url_and_a_duration() {
    let toml =
        format!("{APP}health = {{ url = \"http://127.0.0.1:8000/\", timeout = \"30 seconds\" }}\n");
    rejects(
        &toml,
        6,
        "app \"web\" → health.timeout",
        "expected a duration like \"30s\"",
    );
    let toml = format!("{APP}\n[app.health]\nurl = \"127.0.0.1:8000/health\"\n");
    rejects(
        &toml,
        8,
        "app \"web\" → health.url",
        "http:// or https:// URL",
    );
}

#[test]
fn health_may_be_one_table_or_a_list_each_checked_at_its_line() {
    let one = parse(&format!(
        "{APP}health = {{ url = \"http://127.0.0.1:8000/\" }}\n"
    ))
    .unwrap();
    assert_eq!(one.apps[0].health.len(), 1);
    let list = format!(
        "{APP}\n[[app.health]]\nurl = \"http://127.0.0.1:8000/\"\n\n[[app.health]]\nname = \"api\"\nurl = \"http://127.0.0.1:8000/api\"\nexpect = \"ok\"\n"
    );
    let config = parse(&list).unwrap_or_else(|e| panic!("{e:?}"));
    let names: Vec<&str> = config.apps[0].health.iter().map(|h| h.name()).collect();
    assert_eq!(names, ["http://127.0.0.1:8000/", "api"]);
    let inline = parse(&format!(
        "{APP}health = [{{ url = \"http://127.0.0.1:8000/\" }}, {{ url = \"http://127.0.0.1:8000/api\", timeout = \"5s\" }}]\n"
    ))
    .unwrap();
    assert_eq!(inline.apps[0].health[1].timeout.as_secs(), 5);

    rejects(
        &list.replace("http://127.0.0.1:8000/api", "127.0.0.1:8000/api"),
        12,
        "app \"web\" → health \"api\" → url",
        "http:// or https:// URL",
    );
    rejects(
        &format!(
            "{APP}health = [{{ url = \"http://127.0.0.1:8000/\" }}, {{ url = \"http://127.0.0.1:8000/api\", timeout = \"0s\" }}]\n"
        ),
        6,
        "app \"web\" → health #2 → timeout",
        "longer than 0",
    );
    rejects(
        &format!(
            "{APP}health = [{{ url = \"http://127.0.0.1:8000/\" }}, {{ url = \"http://127.0.0.1:8000/\" }}]\n"
        ),
        6,
        "app \"web\" → health #2",
        "already a health check called",
    );
}

#[test]
fn a_backup_parameter_names_a_sqlite_backup_sweep() {
    let sweep = |name: &str| {
        format!(
            "\n[[app.sweep]]\nname = \"{name}\"\nkind = \"sqlite-backup\"\ndatabase = \"/srv/web/db.sqlite\"\ndir = \"/srv/web/backups\"\nkeep = 3\n"
        )
    };
    let action = |param: &str| {
        format!(
            "\n[[app.action]]\nname = \"inspect\"\nrun = [\"sqlite3\", \"{{snapshot}}\", \".tables\"]\n\n[[app.action.param]]\nname = \"snapshot\"\nkind = \"backup\"\n{param}"
        )
    };
    // The app's only sqlite-backup sweep, or the one named.
    let only = format!("{APP}{}{}", sweep("db"), action(""));
    parse(&only).unwrap_or_else(|e| panic!("{e:?}"));
    let two = format!("{APP}{}{}", sweep("db"), sweep("other"));
    parse(&format!("{two}{}", action("sweep = \"other\"\n"))).unwrap_or_else(|e| panic!("{e:?}"));
    rejects(
        &format!("{two}{}", action("")),
        25,
        "app \"web\" → action \"inspect\" → param \"snapshot\"",
        "several backup sweeps; name one",
    );
    rejects(
        &format!("{two}{}", action("sweep = \"nope\"\n")),
        28,
        "app \"web\" → action \"inspect\" → param \"snapshot\" → sweep",
        "no \"sqlite-backup\" or \"postgres-backup\" sweep named \"nope\"",
    );
    rejects(
        &format!("{APP}{}", action("")),
        11,
        "app \"web\" → action \"inspect\" → param \"snapshot\"",
        "no \"sqlite-backup\" or \"postgres-backup\" sweep",
    );
    rejects(
        &format!("{only}default = \"x\"\n"),
        21,
        "app \"web\" → action \"inspect\" → param \"snapshot\" → default",
        "has no default",
    );
}

#[test]
fn argv_is_never_empty() {
    let toml = format!("{APP}build = [\n  {{ run = [\"npm\", \"ci\"] }},\n  {{ run = [] }},\n]\n");
    rejects(&toml, 8, "app \"web\" → build #2 → run", "found no program");
    let toml = format!("{APP}\n[[app.action]]\nname = \"hello\"\n");
    rejects(
        &toml,
        7,
        "app \"web\" → action \"hello\" → run",
        "missing required key `run`",
    );
}

#[test]
fn secrets_have_env_names_and_sane_generators() {
    let app = format!("{APP}env_file = \"/srv/web/.env\"\n");
    rejects(
        &format!("{app}\n[[app.secret]]\nname = \"SECRET-KEY\"\ngenerate = \"hex:32\"\n"),
        9,
        "app \"web\" → secret \"SECRET-KEY\" → name",
        "environment variable name",
    );
    rejects(
        &format!("{app}\n[[app.secret]]\nname = \"KEY\"\ngenerate = \"hex:8\"\n"),
        10,
        "app \"web\" → secret \"KEY\" → generate",
        "8 is too few",
    );
    rejects(
        &format!("{app}\n[[app.secret]]\nname = \"KEY\"\ngenerate = \"uuid\"\n"),
        10,
        "app \"web\" → secret \"KEY\" → generate",
        "\"hex:N\", \"base64url:N\" or \"alnum:N\"",
    );
    let twice = format!(
        "{app}\n[[app.secret]]\nname = \"KEY\"\ngenerate = \"hex:32\"\n\n[[app.secret]]\nname = \"KEY\"\ngenerate = \"alnum:40\"\n"
    );
    rejects(
        &twice,
        13,
        "app \"web\" → secret #2 → name",
        "already a secret named \"KEY\"",
    );
    rejects(
        &format!("{APP}\n[[app.secret]]\nname = \"KEY\"\ngenerate = \"hex:32\"\n"),
        7,
        "app \"web\" → secret \"KEY\"",
        "set `env_file`",
    );
}

#[test]
fn a_gitea_webhook_secret_names_owner_and_repo() {
    let toml = format!(
        "[auth]\ngitea_url = \"https://git.example.org/\"\nclient_id = \"x\"\n{APP}env_file = \"/srv/web/.env\"\n\n[[app.secret]]\nname = \"HOOK\"\ngenerate = \"hex:32\"\ngitea_webhook = {{ repo = \"just-a-name\" }}\n"
    );
    let errors = errors(&toml);
    let messages: Vec<String> = errors
        .iter()
        .map(|e| format!("{}:{} {}", e.line, e.key, e.message))
        .collect();
    assert!(messages.iter().any(|m| m.starts_with("14:app \"web\" → secret \"HOOK\" → gitea_webhook.repo expected a Gitea repository as \"owner/name\"")), "{messages:#?}");
}

#[test]
fn sweeps_need_what_their_kind_needs() {
    let sweep = |body: &str| format!("{APP}\n[[app.sweep]]\nname = \"backup\"\n{body}");
    rejects(
        &sweep("kind = \"sqlite-backup\"\ndatabase = \"/srv/web/db.sqlite\"\nkeep = 7\n"),
        7,
        "app \"web\" → sweep \"backup\" → dir",
        "needs `dir`",
    );
    rejects(
        &sweep("kind = \"sqlite\"\n"),
        9,
        "app \"web\" → sweep \"backup\" → kind",
        "did you mean `sqlite-backup`?",
    );
    rejects(
        &sweep("kind = \"releases\"\n"),
        9,
        "app \"web\" → sweep \"backup\" → kind",
        "strategy to be \"releases\"",
    );
    rejects(
        &sweep("kind = \"command\"\nrun = [\"true\"]\ndays = 3\n"),
        11,
        "app \"web\" → sweep \"backup\" → days",
        "does not apply to a \"command\" sweep",
    );
    rejects(
        &sweep("kind = \"command\"\n"),
        7,
        "app \"web\" → sweep \"backup\" → run",
        "needs `run`",
    );
}

#[test]
fn a_postgres_backup_sweep_takes_a_name_or_connection_string_never_a_password() {
    let sweep = |body: &str| {
        format!(
            "{APP}\n[[app.sweep]]\nname = \"db\"\nkind = \"postgres-backup\"\ndir = \"/var/backups/sitg\"\nkeep = 14\n{body}"
        )
    };
    for database in [
        "sitg",
        "host=/run/postgresql dbname=sitg",
        "postgresql:///sitg",
    ] {
        let ok = sweep(&format!(
            "database = \"{database}\"\npassfile = \"/etc/sitg/pgpass\"\n"
        ));
        parse(&ok).unwrap_or_else(|e| panic!("{database}: {e:?}"));
    }
    rejects(
        &sweep("database = \"host=/run/postgresql dbname=sitg password=hunter2\"\n"),
        12,
        "app \"web\" → sweep \"db\" → database",
        "put it in a PGPASSFILE",
    );
    rejects(
        &sweep("database = \"postgresql://sitg:hunter2@localhost/sitg\"\n"),
        12,
        "app \"web\" → sweep \"db\" → database",
        "visible to every user of the host",
    );
    rejects(
        &sweep("database = \"sitg\"\npassfile = \"pgpass\"\n"),
        13,
        "app \"web\" → sweep \"db\" → passfile",
        "expected an absolute path",
    );
    rejects(
        &sweep(""),
        7,
        "app \"web\" → sweep \"db\" → database",
        "a \"postgres-backup\" sweep needs `database`, the database name or libpq connection string",
    );
    rejects(
        &format!(
            "{APP}\n[[app.sweep]]\nname = \"db\"\nkind = \"sqlite-backup\"\ndatabase = \"/srv/web/db.sqlite\"\ndir = \"/srv/web/backups\"\nkeep = 3\npassfile = \"/etc/pgpass\"\n"
        ),
        13,
        "app \"web\" → sweep \"db\" → passfile",
        "`passfile` does not apply to a \"sqlite-backup\" sweep",
    );
    rejects(
        &sweep("database = \"sitg\"\nkeep = 0\n").replace("keep = 14\n", ""),
        12,
        "app \"web\" → sweep \"db\" → keep",
        "a \"postgres-backup\" sweep keeps at least the backup it makes",
    );
}

#[test]
fn schedules_are_five_field_cron_in_a_real_time_zone() {
    let sweep = |body: &str| {
        format!(
            "{APP}\n[[app.sweep]]\nname = \"tidy\"\nkind = \"command\"\nrun = [\"true\"]\n{body}"
        )
    };
    rejects(
        &sweep("schedule = \"0 3 * *\"\n"),
        11,
        "app \"web\" → sweep \"tidy\" → schedule",
        "5-field cron",
    );
    rejects(
        &sweep("schedule = \"0 25 * * *\"\n"),
        11,
        "app \"web\" → sweep \"tidy\" → schedule",
        "invalid cron schedule",
    );
    rejects(
        &sweep("schedule = \"0 3 * * *\"\ntimezone = \"Europe/Berlinn\"\n"),
        12,
        "app \"web\" → sweep \"tidy\" → timezone",
        "IANA time zone",
    );
    let ok = parse(&sweep(
        "schedule = \"30 2 * * 1-5\"\ntimezone = \"Europe/Berlin\"\n",
    ))
    .unwrap();
    let tidy = &ok.apps[0].sweeps[0];
    assert!(opsdeck::config::parse_schedule(tidy.schedule.as_deref().unwrap()).is_ok());
}

#[test]
fn hosts_are_local_ssh_urls_or_named_tables() {
    rejects(
        &format!("{APP}host = \"ssh://-oProxyCommand=x@h\"\n"),
        6,
        "app \"web\" → host",
        "ssh://user@host[:port]",
    );
    rejects(
        &format!("{APP}host = \"web1\"\n"),
        6,
        "app \"web\" → host",
        "there is no [hosts.web1] table",
    );
    let named = format!(
        "[hosts.web1]\naddress = \"deploy@10.0.0.5:2222\"\nknown_hosts = \"/etc/opsdeck/known_hosts\"\n{APP}host = \"web1\"\n"
    );
    let config = parse(&named).unwrap();
    assert_eq!(
        config.hosts["web1"]
            .address
            .parse::<opsdeck::config::SshTarget>()
            .unwrap()
            .port,
        2222
    );
    rejects(
        "[hosts.web1]\naddress = \"10.0.0.5\"\n",
        2,
        "hosts.web1.address",
        "ssh://user@host[:port]",
    );
}

#[test]
fn three_mistakes_are_all_reported_in_file_order() {
    let toml = format!(
        "[server]\nlisten = \"nowhere\"\n{APP}strategy = \"blue-green\"\n\n[[app.action]]\nname = \"x\"\nrun = [\"true\"]\ntimeout = \"soon\"\n"
    );
    let errors = errors(&toml);
    let found: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        found,
        [
            (2, "server.listen"),
            (8, "app \"web\" → strategy"),
            (13, "app \"web\" → action \"x\" → timeout")
        ]
    );
}

fn secret_file(dir: &Path, content: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("secret");
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn gitea_auth(secret: &Path) -> String {
    format!(
        "[auth]\ngitea_url = \"https://git.example.org/\"\nclient_id = \"opsdeck\"\nclient_secret_file = {:?}\n",
        secret.to_str().unwrap()
    )
}

#[test]
fn opsdecks_own_secret_files_must_be_readable_and_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    rejects(
        &gitea_auth(&missing),
        4,
        "auth.client_secret_file",
        "No such file",
    );
    let empty = secret_file(dir.path(), "\n", 0o600);
    rejects(
        &gitea_auth(&empty),
        4,
        "auth.client_secret_file",
        "is empty",
    );
    rejects(
        "[auth]\ngitea_token_file = \"token\"\n",
        2,
        "auth.gitea_token_file",
        "expected an absolute path, found \"token\"",
    );
    rejects(
        "[auth]\ngitea_url = \"https://git.example.org/\"\nclient_id = \"x\"\n",
        1,
        "auth.client_secret_file",
        "OPSDECK_CLIENT_SECRET",
    );
}

#[test]
fn log_files_are_absolute_and_on_local_apps() {
    rejects(
        "[[app]]\nname = \"a\"\nunits = [\"a.service\"]\nlogs = { files = [\"app.log\"] }\n",
        4,
        "app \"a\" → logs.files",
        "expected an absolute path",
    );
    rejects(
        "[[app]]\nname = \"a\"\nhost = \"ssh://deploy@web1\"\nunits = [\"a.service\"]\nlogs = { files = [\"/var/log/a.log\"] }\n",
        5,
        "app \"a\" → logs.files",
        "local apps only",
    );
}

#[test]
fn a_secret_file_others_can_read_is_a_warning_and_its_value_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let open = secret_file(dir.path(), "  hunter2\n", 0o644);
    let config = parse(&gitea_auth(&open)).unwrap();
    let warnings = config.warnings().join("\n");
    assert!(
        warnings.contains("opsdeck.toml:4:22: auth.client_secret_file:"),
        "{warnings}"
    );
    assert!(warnings.contains("readable by every user"), "{warnings}");
    assert_eq!(config.client_secret().unwrap().as_deref(), Some("hunter2"));
}

#[test]
fn an_env_file_others_can_read_or_that_is_missing_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = secret_file(dir.path(), "SECRET_KEY=x\n", 0o644);
    let toml = format!("{APP}env_file = {:?}\n", env_file.to_str().unwrap());
    let warnings = parse(&toml).unwrap().warnings().join("\n");
    assert!(
        warnings.contains("opsdeck.toml:6:12: app \"web\" → env_file:"),
        "{warnings}"
    );
    assert!(warnings.contains("readable by every user"), "{warnings}");
    std::fs::remove_file(&env_file).unwrap();
    let warnings = parse(&toml).unwrap().warnings().join("\n");
    assert!(warnings.contains("does not exist yet"), "{warnings}");
}

fn check(config: &Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_opsdeck"))
        .args(["check", "--config"])
        .arg(config)
        .env_remove("OPSDECK_CLIENT_SECRET")
        .env_remove("OPSDECK_GITEA_TOKEN")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

#[test]
fn opsdeck_check_prints_ok_for_the_design_example() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opsdeck.toml");
    std::fs::write(&path, DESIGN_EXAMPLE).unwrap();
    let (ok, stdout, stderr) = check(&path, &[("OPSDECK_CLIENT_SECRET", "from-env")]);
    assert!(ok, "{stderr}");
    assert!(stdout.lines().any(|l| l == "ok"), "{stdout}");
}

#[test]
fn opsdeck_check_prints_every_error_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opsdeck.toml");
    std::fs::write(
        &path,
        format!("[server]\nlisten = \"nowhere\"\n{APP}strategy = \"blue-green\"\n"),
    )
    .unwrap();
    let (ok, stdout, stderr) = check(&path, &[]);
    assert!(!ok);
    assert!(!stdout.contains("ok"), "{stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    let file = path.display();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "{file}:2:10: server.listen: expected an IP address and port"
        )),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{file}:8:12: app \"web\" → strategy: expected one of"
        )),
        "{stderr}"
    );
    let (ok, _, stderr) = check(&dir.path().join("missing.toml"), &[]);
    assert!(!ok);
    assert!(stderr.contains("cannot read the config file"), "{stderr}");
}

/// Every key of README's "Configuration reference", each set once.
const EVERY_KEY: &str = r#"
[server]
listen = "127.0.0.1:9090"
public_url = "https://ops.example.org"
data_dir = "/var/lib/opsdeck"
max_body_bytes = 131072

[auth]
gitea_url = "https://git.example.org/"
client_id = "opsdeck"
client_secret_file = "$SECRET"
gitea_token_file = "$SECRET"
github_token_file = "$SECRET"
github_api = "https://github.example.org/api/v3"
dev_login = false
session_idle = "4h"
session_max = "3d"

[roles]
owner = ["user:ben"]
admin = ["team:wiggleverse:admins"]
operator = ["org:wiggleverse"]
viewer = ["org:friends"]

[jobs]
step_timeout = "10m"
job_timeout = "2h"
shutdown_grace = "1m"
approval_ttl = "30m"

[logs]
max_followers = 8
max_viewers = 100
backfill = 500

[audit]
journal = true

[hosts.bastion]
address = "ssh://jump@bastion.example.org"

[[notify]]
name = "on-call"
url = "https://alerts.example.org/opsdeck"
format = "json"
secret_file = "$SECRET"
events = ["job.failed", "health.down", "health.up"]
apps = ["shop"]
backoff = "30s"
attempts = 5

[hosts.web1]
address = "deploy@10.0.0.5:2222"
identity_file = "/etc/opsdeck/id_ed25519"
known_hosts = "/etc/opsdeck/known_hosts"
jump = "bastion"

[[app]]
name = "shop"
environment = "staging"
host = "web1"
repo = "/srv/shop/repo"
branch = "release"
strategy = "releases"
path = "/srv/shop"
keep = 3
shared = [".env", "storage/uploads"]
units = ["shop.service", "shop-worker@1.service"]
sudo = true
user = "shop"
group = "www-data"
env_file = "/srv/shop/shared/.env"
health = [ { url = "https://shop.example.org/healthz", expect = "ok", timeout = "1m", interval = "1m" }, { name = "api", url = "https://shop.example.org/api/health" } ]
build = [ { run = ["composer", "install"], cwd = "app", env = { APP_ENV = "prod" }, timeout = "5m" } ]
logs = { units = ["shop.service"] }
auto_deploy = "release"
webhook_secret_file = "$SECRET"
permissions = { view = "viewer", logs = "viewer", deploy = "operator", rollback = "operator", rotate = "owner", sweep = "admin", restore = "admin", action = "operator", cancel = "operator", audit = "admin" }
approval = { deploy = "admin", rollback = "admin", rotate = "owner", sweep = "admin", action = "admin", restore = "owner" }

[[app.secret]]
name = "APP_KEY"
generate = "base64url:32"
units = ["shop.service"]
note = "Every signed-in customer is signed out."
role = "admin"
approval = "owner"
gitea_webhook = { repo = "shop/shop" }
github_webhook = { repo = "shop/shop", url = "https://shop.example.org/hooks/github" }
max_age = "90d"
restore_on_failure = false
keep_backups = 10
env_file = "/srv/shop/shared/worker.env"
key = "SHOP_APP_KEY"

[[app.secret]]
name = "SIGNING_KEY"
file = "/srv/shop/shared/signing.pem"
generate_with = ["shop", "new-signing-key", "--pem"]

[[app.secret]]
name = "SESSION_SECRET"
generate = "hex:32"
store = { run = ["vault", "kv", "put", "secret/shop", "session=-"] }
schedule = "0 3 1 * *"
timezone = "Europe/Berlin"
catch_up = false

[[app.sweep]]
name = "old-releases"
kind = "releases"
keep = 2
schedule = "15 4 * * 0"
timezone = "Europe/Berlin"
catch_up = false
role = "admin"

[[app.sweep]]
name = "db-backup"
kind = "sqlite-backup"
database = "/srv/shop/shared/db.sqlite"
dir = "/srv/shop/backups"
keep = 14

[[app.sweep]]
name = "pg-backup"
kind = "postgres-backup"
database = "host=/run/postgresql dbname=shop"
dir = "/srv/shop/pg-backups"
keep = 7
passfile = "/etc/shop/pgpass"

[[app.sweep]]
name = "branches"
kind = "gitea-branches"
repo = "shop/shop"
days = 30
pinned = ["staging"]

[[app.sweep]]
name = "job-output"
kind = "job-output"
days = 90

[[app.sweep]]
name = "sessions"
kind = "command"
run = ["php", "artisan", "session:gc"]

[[app.action]]
name = "cache-clear"
run = ["php", "artisan", "cache:clear"]
cwd = "/srv/shop/current"
env = { APP_ENV = "prod" }
timeout = "30s"
role = "admin"
confirm = "Clear the cache?"
description = "Clears the application cache."

[[app.action]]
name = "promote"
run = ["bin/promote", "--build", "{build}", "--store", "{store}"]

[[app.action.param]]
name = "build"
label = "Build to promote"
kind = "choice"
choices_from = ["bin/list-builds"]
required = true

[[app.action.param]]
name = "store"
kind = "choice"
choices = ["eu", "us"]
default = "eu"

[[app.action.param]]
name = "note"
kind = "text"
pattern = "[a-z ]*"

[[app.action]]
name = "inspect"
run = ["sqlite3", "-readonly", "{snapshot}", ".tables"]

[[app.action.param]]
name = "snapshot"
kind = "backup"
sweep = "db-backup"

[[app]]
name = "bot"
host = "ssh://bot@10.0.0.6"
strategy = "command"
deploy = [ { run = ["cloudron", "update", "--image", "registry.example.org/bot:{tag}", "--note", "{note}"] } ]
rollback = [ { run = ["cloudron", "update", "--image", "registry.example.org/bot:{tag}"] } ]
deploy_param = [ { name = "note", pattern = "[a-z ]*" } ]

[[app]]
name = "wiki"
units = ["wiki.service"]
env_file = "$SECRET"
logs = { files = ["/var/log/wiki/app.log"] }

[[app.action]]
name = "reindex"
run = ["wiki", "reindex"]
env_file = true

[[app.sweep]]
name = "pin"
kind = "command"
run = ["wiki", "pin", "{page}"]
cwd = "/srv/wiki"
timeout = "2m"
env_file = true

[[app.sweep.param]]
name = "page"
kind = "text"
pattern = "[a-z-]+"
"#;

#[test]
fn every_key_of_the_reference_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "value\n", 0o600);
    let config = parse(&EVERY_KEY.replace("$SECRET", secret.to_str().unwrap()))
        .unwrap_or_else(|e| panic!("{e:#?}"));
    let shop = config.app("shop").unwrap();
    assert_eq!(shop.required_role("deploy"), opsdeck::auth::Role::Operator);
    assert_eq!(shop.required_role("restore"), opsdeck::auth::Role::Admin);
    assert_eq!(shop.health.len(), 2);
    assert_eq!(
        shop.health[0].interval,
        Some(std::time::Duration::from_secs(60))
    );
    assert_eq!(config.notify[0].apps, ["shop"]);
    assert_eq!(
        config.notify[0].signing_key().unwrap().as_deref(),
        Some("value")
    );
    assert_eq!(shop.sweeps.len(), 6);
    let secret = |name: &str| shop.secrets.iter().find(|s| s.name == name).unwrap();
    assert_eq!(
        secret("APP_KEY").max_age,
        Some(std::time::Duration::from_secs(90 * 86400))
    );
    assert_eq!(
        secret("SESSION_SECRET").store.as_ref().unwrap().run[0],
        "vault"
    );
    assert_eq!(config.github_token().unwrap().as_deref(), Some("value"));
    assert_eq!(
        config.auth.github_api(),
        "https://github.example.org/api/v3"
    );
    assert_eq!(shop.webhook_secret().unwrap().as_deref(), Some("value"));
    assert_eq!(config.gitea_token().unwrap().as_deref(), Some("value"));
    assert_eq!(config.hosts["web1"].jump.as_deref(), Some("bastion"));
    assert!(config.audit.journal);
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
}

/// The keys written in `text`: `key =` at a line start or inside `{ … }`.
fn keys_in(text: &str) -> std::collections::BTreeSet<String> {
    let mut keys = std::collections::BTreeSet::new();
    for line in text.lines() {
        for part in line.split(['{', ',']) {
            if let Some((key, _)) = part.split_once(" = ") {
                let key = key.trim();
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    keys.insert(key.to_string());
                }
            }
        }
    }
    keys
}

#[test]
fn the_readme_reference_documents_exactly_the_keys_of_the_full_config() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("## Configuration reference").unwrap();
    let end = readme[start + 3..]
        .find("\n## ")
        .map_or(readme.len(), |e| start + 3 + e);
    let documented: std::collections::BTreeSet<String> = readme[start..end]
        .lines()
        .filter_map(|l| {
            l.strip_prefix("| `")?
                .split_once('`')
                .map(|(k, _)| k.to_string())
        })
        // Its environment variables (OPSDECK_CONFIG, RUST_LOG) are not keys.
        .filter(|k| !k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    // `permissions` and `approval` hold action and job kind names, not
    // keys; their rows list them.
    let without_permissions: Vec<&str> = EVERY_KEY
        .lines()
        .filter(|l| !l.starts_with("permissions = ") && !l.starts_with("approval = {"))
        .collect();
    let mut written = keys_in(&without_permissions.join("\n"));
    written.insert("permissions".into());
    written.insert("approval".into());
    assert_eq!(documented, written);
}

#[test]
fn approvals_name_a_kind_and_a_role_and_expire_after_approval_ttl() {
    let config = parse(&format!(
        "[jobs]\napproval_ttl = \"15m\"\n{APP}approval = {{ deploy = \"admin\", rotate = \"owner\" }}\n\n[[app.action]]\nname = \"purge\"\nrun = [\"true\"]\napproval = \"operator\"\n"
    ))
    .unwrap();
    assert_eq!(config.jobs.approval_ttl.as_secs(), 900);
    let app = &config.apps[0];
    assert_eq!(app.approval.get("deploy"), Some(&Role::Admin));
    assert_eq!(app.approval.get("rotate"), Some(&Role::Owner));
    assert_eq!(app.actions[0].approval, Some(Role::Operator));
    assert_eq!(parse("").unwrap().jobs.approval_ttl.as_secs(), 3600);

    rejects(
        &format!("{APP}approval = {{ deploi = \"admin\" }}\n"),
        6,
        "app \"web\" → approval.deploi",
        "did you mean `deploy`?",
    );
    rejects(
        &format!("{APP}approval = {{ deploy = \"boss\" }}\n"),
        6,
        "app \"web\" → approval.deploy",
        "expected one of \"viewer\", \"operator\", \"admin\" or \"owner\"",
    );
    rejects(
        "[jobs]\napproval_ttl = \"soon\"\n",
        2,
        "jobs.approval_ttl",
        "expected a duration",
    );
}

#[test]
fn notify_names_known_events_apps_and_a_signing_key() {
    let good = format!(
        "{APP}\n[[notify]]\nname = \"on-call\"\nurl = \"https://hooks.example.org/x\"\nformat = \"slack\"\nevents = [\"job.failed\", \"health.down\"]\napps = [\"web\"]\n"
    );
    let config = parse(&good).unwrap();
    let on_call = &config.notify[0];
    assert_eq!(on_call.events, ["job.failed", "health.down"]);
    assert_eq!((on_call.backoff.as_secs(), on_call.attempts), (10, 10));
    rejects(
        &good.replace("\"health.down\"", "\"health.sideways\""),
        11,
        "notify \"on-call\" → events",
        "there is no event \"health.sideways\"; expected one of \"job.failed\"",
    );
    rejects(
        &good.replace("apps = [\"web\"]", "apps = [\"wbe\"]"),
        12,
        "notify \"on-call\" → apps",
        "there is no [[app]] named \"wbe\"",
    );
    rejects(
        &good.replace("\"slack\"", "\"json\""),
        7,
        "notify \"on-call\" → secret_file",
        "a \"json\" receiver needs `secret_file`",
    );
    let watched = format!("{APP}[app.health]\nurl = \"http://127.0.0.1:1/\"\ninterval = \"0s\"\n");
    rejects(&watched, 8, "app \"web\" → health.interval", "at least 1s");
}
