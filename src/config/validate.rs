//! What the values mean: formats, names that must be unique, keys one
//! setting requires of another. Each problem is a sentence at its key.

use std::collections::HashSet;
use std::path::Path;

use super::problems::{Label, Problems, element_names};
use super::validate_notify;
use super::validate_params::{self, Owner};
use super::values::*;
use super::*;

/// The actions whose minimum role `permissions` may set.
pub(super) const ACTIONS: [&str; 10] = [
    "view", "logs", "deploy", "rollback", "rotate", "sweep", "restore", "action", "cancel", "audit",
];

/// The job kinds an app's `approval` table may name.
pub(super) const APPROVED: [&str; 6] =
    ["deploy", "rollback", "rotate", "sweep", "action", "restore"];

pub(super) fn check(config: &Config, p: &mut Problems) {
    let root = Label::default();
    server(config, &root.key("server"), p);
    auth(config, &root.key("auth"), p);
    roles(&config.roles, &root.key("roles"), p);
    log_limits(&config.logs, &root.key("logs"), p);
    let hosts = root.key("hosts");
    for (name, host) in &config.hosts {
        let label = hosts.key(name);
        if let Err(e) = check_name(name) {
            p.error(&label, e);
        }
        absolute(
            p,
            &label.key("identity_file"),
            host.identity_file.as_deref(),
        );
        absolute(p, &label.key("known_hosts"), host.known_hosts.as_deref());
        if let Err(e) = host.address.parse::<SshTarget>() {
            p.error(&label.key("address"), e);
        }
        if let Some(jump) = &host.jump {
            if jump == name
                || (!config.hosts.contains_key(jump) && jump.parse::<SshTarget>().is_err())
            {
                p.error(
                    &label.key("jump"),
                    format!("expected another [hosts.<name>] name or \"user@host[:port]\", found {jump:?}"),
                );
            }
        }
    }
    let apps = labels(&root.key("app"), &config.apps, |a| &a.name);
    unique(&config.apps, &apps, |a| &a.name, "an app", p);
    for (app, label) in config.apps.iter().zip(&apps) {
        self::app(config, app, label, p);
    }
    let notify = labels(&root.key("notify"), &config.notify, |n| &n.name);
    unique(&config.notify, &notify, |n| &n.name, "a [[notify]]", p);
    for (target, label) in config.notify.iter().zip(&notify) {
        validate_notify::check(config, target, label, p);
    }
}

/// The labels of an array's elements, named as the reader named them.
pub(super) fn labels<T>(array: &Label, items: &[T], name: impl Fn(&T) -> &str) -> Vec<Label> {
    let names: Vec<Option<&str>> = items.iter().map(|i| Some(name(i))).collect();
    element_names(&names)
        .iter()
        .enumerate()
        .map(|(i, n)| array.element(i, *n))
        .collect()
}

pub(super) fn unique<T>(
    items: &[T],
    labels: &[Label],
    name: impl Fn(&T) -> &str,
    what: &str,
    p: &mut Problems,
) {
    let mut seen = HashSet::new();
    for (item, label) in items.iter().zip(labels) {
        let name = name(item);
        if !name.is_empty() && !seen.insert(name) {
            p.error(
                &label.key("name"),
                format!("there is already {what} named {name:?}; names must be unique"),
            );
        }
    }
}

pub(super) fn report(p: &mut Problems, label: &Label, result: Result<impl Sized, String>) {
    if let Err(e) = result {
        p.error(label, e);
    }
}

pub(super) fn absolute(p: &mut Problems, label: &Label, path: Option<&Path>) {
    if let Some(path) = path.filter(|path| !path.is_absolute()) {
        p.error(
            label,
            format!(
                "expected an absolute path, found {:?}",
                path.display().to_string()
            ),
        );
    }
}

/// Why `path` is not a relative path inside the app's tree, if it is not.
/// A user or group name as `useradd` accepts it: never an option to
/// `sudo`, never anything a shell would read.
fn check_account(name: &str) -> Result<(), String> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if name.is_empty() || name.starts_with('-') || !plain || name.len() > 32 {
        return Err(format!(
            "expected an account name like \"rfc-app\" (letters, digits, '.', '_', '-'), found {name:?}"
        ));
    }
    Ok(())
}

fn outside(path: &Path) -> Option<String> {
    use std::path::Component::{CurDir, Normal};
    let climbs = path.components().any(|c| !matches!(c, Normal(_) | CurDir));
    (climbs || path.as_os_str().is_empty()).then(|| {
        let found = path.display().to_string();
        format!("expected a relative path inside the app's directory, found {found:?}")
    })
}

