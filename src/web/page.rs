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

/// A moment as pages show it: `<time datetime="{{ iso }}">{{ utc }}</time>`,
/// which `app.js` rewrites into the reader's own time zone.
#[derive(Debug, Clone)]
pub struct Moment {
    pub iso: String,
    pub utc: String,
}

impl Moment {
    /// From Unix milliseconds, as the database stores times.
    pub fn from_millis(ms: i64) -> Moment {
        let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        Moment {
            iso: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            utc: crate::audit::format_time(ms),
        }
    }
}
