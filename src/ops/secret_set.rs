//! Setting a secret issued elsewhere (`generate = "set"`: rfc-app's
//! `GITEA_BOT_TOKEN` from Gitea, an SMTP password from the provider): the
//! value a person pasted is checked, then written by the same job as a
//! rotation — backup, atomic write, restart, probe, restore on failure.
//! It travels from the request to that job in memory only ([`Held`]):
//! never in the stored plan, the audit log, a log line or a child's argv
//! or environment. A value refused here is never echoed: the answer and the
//! `denied` audit row say what is wrong with it, not what it is.

use crate::auth::{Actor, Role};
use crate::config::Source;
use crate::host::envfile;
use crate::steps::Held;
use crate::{Context, Error, Result};

use super::secrets::{find, refuse, request, required_role, shown};

/// The longest value accepted, in bytes: far above any token or password,
/// far below what would make an env file line unwieldy.
pub const MAX_VALUE: usize = 4096;

/// Sets secret `name` of `app` to `value` for `actor`; returns the job id.
/// Unknown app or secret → 404; a role below the secret's → 403; a secret
/// opsdeck makes itself, or a value that cannot be written → 400. Every
/// refusal is audited as `denied`.
pub async fn set(ctx: &Context, actor: &Actor, app: &str, name: &str, value: Held) -> Result<i64> {
    let app = ctx.app(app)?;
    let secret = find(app, name)?;
    ctx.require_role(actor, Some(app), "rotate", required_role(app, secret))
        .await?;
    if secret.source() != Ok(Source::Set) {
        let why = format!(
            "{} of {} is made by opsdeck, not entered (its `generate` is not \"set\"): rotate it instead",
            secret.name, app.name
        );
        return Err(refuse(ctx, actor, app, "secret.set", secret, why).await);
    }
    if let Err(why) = check(value.value()) {
        return Err(refuse(ctx, actor, app, "secret.set", secret, why).await);
    }
    let request = request(ctx, app, secret)?;
    ctx.jobs.submit_holding(actor, request, value).await
}

/// What the page that asks for a new value says about the secret.
pub struct Entry {
    /// `KEY in /path/.env`.
    pub place: String,
    /// Restarted once it is written.
    pub units: Vec<String>,
    /// The app's health check runs after that.
    pub health: bool,
    /// The previous file comes back when the restart or the check fails.
    pub restores: bool,
    pub note: String,
    pub needs: Role,
}

/// The Set page of secret `name` of `app`: 404 for an unknown one, 400
/// (not audited: nothing was asked of it yet) for one opsdeck makes.
pub fn entry(ctx: &Context, app: &str, name: &str) -> Result<Entry> {
    let app = ctx.app(app)?;
    let secret = find(app, name)?;
    let place = secret
        .place(app)
        .filter(|_| secret.source() == Ok(Source::Set));
    let Some(place) = place else {
        return Err(Error::BadRequest(format!(
            "{} of {} is made by opsdeck, not entered: rotate it from the app's page",
            secret.name, app.name
        )));
    };
    Ok(Entry {
        place: shown(&place),
        units: secret.units.clone().unwrap_or_else(|| app.units.clone()),
        health: !app.health.is_empty(),
        restores: secret.restore_on_failure,
        note: secret.note.clone().unwrap_or_default(),
        needs: required_role(app, secret),
    })
}

/// Why `value` cannot be the new value of an env file variable, without
/// repeating it or any part of it.
pub fn check(value: &str) -> std::result::Result<(), String> {
    let why = if value.is_empty() {
        "the value is empty".to_string()
    } else if value.len() > MAX_VALUE {
        format!("the value is longer than {MAX_VALUE} bytes")
    } else if value.contains(['\n', '\r']) {
        "the value holds a line break; a value in an env file is one line".to_string()
    } else if value.contains('\0') {
        "the value holds a NUL byte".to_string()
    } else if value.chars().any(char::is_control) {
        "the value holds a control character (a tab, an escape…)".to_string()
    } else if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        "the value starts or ends with a space, which pasting often adds by accident; remove it"
            .to_string()
    } else {
        match envfile::literal(value) {
            Ok(_) => return Ok(()),
            Err(e) => format!("the value cannot be written to an env file: {e}"),
        }
    };
    Err(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_problem_never_the_value() {
        let long = "x".repeat(MAX_VALUE + 1);
        for (value, why) in [
            ("", "empty"),
            ("first-line\nsecond-line", "line break"),
            ("carriage\rreturn", "line break"),
            ("nul-\0-byte", "NUL"),
            ("tab\there", "control"),
            (" leading-space", "space"),
            ("trailing-space ", "space"),
            (long.as_str(), "longer than 4096"),
            ("it's $HOME\\", "cannot be written"),
        ] {
            let e = check(value).unwrap_err();
            assert!(e.contains(why), "{value:?}: {e}");
            for part in value.split(['\n', '\r', '\0', '\t', ' ']) {
                assert!(part.len() < 4 || !e.contains(part), "{e} repeats {part:?}");
            }
        }
        for fine in ["ghp_abc123", "p@ss w#rd'x", "x".repeat(MAX_VALUE).as_str()] {
            assert_eq!(check(fine), Ok(()), "{fine}");
        }
    }
}
