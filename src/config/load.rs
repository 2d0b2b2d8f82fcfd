//! The shape of `opsdeck.toml`: which keys each table has, their types and
//! defaults. Reading a key declares it known, so every key not read here is
//! reported as unknown (with the nearest known key as a suggestion).

use std::path::Path;

use super::reader::Section;
use super::*;

pub(super) fn read(
    p: &mut super::problems::Problems<'_>,
    doc: &toml_edit::Table,
    path: &Path,
) -> Config {
    let mut root = Section::root(p, doc);
    let config = Config {
        server: root.table("server", server).unwrap_or_default(),
        auth: root.table("auth", auth).unwrap_or_default(),
        roles: root.table("roles", roles).unwrap_or_default(),
        jobs: root.table("jobs", jobs).unwrap_or_default(),
        logs: root.table("logs", log_limits).unwrap_or_default(),
        audit: root
            .table("audit", |s| AuditLog {
                journal: s.bool_or("journal", false),
            })
            .unwrap_or_default(),
        hosts: root.named_tables("hosts", host),
        apps: root.tables("app", app),
        notify: root.tables("notify", notify),
        path: path.to_path_buf(),
        warnings: Vec::new(),
    };
    root.finish();
    config
}

fn server(s: &mut Section) -> Server {
    let d = Server::default();
    Server {
        listen: s.string_or("listen", &d.listen),
        // Without its trailing slash, so `<public_url>/auth/callback` is
        // exactly the redirect URI registered in Gitea.
        public_url: s
            .string_or("public_url", &d.public_url)
            .trim_end_matches('/')
            .to_string(),
        data_dir: s.path("data_dir").unwrap_or(d.data_dir),
        max_body_bytes: s.count("max_body_bytes").unwrap_or(d.max_body_bytes),
    }
}

fn auth(s: &mut Section) -> Auth {
    Auth {
        gitea_url: s.string("gitea_url"),
        client_id: s.string("client_id"),
        client_secret_file: s.path("client_secret_file"),
        gitea_token_file: s.path("gitea_token_file"),
        github_token_file: s.path("github_token_file"),
        github_api: s.string("github_api"),
        dev_login: s.bool_or("dev_login", false),
        session_idle: s.duration("session_idle"),
        session_max: s.duration("session_max"),
    }
}

fn roles(s: &mut Section) -> Roles {
    Roles {
        owner: s.strings("owner"),
        admin: s.strings("admin"),
        operator: s.strings("operator"),
        viewer: s.strings("viewer"),
    }
}

fn jobs(s: &mut Section) -> Jobs {
    let d = Jobs::default();
    Jobs {
        step_timeout: s.duration("step_timeout").unwrap_or(d.step_timeout),
        job_timeout: s.duration("job_timeout").unwrap_or(d.job_timeout),
        shutdown_grace: s.duration("shutdown_grace").unwrap_or(d.shutdown_grace),
        approval_ttl: s.duration("approval_ttl").unwrap_or(d.approval_ttl),
    }
}

fn log_limits(s: &mut Section) -> LogLimits {
    let d = LogLimits::default();
    LogLimits {
        max_followers: s.count("max_followers").unwrap_or(d.max_followers),
        max_viewers: s.count("max_viewers").unwrap_or(d.max_viewers),
        backfill: s.count("backfill").unwrap_or(d.backfill),
    }
}

fn host(s: &mut Section) -> Host {
    Host {
        address: s.required_string("address", "like \"deploy@host.example.org:22\""),
        identity_file: s.path("identity_file"),
        known_hosts: s.path("known_hosts"),
        jump: s.string("jump"),
    }
}

fn app(s: &mut Section) -> App {
    App {
        name: s.required_string("name", "the app's name, like \"rfc-app\""),
        environment: s.string_or("environment", "production"),
        host: s.string_or("host", "local"),
        repo: s.path("repo"),
        branch: s.string_or("branch", "main"),
        strategy: s.choice("strategy", &Strategy::ALL).unwrap_or_default(),
        path: s.path("path"),
        keep: s.count("keep").unwrap_or(5),
        shared: s.strings("shared"),
        units: s.strings("units"),
        sudo: s.bool_or("sudo", false),
        user: s.string("user"),
        group: s.string("group"),
        env_file: s.path("env_file"),
        health: s.table_or_tables("health", health),
        build: s.tables("build", command),
        deploy: s.tables("deploy", command),
        rollback: s.tables("rollback", command),
        deploy_params: s.tables("deploy_param", param),
        logs: s.table("logs", logs),
        auto_deploy: s.string("auto_deploy"),
        webhook_secret_file: s.path("webhook_secret_file"),
        permissions: s.table("permissions", permissions).unwrap_or_default(),
        approval: s.table("approval", approval).unwrap_or_default(),
        secrets: s.tables("secret", secret),
        sweeps: s.tables("sweep", sweep),
        actions: s.tables("action", action),
    }
}

fn health(s: &mut Section) -> Health {
    Health {
        name: s.string("name"),
        url: s.required_string("url", "the http(s) URL to probe"),
        expect: s.string("expect"),
        timeout: s.duration("timeout").unwrap_or(Duration::from_secs(30)),
        interval: s.duration("interval"),
    }
}