fn server(config: &Config, label: &Label, p: &mut Problems) {
    let s = &config.server;
    report(p, &label.key("listen"), check_listen(&s.listen));
    report(p, &label.key("public_url"), check_public_url(&s.public_url));
    absolute(p, &label.key("data_dir"), Some(&s.data_dir));
    if s.max_body_bytes < 1024 {
        p.error(&label.key("max_body_bytes"), "expected at least 1024 bytes");
    }
}

fn auth(config: &Config, label: &Label, p: &mut Problems) {
    let a = &config.auth;
    if let Some(url) = &a.gitea_url {
        report(p, &label.key("gitea_url"), check_http_url(url));
        if a.client_id.is_none() {
            p.error(
                &label.key("client_id"),
                "Gitea sign-in needs `client_id`, the OAuth2 application's client ID",
            );
        }
    } else if a.client_id.is_some() {
        p.error(
            &label.key("gitea_url"),
            "`client_id` is set but `gitea_url` is not; Gitea sign-in needs both",
        );
    }
    if a.dev_login {
        // An unparseable listen address is reported on its own.
        let public = check_listen(&config.server.listen).is_ok_and(|addr| !addr.ip().is_loopback());
        if public {
            p.error(
                &label.key("dev_login"),
                format!(
                    "dev_login lets anyone in without a password, so it needs a loopback `server.listen` like \"127.0.0.1:8080\", not {:?}",
                    config.server.listen
                ),
            );
        }
    }
    // Under systemd opsdeck runs in `/`, not where `check` was run.
    absolute(
        p,
        &label.key("client_secret_file"),
        a.client_secret_file.as_deref(),
    );
    for (key, file) in [
        ("gitea_token_file", &a.gitea_token_file),
        ("github_token_file", &a.github_token_file),
    ] {
        absolute(p, &label.key(key), file.as_deref());
    }
    if let Some(api) = &a.github_api {
        report(p, &label.key("github_api"), check_http_url(api));
    }
    for (key, d) in [
        ("session_idle", a.session_idle),
        ("session_max", a.session_max),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            p.error(&label.key(key), "expected a duration longer than 0");
        }
    }
}

fn roles(r: &Roles, label: &Label, p: &mut Problems) {
    for (key, entries) in [
        ("owner", &r.owner),
        ("admin", &r.admin),
        ("operator", &r.operator),
        ("viewer", &r.viewer),
    ] {
        for (i, entry) in entries.iter().enumerate() {
            if let Err(e) = check_role_entry(entry) {
                p.error_in(&label.key(key), i, e);
            }
        }
    }
}

fn log_limits(l: &LogLimits, label: &Label, p: &mut Problems) {
    for (key, n) in [
        ("max_followers", l.max_followers),
        ("max_viewers", l.max_viewers),
    ] {
        if n == 0 {
            p.error(&label.key(key), "expected at least 1");
        }
    }
}

fn units(p: &mut Problems, label: &Label, units: &[String]) {
    for (i, unit) in units.iter().enumerate() {
        if let Err(e) = check_unit(unit) {
            p.error_in(label, i, e);
        }
    }
}

pub(super) fn argv(p: &mut Problems, label: &Label, run: &[String]) {
    if run.first().is_none_or(|program| program.is_empty()) {
        p.error(
            label,
            "expected the program and its arguments, like [\"npm\", \"ci\"], found no program",
        );
    }
}

fn env(p: &mut Problems, label: &Label, env: &BTreeMap<String, String>) {
    for name in env.keys() {
        report(p, &label.key(name), check_env_name(name));
    }
}

fn commands(p: &mut Problems, array: &Label, commands: &[Command]) {
    for (i, c) in commands.iter().enumerate() {
        let label = array.element(i, None);
        argv(p, &label.key("run"), &c.run);
        env(p, &label.key("env"), &c.env);
    }
}

