//! Browser sessions, kept server-side in the `sessions` table. The cookie
//! holds a random id; only its SHA-256 is stored, so a copy of the database
//! cannot be replayed as a cookie. Each session carries its own CSRF token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::{HeaderMap, header};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use super::Role;
use crate::Result;
use crate::config::{self, Config};

/// `auth.session_idle` when unset: a working day without a click.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(8 * 3600);
/// `auth.session_max` when unset: sign in again at least once a week.
pub const DEFAULT_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// `last_seen_at` is written at most this often per session, so the session
/// check on every request is a read, not a write; idle expiry is therefore
/// exact to within this interval (or a tenth of the idle time if shorter).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A live session, as the auth middleware and the sessions page see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Row id: names a session on the sessions page without revealing the
    /// cookie or its hash.
    pub id: i64,
    pub login: String,
    pub role: Role,
    pub csrf: String,
    /// Gitea groups at sign-in (`org`, `org:team`); empty for the dev login.
    pub groups: Vec<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub remote: String,
    pub user_agent: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    login: String,
    role: String,
    csrf: String,
    groups: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    remote: String,
    user_agent: String,
}

const COLUMNS: &str = "rowid AS id, login, role, csrf, groups, created_at, last_seen_at, \
                       expires_at, remote, user_agent";

impl Row {
    /// None when the stored role is not one we know (a row from a future
    /// version): such a session grants nothing.
    fn into_session(self) -> Option<Session> {
        Some(Session {
            id: self.id,
            role: Role::parse(&self.role)?,
            login: self.login,
            csrf: self.csrf,
            groups: serde_json::from_str(&self.groups).unwrap_or_default(),
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            expires_at: self.expires_at,
            remote: self.remote,
            user_agent: self.user_agent,
        })
    }
}

/// Who signs in, as the sign-in flow established it.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub login: &'a str,
    pub role: Role,
    pub groups: &'a [String],
    pub remote: &'a str,
    pub user_agent: &'a str,
}

/// `(idle, max)` lifetimes from `[auth]`, with the defaults.
pub fn lifetimes(auth: &config::Auth) -> (Duration, Duration) {
    (
        auth.session_idle.unwrap_or(DEFAULT_IDLE),
        auth.session_max.unwrap_or(DEFAULT_MAX),
    )
}

/// The session cookie.
pub const SESSION_COOKIE: &str = "opsdeck_session";
/// Binds a Gitea sign-in in flight to the browser that started it
/// (`oidc`): set by `/auth/gitea`, read once by `/auth/callback`.
pub const SIGNIN_COOKIE: &str = "opsdeck_signin";

/// A cookie's name: `__Host-` on https, so no subdomain or plain-http page
/// can set or shadow it (the prefix requires `Secure`, which http lacks).
pub fn cookie_name(config: &Config, base: &str) -> String {
    if is_https(config) {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

fn is_https(config: &Config) -> bool {
    config.server.public_url.starts_with("https://")
}

/// The `Set-Cookie` value of cookie `base`: HttpOnly, SameSite=Lax (sent
/// on the top-level navigation back from Gitea, never on another site's
/// form post), Secure on https; `max_age` seconds, or (None) until the
/// browser closes.
pub fn cookie(config: &Config, base: &str, value: &str, max_age: Option<u64>) -> String {
    let secure = if is_https(config) { "; Secure" } else { "" };
    let max_age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    format!(
        "{}={value}; HttpOnly; SameSite=Lax; Path=/{max_age}{secure}",
        cookie_name(config, base)
    )
}

/// The `Set-Cookie` value that hands a new session to the browser. No
/// `Max-Age`: the browser forgets it when closed, the server enforces expiry.
pub fn set_cookie(config: &Config, value: &str) -> String {
    cookie(config, SESSION_COOKIE, value, None)
}

/// The `Set-Cookie` value that makes the browser drop the session cookie.
pub fn clear_cookie(config: &Config) -> String {
    cookie(config, SESSION_COOKIE, "", Some(0))
}

/// Cookie `base`'s value in the `Cookie` headers of a request, if present
/// (HTTP/2 may split cookies over several headers).
pub fn find_cookie<'h>(config: &Config, base: &str, headers: &'h HeaderMap) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| read_cookie(config, base, h))
}

fn read_cookie<'h>(config: &Config, base: &str, cookie_header: &'h str) -> Option<&'h str> {
    let name = cookie_name(config, base);
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The `sessions` table, with the live sessions in use kept in memory: the
/// session check runs before every request, and a read through sqlx costs
/// about a hundred times a map lookup.
///
/// Every change opsdeck makes to a session (sign-out, revoke, the idle
/// clock) goes through here and updates the memory at once. A change made to
/// the table behind opsdeck's back is seen when the session's idle clock is
/// next written (at most [`TOUCH_EVERY`] later), which re-reads the row.
#[derive(Clone)]
pub struct Sessions {
    db: SqlitePool,
    idle: Duration,
    max: Duration,
    /// Live sessions by the hash of their cookie.
    cached: Arc<Mutex<HashMap<String, Session>>>,
}

/// Past this many cached sessions, ended ones are dropped from memory.
const CACHE_PRUNE_AT: usize = 1024;

