//! Parameters (`[[app.action.param]]`, `[[app.sweep.param]]`,
//! `[[app.deploy_param]]`): names fit for a `{name}` placeholder, patterns
//! that compile, choices for a `choice`, a `repo` for a `commit`, deploys
//! for a `release`, a backup sweep for a `backup`, defaults that pass their own checks, a default for
//! each required value nobody is there to give, and argv words naming only
//! declared parameters.

use super::problems::{Label, Problems};
use super::validate::{argv, labels, unique};
use super::words::placeholders;
use super::{App, Param, ParamKind, Strategy};

/// The parameters of one action, sweep or the app's deploys.
pub(super) struct Owner<'a> {
    /// The array they are written in: `param` or `deploy_param`.
    pub key: &'static str,
    pub params: &'a [Param],
    /// Names the owner fills in itself (a deploy's `ref`, `sha`, `tag`).
    pub reserved: &'static [&'static str],
    /// Why nobody may be there to type a value (a schedule, a push
    /// webhook), if so: then every required parameter needs a default.
    pub unattended: Option<&'static str>,
}

pub(super) fn params(app: &App, owner: &Owner<'_>, label: &Label, p: &mut Problems) {
    let array = label.key(owner.key);
    let labels = labels(&array, owner.params, |x| &x.name);
    unique(owner.params, &labels, |x| &x.name, "a parameter", p);
    for (param, label) in owner.params.iter().zip(&labels) {
        let name_ok = !param.name.is_empty()
            && param.name.len() <= 32
            && param
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !name_ok {
            p.error(
                &label.key("name"),
                format!(
                    "expected lowercase letters, digits and '_' (at most 32), the {{name}} in `run`; found {:?}",
                    param.name
                ),
            );
        }
        if owner.reserved.contains(&param.name.as_str()) {
            p.error(
                &label.key("name"),
                format!(
                    "{{{}}} is one of the deploy's own values ({{ref}}, {{sha}}, {{tag}}); name the parameter otherwise",
                    param.name
                ),
            );
        }
        if let Err(e) = param.pattern() {
            p.error(&label.key("pattern"), e);
        }
        kind(app, param, label, p);
        if let Some(why) = owner.unattended
            && param.required
            && param.default.is_none()
        {
            p.error(
                label,
                format!("{why}, and nobody is there to give a value: give `default` or leave `required` off"),
            );
        }
    }
}

/// What each kind needs of the parameter and of the app.
fn kind(app: &App, param: &Param, label: &Label, p: &mut Problems) {
    let listed = !param.choices.is_empty() || param.choices_from.is_some();
    if listed && param.kind != ParamKind::Choice {
        p.error(
            label,
            "`choices` and `choices_from` are for kind = \"choice\"",
        );
    }
    if param.sweep.is_some() && param.kind != ParamKind::Backup {
        p.error(&label.key("sweep"), "`sweep` is for kind = \"backup\"");
    }
    match param.kind {
        ParamKind::Choice if !listed => {
            p.error(label, "a `choice` needs `choices` or `choices_from`");
        }
        ParamKind::Choice => {
            if let Some(from) = &param.choices_from {
                argv(p, &label.key("choices_from"), from);
            }
        }
        ParamKind::Text => {}
        ParamKind::Commit if app.repo.is_none() => p.error(
            &label.key("kind"),
            "a `commit` is resolved in the app's `repo`, and the app has none",
        ),
        ParamKind::Commit => {}
        ParamKind::Release => {
            if app.repo.is_none() && app.strategy != Strategy::Command {
                p.error(
                    &label.key("kind"),
                    "a `release` is one of the app's deploys, and the app has no Deploy (no `repo`, no strategy \"command\")",
                );
            }
            if param.default.is_some() {
                p.error(
                    &label.key("default"),
                    "a `release` is picked among the releases there are when it runs, so it cannot have a default",
                );
            }
        }
        ParamKind::Backup => backup(app, param, label, p),
    }
    if let Some(default) = &param.default
        && !matches!(param.kind, ParamKind::Release | ParamKind::Backup)
    {
        // Choices from a command are only known on its host.
        let listed = if param.choices_from.is_some() {
            None
        } else {
            Some(&param.choices)
        };
        if let Some(choices) = listed
            && let Err(e) = param.check(default, choices)
        {
            p.error(&label.key("default"), e);
        }
    }
}

/// Each `{name}` in `run` (an action's or a command sweep's) names one of
/// `params`. Without parameters braces mean nothing and are left alone.
pub(super) fn named_in_run(
    params: &[Param],
    run: &[String],
    what: &str,
    label: &Label,
    p: &mut Problems,
) {
    if params.is_empty() {
        return;
    }
    for word in run {
        for name in placeholders(word) {
            if !params.iter().any(|x| x.name == name) {
                p.error(
                    &label.key("run"),
                    format!("{{{name}}} names no parameter of this {what}"),
                );
            }
        }
    }
}

/// A `backup` offers the backups of one backup sweep (`sqlite-backup`, `postgres-backup`) of the app:
/// the one `sweep` names, or the app's only one.
fn backup(app: &App, param: &Param, label: &Label, p: &mut Problems) {
    if param.default.is_some() {
        p.error(
            &label.key("default"),
            "a `backup` has no default: which backups exist changes with every run of the sweep",
        );
    }
    if let Err(e) = app.backup_sweep(param.sweep.as_deref()) {
        let at = if param.sweep.is_some() {
            label.key("sweep")
        } else {
            label.clone()
        };
        p.error(&at, e);
    }
}