fn app(config: &Config, app: &App, label: &Label, p: &mut Problems) {
    let key = |k: &str| label.key(k);
    report(p, &key("name"), check_name(&app.name));
    match app.host.parse::<HostAddress>() {
        Ok(HostAddress::Named(name)) if !config.hosts.contains_key(&name) => p.error(
            &key("host"),
            format!("there is no [hosts.{name}] table; expected \"local\", \"ssh://user@host[:port]\" or a [hosts.<name>] name"),
        ),
        other => report(p, &key("host"), other),
    }
    for (k, account) in [("user", &app.user), ("group", &app.group)] {
        if let Some(name) = account {
            report(p, &key(k), check_account(name));
        }
    }
    if app.group.is_some() && app.user.is_none() {
        p.error(
            &key("group"),
            "`group` needs `user`: the account the app's steps run as",
        );
    }
    absolute(p, &key("repo"), app.repo.as_deref());
    absolute(p, &key("path"), app.path.as_deref());
    absolute(p, &key("env_file"), app.env_file.as_deref());
    absolute(
        p,
        &key("webhook_secret_file"),
        app.webhook_secret_file.as_deref(),
    );
    report(p, &key("branch"), check_branch(&app.branch));
    if let Some(branch) = &app.auto_deploy {
        report(p, &key("auto_deploy"), check_branch(branch));
        if app.webhook_secret_file.is_none() {
            p.warn(&key("auto_deploy"), "without `webhook_secret_file` (the secret Gitea signs push webhooks with) every push webhook is refused");
        }
    }
    strategy(app, label, p);
    for (i, shared) in app.shared.iter().enumerate() {
        if let Some(e) = outside(Path::new(shared)) {
            p.error_in(&key("shared"), i, e);
        }
    }
    units(p, &key("units"), &app.units);
    health(app, &key("health"), p);
    commands(p, &key("build"), &app.build);
    commands(p, &key("deploy"), &app.deploy);
    commands(p, &key("rollback"), &app.rollback);
    for (steps, name) in [(&app.deploy, "deploy"), (&app.rollback, "rollback")] {
        placeholders(p, app, &key(name), steps);
    }
    if !app.deploy_params.is_empty() && app.strategy != Strategy::Command {
        p.error(
            &key("deploy_param"),
            "deploy parameters fill the `deploy` steps of strategy \"command\"; set `strategy = \"command\"`",
        );
    }
    let deploys = Owner {
        key: "deploy_param",
        params: &app.deploy_params,
        reserved: &["ref", "sha", "tag"],
        unattended: app
            .auto_deploy
            .as_ref()
            .map(|_| "the app deploys on push (`auto_deploy`)"),
    };
    validate_params::params(app, &deploys, label, p);
    if let Some(logs) = &app.logs {
        units(p, &key("logs").key("units"), &logs.units);
        for (i, file) in logs.files.iter().enumerate() {
            if !app.is_local() {
                p.error_in(
                    &key("logs").key("files"),
                    i,
                    "log files are followed for local apps only; on another host, log to the journal (`logs.units`)",
                );
            } else if !file.is_absolute() {
                let found = file.display().to_string();
                p.error_in(
                    &key("logs").key("files"),
                    i,
                    format!("expected an absolute path, found {found:?}"),
                );
            }
        }
    }
    secrets(config, app, &key("secret"), p);
    super::validate_sweeps::sweeps(config, app, &key("sweep"), p);
    let actions = labels(&key("action"), &app.actions, |a| &a.name);
    unique(&app.actions, &actions, |a| &a.name, "an action", p);
    for (action, label) in app.actions.iter().zip(&actions) {
        report(p, &label.key("name"), check_name(&action.name));
        argv(p, &label.key("run"), &action.run);
        relative_cwd(p, app, &label.key("cwd"), action.cwd.as_deref());
        env(p, &label.key("env"), &action.env);
        env_file(p, app, &label.key("env_file"), action.env_file);
        let owner = Owner {
            key: "param",
            params: &action.params,
            reserved: &[],
            unattended: None,
        };
        validate_params::params(app, &owner, label, p);
        validate_params::named_in_run(&action.params, &action.run, "action", label, p);
    }
}

/// A relative `cwd` (of an action, a command sweep, a deploy step) is
/// inside the app's `repo`.
pub(super) fn relative_cwd(p: &mut Problems, app: &App, label: &Label, cwd: Option<&Path>) {
    if cwd.is_some_and(Path::is_relative) && app.repo.is_none() {
        p.error(
            label,
            "a relative `cwd` is inside the app's `repo`, and the app has none; give an absolute path or set `repo`",
        );
    }
}

/// `env_file = true` (an action, a command sweep) needs the app's
/// `env_file`; over SSH its values would have to travel in a command line.
pub(super) fn env_file(p: &mut Problems, app: &App, label: &Label, wanted: bool) {
    if !wanted {
        return;
    }
    if app.env_file.is_none() {
        p.error(
            label,
            "`env_file = true` loads the app's env file, and the app has no `env_file`",
        );
    } else if matches!(
        app.host.parse::<HostAddress>(),
        Ok(HostAddress::Ssh(_) | HostAddress::Named(_))
    ) {
        p.error(
            label,
            "`env_file = true` works for apps on this machine: on another host the values would travel in the command line ssh runs",
        );
    }
}

