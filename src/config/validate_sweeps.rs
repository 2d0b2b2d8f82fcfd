//! `[[app.sweep]]`: each kind has keys it needs and keys that mean nothing
//! to it; schedules are cron and time zones are IANA names.

use super::problems::{Label, Problems};
use super::validate::{absolute, argv, env_file, labels, needs_gitea_api, relative_cwd, unique};
use super::validate_params::{self, Owner};
use super::values::{check_gitea_repo, check_name, parse_schedule, parse_time_zone};
use super::{App, Config, Strategy, Sweep, SweepKind};

/// The kind-specific keys, and which kinds use them.
const KIND_KEYS: [(&str, &[SweepKind]); 10] = [
    ("keep", &[SweepKind::Releases, SweepKind::SqliteBackup]),
    ("database", &[SweepKind::SqliteBackup]),
    ("dir", &[SweepKind::SqliteBackup]),
    ("repo", &[SweepKind::GiteaBranches]),
    ("days", &[SweepKind::GiteaBranches, SweepKind::JobOutput]),
    ("run", &[SweepKind::Command]),
    ("cwd", &[SweepKind::Command]),
    ("timeout", &[SweepKind::Command]),
    ("env_file", &[SweepKind::Command]),
    ("param", &[SweepKind::Command]),
];

fn is_set(sweep: &Sweep, key: &str) -> bool {
    match key {
        "keep" => sweep.keep.is_some(),
        "database" => sweep.database.is_some(),
        "dir" => sweep.dir.is_some(),
        "repo" => sweep.repo.is_some(),
        "days" => sweep.days.is_some(),
        "run" => sweep.run.is_some(),
        "cwd" => sweep.cwd.is_some(),
        "timeout" => sweep.timeout.is_some(),
        "env_file" => sweep.env_file,
        "param" => !sweep.params.is_empty(),
        _ => false,
    }
}

pub(super) fn sweeps(config: &Config, app: &App, array: &Label, p: &mut Problems) {
    let labels = labels(array, &app.sweeps, |s| &s.name);
    unique(&app.sweeps, &labels, |s| &s.name, "a sweep", p);
    for (sweep, label) in app.sweeps.iter().zip(&labels) {
        if let Err(e) = check_name(&sweep.name) {
            p.error(&label.key("name"), e);
        }
        schedule(
            p,
            label,
            sweep.schedule.as_deref(),
            sweep.timezone.as_deref(),
        );
        // An unknown or missing kind is already reported; its rules would
        // only add noise.
        if !p.has_error(&label.key("kind")) {
            kind(config, app, sweep, label, p);
        }
    }
}

/// `schedule` (cron) and its `timezone`, on a sweep or a secret.
pub(super) fn schedule(
    p: &mut Problems,
    label: &Label,
    schedule: Option<&str>,
    timezone: Option<&str>,
) {
    if let Some(schedule) = schedule {
        if let Err(e) = parse_schedule(schedule) {
            p.error(&label.key("schedule"), e);
        }
    }
    if let Some(zone) = timezone {
        if let Err(e) = parse_time_zone(zone) {
            p.error(&label.key("timezone"), e);
        }
        if schedule.is_none() {
            p.error(
                &label.key("timezone"),
                "`timezone` only applies to a `schedule`, and there is none",
            );
        }
    }
}

fn kind(config: &Config, app: &App, sweep: &Sweep, label: &Label, p: &mut Problems) {
    let kind = sweep.kind.as_str();
    for (key, kinds) in KIND_KEYS {
        if is_set(sweep, key) && !kinds.contains(&sweep.kind) {
            p.error(
                &label.key(key),
                format!("`{key}` does not apply to a \"{kind}\" sweep"),
            );
        }
    }
    if !sweep.pinned.is_empty() && sweep.kind != SweepKind::GiteaBranches {
        p.error(
            &label.key("pinned"),
            format!("`pinned` does not apply to a \"{kind}\" sweep"),
        );
    }
    let mut needs = |key: &str, why: &str| {
        if !is_set(sweep, key) {
            p.error(
                &label.key(key),
                format!("a \"{kind}\" sweep needs `{key}`, {why}"),
            );
        }
    };
    match sweep.kind {
        SweepKind::SqliteBackup => {
            needs("database", "the SQLite file to back up");
            needs("dir", "the directory backups are written to");
            needs("keep", "how many backups to keep");
            if sweep.keep == Some(0) {
                p.error(
                    &label.key("keep"),
                    "a \"sqlite-backup\" sweep keeps at least the backup it makes: `keep` must be 1 or more",
                );
            }
        }
        SweepKind::GiteaBranches => {
            needs("repo", "the Gitea repository as \"owner/name\"");
            needs("days", "how many days a branch may stay merged or idle");
        }
        SweepKind::Command => needs("run", "the command's argv"),
        SweepKind::JobOutput => needs("days", "how many days of job output to keep"),
        SweepKind::Releases => {}
    }
    match sweep.kind {
        SweepKind::Releases if app.strategy != Strategy::Releases => p.error(
            &label.key("kind"),
            format!(
                "a \"releases\" sweep needs the app's strategy to be \"releases\", not \"{}\"",
                app.strategy.as_str()
            ),
        ),
        SweepKind::GiteaBranches => {
            if let Some(repo) = &sweep.repo {
                if let Err(e) = check_gitea_repo(repo) {
                    p.error(&label.key("repo"), e);
                }
            }
            needs_gitea_api(config, p, label);
        }
        SweepKind::Command => command(app, sweep, label, p),
        _ => {}
    }
    absolute(p, &label.key("database"), sweep.database.as_deref());
    absolute(p, &label.key("dir"), sweep.dir.as_deref());
}

/// A `command` sweep: its argv, where it runs, its env file and parameters
/// (a scheduled one has nobody to ask for values).
fn command(app: &App, sweep: &Sweep, label: &Label, p: &mut Problems) {
    if let Some(run) = &sweep.run {
        argv(p, &label.key("run"), run);
        validate_params::named_in_run(&sweep.params, run, "sweep", label, p);
    }
    relative_cwd(p, app, &label.key("cwd"), sweep.cwd.as_deref());
    if sweep.timeout.is_some_and(|t| t.is_zero()) {
        p.error(&label.key("timeout"), "expected a duration longer than 0");
    }
    env_file(p, app, &label.key("env_file"), sweep.env_file);
    let owner = Owner {
        key: "param",
        params: &sweep.params,
        reserved: &[],
        unattended: sweep
            .schedule
            .as_ref()
            .map(|_| "the sweep runs on a `schedule`"),
    };
    validate_params::params(app, &owner, label, p);
}
