//! Signing in: the dev login, Gitea (a real OpenID provider configured like
//! Gitea), sessions, roles and the sessions page.

#[path = "signin/app.rs"]
mod app;
#[path = "signin/browser.rs"]
mod browser;
#[path = "signin/dev.rs"]
mod dev;
#[path = "signin/flow.rs"]
mod flow;
#[path = "signin/gitea.rs"]
mod gitea;
#[path = "signin/sessions.rs"]
mod sessions;
mod support;

use support::oidc;