/// Each health check: an http(s) URL, a timeout, a name (or URL) no other
/// check of the app has, so pages and job output tell them apart.
fn health(app: &App, array: &Label, p: &mut Problems) {
    // One table is labelled `health.url`, a list's elements `health #2 → url`.
    let listed = labels(array, &app.health, |h| {
        h.name.as_deref().unwrap_or_default()
    });
    let list = listed.first().is_some_and(|first| p.is_written(first));
    let mut seen = HashSet::new();
    for (health, element) in app.health.iter().zip(&listed) {
        let label = if list { element } else { array };
        report(p, &label.key("url"), check_http_url(&health.url));
        if health.timeout.is_zero() {
            p.error(&label.key("timeout"), "expected a duration longer than 0");
        }
        if health.interval.is_some_and(|i| i < Duration::from_secs(1)) {
            p.error(&label.key("interval"), "expected a duration of at least 1s");
        }
        if !seen.insert(health.name()) {
            p.error(
                label,
                format!(
                    "there is already a health check called {:?}; give each a different `name` or `url`",
                    health.name()
                ),
            );
        }
    }
}

/// `{ref}`, `{sha}` and `{tag}` are the words a `command` deploy fills
/// in; any other `{name}` is a typo that would reach the program as is.
fn placeholders(p: &mut Problems, app: &App, array: &Label, steps: &[Command]) {
    if !steps.is_empty() && app.strategy != Strategy::Command {
        p.error(
            array,
            "these steps are for strategy \"command\"; set `strategy = \"command\"` or use `build`",
        );
    }
    for (i, step) in steps.iter().enumerate() {
        relative_cwd(
            p,
            app,
            &array.element(i, None).key("cwd"),
            step.cwd.as_deref(),
        );
        for word in &step.run {
            for name in super::words::placeholders(word) {
                let problem = match name {
                    "ref" | "tag" => continue,
                    "sha" if app.repo.is_some() => continue,
                    "sha" => "{sha} is the commit a ref resolves to, and the app has no `repo`; use {ref} or {tag}, or set `repo`".to_owned(),
                    other if app.deploy_params.iter().any(|x| x.name == other) => continue,
                    other => format!("unknown placeholder {{{other}}}; expected {{ref}}, {{sha}}, {{tag}} or a [[app.deploy_param]] name"),
                };
                p.error(&array.element(i, None).key("run"), problem);
            }
        }
    }
}

fn strategy(app: &App, label: &Label, p: &mut Problems) {
    let needs = |p: &mut Problems, key: &str, why: &str| {
        p.error(
            &label.key(key),
            format!(
                "strategy \"{}\" needs `{key}`, {why}",
                app.strategy.as_str()
            ),
        );
    };
    match app.strategy {
        // An app without `repo` nor `strategy` has no Deploy button: only
        // its actions, logs, secrets and sweeps.
        Strategy::Checkout if app.repo.is_none() && p.is_written(&label.key("strategy")) => {
            needs(p, "repo", "the git work tree that is deployed")
        }
        Strategy::Releases => {
            if app.repo.is_none() {
                needs(p, "repo", "the git repository releases are made from");
            }
            if app.path.is_none() {
                needs(p, "path", "the directory holding releases/ and current");
            }
        }
        Strategy::Command if app.deploy.is_empty() => needs(
            p,
            "deploy",
            "the steps that deploy, like [{ run = [\"cloudron\", \"update\", \"--image\", \"app:{tag}\"] }]",
        ),
        _ => {}
    }
    if app.keep == 0 {
        p.error(
            &label.key("keep"),
            "expected at least 1: the release that is current is always kept",
        );
    }
}

fn secrets(config: &Config, app: &App, array: &Label, p: &mut Problems) {
    let labels = labels(array, &app.secrets, |s| &s.name);
    unique(&app.secrets, &labels, |s| &s.name, "a secret", p);
    super::validate_secrets::distinct_places(app, &labels, p);
    for (secret, label) in app.secrets.iter().zip(&labels) {
        report(p, &label.key("name"), check_env_name(&secret.name));
        super::validate_secrets::check(app, secret, label, p);
        if let Some(units) = &secret.units {
            self::units(p, &label.key("units"), units);
        }
        super::validate_secret_places::places_and_clock(config, app, secret, label, p);
        if let Some(hook) = &secret.gitea_webhook {
            report(
                p,
                &label.key("gitea_webhook").key("repo"),
                check_gitea_repo(&hook.repo),
            );
            needs_gitea_api(config, p, &label.key("gitea_webhook"));
        }
    }
}

/// Settings that call the Gitea API need its address and a token.
pub(super) fn needs_gitea_api(config: &Config, p: &mut Problems, label: &Label) {
    if config.auth.gitea_url.is_none() {
        p.error(
            label,
            "this calls the Gitea API, so `auth.gitea_url` must be set",
        );
    } else if config.auth.gitea_token_file.is_none()
        && super::secrets::env_secret(super::secrets::GITEA_TOKEN_ENV).is_none()
    {
        p.error(
            label,
            "this calls the Gitea API, so it needs a token: set `auth.gitea_token_file` or OPSDECK_GITEA_TOKEN",
        );
    }
}
