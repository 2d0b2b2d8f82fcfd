//! `[[notify]]`: an http(s) URL, known event names, known apps, and the
//! signing key a `json` receiver checks deliveries with.

use super::problems::{Label, Problems};
use super::reader::quoted_list;
use super::validate::{absolute, report};
use super::values::check_http_url;
use super::{Config, NOTIFY_EVENTS, Notify, NotifyFormat};

pub(super) fn check(config: &Config, target: &Notify, label: &Label, p: &mut Problems) {
    let key = |k: &str| label.key(k);
    report(p, &key("url"), check_http_url(&target.url));
    if target.events.is_empty() {
        p.error(
            &key("events"),
            format!(
                "expected at least one event of {}",
                quoted_list(&NOTIFY_EVENTS)
            ),
        );
    }
    for (i, event) in target.events.iter().enumerate() {
        if !NOTIFY_EVENTS.contains(&event.as_str()) {
            p.error_in(
                &key("events"),
                i,
                format!(
                    "there is no event {event:?}; expected one of {}",
                    quoted_list(&NOTIFY_EVENTS)
                ),
            );
        }
    }
    for (i, app) in target.apps.iter().enumerate() {
        if config.app(app).is_none() {
            p.error_in(
                &key("apps"),
                i,
                format!("there is no [[app]] named {app:?}"),
            );
        }
    }
    absolute(p, &key("secret_file"), target.secret_file.as_deref());
    if target.format == NotifyFormat::Json && target.secret_file.is_none() {
        p.error(
            &key("secret_file"),
            "a \"json\" receiver needs `secret_file`: the key its deliveries are signed with (X-Opsdeck-Signature)",
        );
    }
    if target.backoff.is_zero() {
        p.error(&key("backoff"), "expected a duration longer than 0");
    }
    if target.attempts == 0 {
        p.error(&key("attempts"), "expected at least 1");
    }
}
