//! `[[app.action.param]]`: names fit for a `{name}` placeholder, patterns
//! that compile, choices for a `choice`, a `sqlite-backup` sweep for a
//! `backup`, defaults that pass their own checks, and `run` naming only
//! declared parameters.

use super::problems::{Label, Problems};
use super::validate::{argv, labels, unique};
use super::words::placeholders;
use super::{Action, App, ParamKind};

pub(super) fn params(app: &App, action: &Action, label: &Label, p: &mut Problems) {
    let array = label.key("param");
    let labels = labels(&array, &action.params, |x| &x.name);
    unique(&action.params, &labels, |x| &x.name, "a parameter", p);
    for (param, label) in action.params.iter().zip(&labels) {
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
        if let Err(e) = param.pattern() {
            p.error(&label.key("pattern"), e);
        }
        match param.kind {
            ParamKind::Choice if param.choices.is_empty() && param.choices_from.is_none() => {
                p.error(label, "a `choice` needs `choices` or `choices_from`");
            }
            ParamKind::Choice => {
                if let Some(from) = &param.choices_from {
                    argv(p, &label.key("choices_from"), from);
                }
            }
            ParamKind::Text if !param.choices.is_empty() || param.choices_from.is_some() => {
                p.error(label, "`choices` are for kind = \"choice\"");
            }
            ParamKind::Text => {}
            ParamKind::Backup => backup(app, param, label, p),
            ParamKind::Commit | ParamKind::Release => p.error(
                &label.key("kind"),
                "this opsdeck does not resolve commit or release parameters yet; use kind = \"choice\" with `choices_from`, or \"text\" with a `pattern`",
            ),
        }
        if param.sweep.is_some() && param.kind != ParamKind::Backup {
            p.error(&label.key("sweep"), "`sweep` is for kind = \"backup\"");
        }
        if let Some(default) = &param.default
            && param.kind != ParamKind::Backup
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
    if action.params.is_empty() {
        return;
    }
    for word in &action.run {
        for name in placeholders(word) {
            if !action.params.iter().any(|x| x.name == name) {
                p.error(
                    &label.key("run"),
                    format!("{{{name}}} names no parameter of this action"),
                );
            }
        }
    }
}

/// A `backup` offers the backups of one `sqlite-backup` sweep of the app:
/// the one `sweep` names, or the app's only one.
fn backup(app: &App, param: &super::Param, label: &Label, p: &mut Problems) {
    if !param.choices.is_empty() || param.choices_from.is_some() {
        p.error(
            label,
            "a `backup` offers its sweep's backups; `choices` are for kind = \"choice\"",
        );
    }
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
