//! `Page`: what `templates/base.html` needs on every page — who is signed
//! in (for the nav and the sign-out form) and the CSRF token every form and
//! htmx request carries. Every page template has a `page: Page` field and
//! its handler takes `page: Page` as an extractor.

use std::sync::LazyLock;

use axum::extract::FromRequestParts;
use axum::http::Extensions;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::assets;
use super::auth::Csrf;
use crate::auth::{Actor, Role};

#[derive(Debug, Clone, Default)]
pub struct Page {
    pub actor: Option<Actor>,
    pub csrf: String,
}

impl Page {
    /// The URL of a file in `static/`, versioned by its content so browsers
    /// may cache it forever and still see a new release at once.
    pub fn asset(&self, name: &str) -> String {
        static VERSIONS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
            assets::FILES
                .iter()
                .map(|f| (f.name, hex::encode(&Sha256::digest(f.bytes)[..6])))
                .collect()
        });
        match VERSIONS.iter().find(|(n, _)| *n == name) {
            Some((_, version)) => format!("/static/{name}?v={version}"),
            None => format!("/static/{name}"),
        }
    }

    /// Whether the signed-in actor may do a site-wide `action` (`audit`,
    /// `sessions`): the nav hides what would only answer 403.
    pub fn may(&self, action: &str) -> bool {
        self.actor
            .as_ref()
            .is_some_and(|a| a.role >= Role::default_for(action))
    }

    /// The `hx-headers` JSON on `<body>`: htmx sends the CSRF token with
    /// every request it makes, without any inline script.
    pub fn hx_headers(&self) -> String {
        serde_json::json!({ "X-CSRF-Token": self.csrf }).to_string()
    }
}

impl Page {
    pub fn from_extensions(extensions: &Extensions) -> Page {
        Page {
            actor: extensions.get::<Actor>().cloned(),
            csrf: extensions
                .get::<Csrf>()
                .map(|c| c.0.clone())
                .unwrap_or_default(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Page, Self::Rejection> {
        Ok(Page::from_extensions(&parts.extensions))
    }
}

/// A moment as pages show it: `<time datetime="{{ iso }}" title="{{ utc }}">
/// {{ ago }}</time>` — how long ago (or how soon), with the absolute time
/// in UTC, the zone of every time opsdeck shows, on hover. `app.js` keeps
/// the relative words current on a page left open.
#[derive(Debug, Clone)]
pub struct Moment {
    pub iso: String,
    pub utc: String,
    pub ago: String,
}

impl Moment {
    /// From Unix milliseconds, as the database stores times.
    pub fn from_millis(ms: i64) -> Moment {
        let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        Moment {
            iso: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            utc: crate::audit::format_time(ms),
            ago: relative(ms, chrono::Utc::now().timestamp_millis()),
        }
    }
}

/// `ms` as words relative to `now` (both Unix milliseconds): "just now",
/// "3 min ago", "in 5 h", "2 days ago"; beyond two weeks, the UTC date.
/// `static/app.js` applies the same rules in the browser.
pub fn relative(ms: i64, now: i64) -> String {
    let seconds = (now - ms) / 1000;
    let (n, unit) = match seconds.abs() {
        s if s < 45 => return "just now".to_owned(),
        s if s < 90 * 60 => ((s + 30) / 60, "min"),
        s if s < 36 * 3600 => ((s + 1800) / 3600, "h"),
        s if s < 14 * 86400 => ((s + 43200) / 86400, "days"),
        _ => {
            let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
            return format!("on {}", at.format("%Y-%m-%d"));
        }
    };
    let n = n.max(1);
    if seconds >= 0 {
        format!("{n} {unit} ago")
    } else {
        format!("in {n} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::relative;

    const MIN: i64 = 60_000;
    const NOW: i64 = 1_796_523_957_000; // 2026-12-06 02:25:57 UTC

    #[test]
    fn times_read_as_how_long_ago_or_how_soon() {
        assert_eq!(relative(NOW, NOW), "just now");
        assert_eq!(relative(NOW - 44_000, NOW), "just now");
        assert_eq!(relative(NOW - 50_000, NOW), "1 min ago");
        assert_eq!(relative(NOW - 3 * MIN, NOW), "3 min ago");
        assert_eq!(relative(NOW - 89 * MIN, NOW), "89 min ago");
        assert_eq!(relative(NOW - 3 * 60 * MIN, NOW), "3 h ago");
        assert_eq!(relative(NOW + 5 * 60 * MIN, NOW), "in 5 h");
        assert_eq!(relative(NOW + 10 * MIN, NOW), "in 10 min");
        assert_eq!(relative(NOW - 36 * 60 * MIN, NOW), "2 days ago");
        assert_eq!(relative(NOW - 13 * 24 * 60 * MIN, NOW), "13 days ago");
    }

    #[test]
    fn old_times_show_their_utc_date() {
        assert_eq!(relative(NOW - 20 * 24 * 60 * MIN, NOW), "on 2026-11-16");
    }
}
