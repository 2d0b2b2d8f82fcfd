//! What every request handler and job submission shares ([`Context`]): the
//! config, the database, the audit log, the job engine, sessions, Gitea
//! sign-in, the log hub — and the one permission check, [`Context::authorize`],
//! which records every refusal in the audit log.

use std::sync::Arc;

use crate::actor::{Actor, Role};
use crate::audit::{Audit, Event, Outcome};
use crate::auth::{limit, oidc, session};
use crate::config::{App, Config};
use crate::error::Quoted;
use crate::host::secret::ServerKey;
use crate::{Error, Result, db, jobs, logs};

/// Everything a request handler or a job needs, cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub db: sqlx::SqlitePool,
    pub audit: Audit,
    pub jobs: jobs::Engine,
    /// Sign-in attempts per client address (dev login and Gitea).
    pub signin_limit: limit::Limiter,
    /// Browser sessions (the table, and the live ones in memory).
    pub sessions: session::Sessions,
    /// Gitea sign-in; discovers Gitea in the background.
    pub gitea: oidc::Gitea,
    /// Fingerprints secret values (`<data_dir>/server.key`).
    pub server_key: ServerKey,
    /// Shares one `journalctl --follow` among the viewers of a filter.
    pub logs: logs::Hub,
}

impl Context {
    /// Opens the database, starts the job engine (recovering what a previous
    /// run left behind) and starts Gitea discovery in the background.
    pub async fn start(config: Config) -> anyhow::Result<Context> {
        let config = Arc::new(config);
        let db = db::open(&config.server.data_dir).await?;
        let audit = Audit::new(db.clone(), &config.audit);
        let server_key = ServerKey::load_or_create(&config.server.data_dir)?;
        let jobs = jobs::Engine::start(
            config.clone(),
            db.clone(),
            audit.clone(),
            server_key.clone(),
        )
        .await?;
        let gitea = oidc::Gitea::start(&config);
        let logs = logs::Hub::new(config.clone());
        let sessions = session::Sessions::new(db.clone(), &config.auth);
        Ok(Context {
            config,
            db,
            audit,
            jobs,
            signin_limit: limit::Limiter::new(limit::SIGNINS_PER_MINUTE),
            sessions,
            gitea,
            server_key,
            logs,
        })
    }
}

impl Context {
    /// Checks that `actor` may do `action` (`view`, `deploy`, …) on `app`;
    /// a refusal is recorded as a `denied` audit row and returned as 403.
    pub async fn authorize(&self, actor: &Actor, app: Option<&App>, action: &str) -> Result<()> {
        let needed = match app {
            Some(app) => app.required_role(action),
            None => Role::default_for(action),
        };
        self.require_role(actor, app, action, needed).await
    }

    /// Like [`Context::authorize`], with the role given (a custom action's
    /// own `role`).
    pub async fn require_role(
        &self,
        actor: &Actor,
        app: Option<&App>,
        action: &str,
        needed: Role,
    ) -> Result<()> {
        if actor.role >= needed {
            return Ok(());
        }
        let app_name = app.map_or("", |a| a.name.as_str());
        self.audit
            .record(
                Event::new(actor, action, app_name)
                    .outcome(Outcome::Denied)
                    .detail(serde_json::json!({"needed": needed, "had": actor.role})),
            )
            .await?;
        Err(Error::Forbidden(format!(
            "{action} needs the {needed} role; you are {}",
            actor.role
        )))
    }

    /// The apps `actor` may view, in config order: what lists of apps
    /// (the dashboard, `/insights`) show, so a page never shows what the
    /// app's own page would refuse.
    pub fn viewable<'a>(&'a self, actor: &'a Actor) -> impl Iterator<Item = &'a App> + 'a {
        self.config
            .apps
            .iter()
            .filter(|app| actor.role >= app.required_role("view"))
    }

    /// The app named in a URL, or 404.
    pub fn app(&self, name: &str) -> Result<&App> {
        self.config
            .app(name)
            .ok_or_else(|| Error::NotFound(format!("there is no app named {}", Quoted(name))))
    }
}