impl Sessions {
    pub fn new(db: SqlitePool, auth: &config::Auth) -> Sessions {
        let (idle, max) = lifetimes(auth);
        Sessions {
            db,
            idle,
            max,
            cached: Arc::default(),
        }
    }

    /// Not expired, not idle longer than `session_idle`, not older than
    /// `session_max`.
    fn alive(&self, s: &Session, now: i64) -> bool {
        now < s.expires_at
            && now < s.created_at.saturating_add(millis(self.max))
            && now < s.last_seen_at.saturating_add(millis(self.idle))
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // Entries are replaced whole: a panic elsewhere cannot leave one half-written.
        self.cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a session; returns the cookie value (never stored) and the session.
    pub async fn create(&self, who: NewSession<'_>) -> Result<(String, Session)> {
        let cookie = random_hex();
        let now = now_millis();
        let expires_at = now.saturating_add(millis(self.max));
        // Finished sessions are only worth keeping while they could be listed.
        sqlx::query("DELETE FROM sessions WHERE expires_at < ?")
            .bind(now)
            .execute(&self.db)
            .await?;
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO sessions (id_hash, login, role, groups, csrf, created_at, last_seen_at,
                                   expires_at, remote, user_agent)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}"
        ))
        .bind(hash(&cookie))
        .bind(who.login)
        .bind(who.role.as_str())
        .bind(serde_json::to_string(who.groups).map_err(anyhow::Error::from)?)
        .bind(random_hex())
        .bind(now)
        .bind(now)
        .bind(expires_at)
        .bind(who.remote)
        .bind(crate::error::clip(who.user_agent, 256))
        .fetch_one(&self.db)
        .await?;
        let session = row
            .into_session()
            .ok_or_else(|| anyhow::anyhow!("a session just written could not be read back"))?;
        Ok((cookie, session))
    }

    /// The live session behind a cookie value: not revoked, not idle longer
    /// than `auth.session_idle`, not older than `auth.session_max`.
    /// Refreshes its idle clock.
    pub async fn lookup(&self, cookie_value: &str) -> Result<Option<Session>> {
        let id_hash = hash(cookie_value);
        let cached = self.cache().get(&id_hash).cloned();
        let (mut session, from_cache) = match cached {
            Some(session) => (session, true),
            None => {
                let row: Option<Row> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM sessions WHERE id_hash = ? AND revoked_at IS NULL"
                ))
                .bind(&id_hash)
                .fetch_optional(&self.db)
                .await?;
                match row.and_then(Row::into_session) {
                    Some(session) => (session, false),
                    None => return Ok(None),
                }
            }
        };
        let now = now_millis();
        let touch_every = millis(TOUCH_EVERY.min(self.idle / 10));
        let touch = now - session.last_seen_at >= touch_every;
        if self.alive(&session, now) && touch {
            // Read back, so a row changed behind our back is seen here.
            let row: Option<Row> = sqlx::query_as(&format!(
                "UPDATE sessions SET last_seen_at = ? WHERE rowid = ? AND revoked_at IS NULL
                 RETURNING {COLUMNS}"
            ))
            .bind(now)
            .bind(session.id)
            .fetch_optional(&self.db)
            .await?;
            match row.and_then(Row::into_session) {
                Some(touched) => session = touched,
                None => session.expires_at = now,
            }
        }
        if !self.alive(&session, now) {
            self.cache().remove(&id_hash);
            return Ok(None);
        }
        if touch || !from_cache {
            let mut cache = self.cache();
            if cache.len() >= CACHE_PRUNE_AT {
                cache.retain(|_, s| self.alive(s, now));
            }
            cache.insert(id_hash, session.clone());
        }
        Ok(Some(session))
    }

    /// Signs out: ends the session behind a cookie; returns it if it was live.
    pub async fn end(&self, cookie_value: &str) -> Result<Option<Session>> {
        let id_hash = hash(cookie_value);
        let ended = self.revoke_where("id_hash", id_hash.clone()).await?;
        self.cache().remove(&id_hash);
        Ok(ended)
    }

    /// Revokes a session by its row id (the sessions page); returns it if it
    /// was live.
    pub async fn revoke(&self, id: i64) -> Result<Option<Session>> {
        let revoked = self.revoke_where("rowid", id).await?;
        self.cache().retain(|_, s| s.id != id);
        Ok(revoked)
    }

    /// Marks the live session whose `column` (one of ours, never input)
    /// is `key` revoked now; the session if it was live.
    async fn revoke_where<K>(&self, column: &str, key: K) -> Result<Option<Session>>
    where
        K: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send,
    {
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE sessions SET revoked_at = ? WHERE {column} = ? AND revoked_at IS NULL
             RETURNING {COLUMNS}"
        ))
        .bind(now_millis())
        .bind(key)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.and_then(Row::into_session))
    }

    /// Every live session, most recently active first.
    pub async fn list_active(&self) -> Result<Vec<Session>> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE revoked_at IS NULL AND expires_at > ?
             ORDER BY last_seen_at DESC"
        ))
        .bind(now_millis())
        .fetch_all(&self.db)
        .await?;
        let now = now_millis();
        Ok(rows
            .into_iter()
            .filter_map(Row::into_session)
            .filter(|s| self.alive(s, now))
            .collect())
    }
}

fn hash(cookie_value: &str) -> String {
    hex::encode(Sha256::digest(cookie_value.as_bytes()))
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