fn notify(s: &mut Section) -> Notify {
    Notify {
        name: s.required_string("name", "the receiver's name, like \"on-call\""),
        url: s.required_string("url", "the http(s) URL events are POSTed to"),
        format: s.choice("format", &NotifyFormat::ALL).unwrap_or_default(),
        secret_file: s.path("secret_file"),
        events: s.strings("events"),
        apps: s.strings("apps"),
        backoff: s.duration("backoff").unwrap_or(Duration::from_secs(10)),
        attempts: s.count("attempts").unwrap_or(10),
    }
}

fn required_argv(s: &mut Section) -> Vec<String> {
    if s.opt_strings("run").is_none() {
        s.missing("run", "the command's argv, like [\"npm\", \"ci\"]");
    }
    s.strings("run")
}

fn command(s: &mut Section) -> Command {
    Command {
        run: required_argv(s),
        cwd: s.path("cwd"),
        env: s.string_map("env"),
        timeout: s.duration("timeout"),
    }
}

fn logs(s: &mut Section) -> Logs {
    Logs {
        units: s.strings("units"),
        files: s.strings("files").into_iter().map(Into::into).collect(),
    }
}

/// `approval = { deploy = "admin" }`: job kind → the role that approves.
fn approval(s: &mut Section) -> BTreeMap<String, Role> {
    let mut out = BTreeMap::new();
    for kind in validate::APPROVED {
        if let Some(role) = s.role(kind) {
            out.insert(kind.to_string(), role);
        }
    }
    out
}

/// `permissions = { deploy = "operator" }`: action → minimum role.
fn permissions(s: &mut Section) -> BTreeMap<String, Role> {
    let mut out = BTreeMap::new();
    for action in validate::ACTIONS {
        if let Some(role) = s.role(action) {
            out.insert(action.to_string(), role);
        }
    }
    out
}

fn secret(s: &mut Section) -> Secret {
    Secret {
        name: s.required_string("name", "the env var name, like \"SECRET_KEY\""),
        // Required unless `generate_with` is given: `Secret::source` says.
        generate: s.string("generate").unwrap_or_default(),
        units: s.opt_strings("units"),
        note: s.string("note"),
        role: s.role("role"),
        approval: s.role("approval"),
        gitea_webhook: s.table("gitea_webhook", |s| GiteaWebhook {
            repo: s.required_string("repo", "the Gitea repository, like \"org/repo\""),
        }),
        github_webhook: s.table("github_webhook", |s| GithubWebhook {
            repo: s.required_string("repo", "the GitHub repository, like \"owner/repo\""),
            url: s.string("url"),
        }),
        store: s.table("store", |s| Store {
            run: required_argv(s),
        }),
        max_age: s.duration("max_age"),
        schedule: s.string("schedule"),
        timezone: s.string("timezone"),
        catch_up: s.bool_or("catch_up", true),
        restore_on_failure: s.bool_or("restore_on_failure", true),
        keep_backups: s.count("keep_backups").unwrap_or(5),
        env_file: s.path("env_file"),
        key: s.string("key"),
        file: s.path("file"),
        generate_with: s.opt_strings("generate_with"),
    }
}

fn sweep(s: &mut Section) -> Sweep {
    let name = s.required_string("name", "the sweep's name, like \"db-backup\"");
    let kind = match s.choice("kind", &SweepKind::ALL) {
        Some(kind) => kind,
        None => {
            if !s.p.has_error(&s.label.key("kind")) {
                s.missing("kind", "one of the sweep kinds");
            }
            SweepKind::Command
        }
    };
    Sweep {
        name,
        kind,
        keep: s.count("keep"),
        database: s.string("database"),
        dir: s.path("dir"),
        passfile: s.path("passfile"),
        repo: s.string("repo"),
        days: s
            .count("days")
            .map(|d| u32::try_from(d).unwrap_or(u32::MAX)),
        pinned: s.strings("pinned"),
        run: s.opt_strings("run"),
        cwd: s.path("cwd"),
        timeout: s.duration("timeout"),
        env_file: s.bool_or("env_file", false),
        params: s.tables("param", param),
        schedule: s.string("schedule"),
        timezone: s.string("timezone"),
        catch_up: s.bool_or("catch_up", true),
        role: s.role("role"),
        approval: s.role("approval"),
    }
}

fn action(s: &mut Section) -> Action {
    Action {
        name: s.required_string("name", "the action's name, like \"cleanup-sessions\""),
        run: required_argv(s),
        cwd: s.path("cwd"),
        env: s.string_map("env"),
        timeout: s.duration("timeout"),
        env_file: s.bool_or("env_file", false),
        role: s.role("role"),
        approval: s.role("approval"),
        confirm: s.string("confirm"),
        description: s.string("description"),
        params: s.tables("param", param),
    }
}

fn param(s: &mut Section) -> Param {
    Param {
        name: s.required_string("name", "the parameter's {name} in `run`, like \"tag\""),
        label: s.string("label"),
        kind: s.choice("kind", &ParamKind::ALL).unwrap_or(ParamKind::Text),
        pattern: s.string("pattern"),
        choices: s.strings("choices"),
        choices_from: s.opt_strings("choices_from"),
        sweep: s.string("sweep"),
        default: s.string("default"),
        required: s.bool_or("required", false),
    }
}
