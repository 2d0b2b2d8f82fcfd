//! Signing in: the dev login, Gitea (a real OpenID provider configured like
//! Gitea), sessions, roles and the sessions page.

#[path = "signin/app.rs"]
mod app;
#[path = "signin/dev.rs"]
mod dev;
