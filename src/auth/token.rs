//! API tokens: `opsdeck token create` prints one once; only its SHA-256 is
//! stored, so a copy of the database cannot be used to call the API.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use super::Role;
use crate::{Error, Result};

/// Tokens look like `odk_<64 hex>` so they are easy to spot in a leak scan.
const PREFIX: &str = "odk_";

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token named `name` with `role`; returns the token (shown once).
pub async fn create(db: &SqlitePool, name: &str, role: Role) -> Result<String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(Error::BadRequest(
            "a token name is 1–64 characters of letters, digits, '-', '_' or '.'".into(),
        ));
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{PREFIX}{}", hex::encode(bytes));
    let inserted = sqlx::query(
        "INSERT INTO api_tokens (name, role, hash, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(role.as_str())
    .bind(hash(&token))
    .bind(chrono::Utc::now().timestamp_millis())
    .execute(db)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(Error::Conflict(format!(
            "a token named {name:?} exists already; revoke it or pick another name"
        )));
    }
    Ok(token)
}

/// What a presented token turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    Live {
        name: String,
        role: Role,
    },
    /// Revoked: its use is worth an audit row naming it (a stolen token?).
    Revoked {
        name: String,
    },
    Unknown,
}

/// Looks a presented token up by its hash; a live one is marked used.
pub async fn verify(db: &SqlitePool, token: &str) -> Result<Checked> {
    let hash = hash(token);
    let row: Option<(String, String)> = sqlx::query_as(
        "UPDATE api_tokens SET last_used_at = ? WHERE hash = ? AND revoked_at IS NULL
         RETURNING name, role",
    )
    .bind(chrono::Utc::now().timestamp_millis())
    .bind(&hash)
    .fetch_optional(db)
    .await?;
    if let Some((name, role)) = row {
        return Ok(match Role::parse(&role) {
            Some(role) => Checked::Live { name, role },
            None => Checked::Unknown,
        });
    }
    let revoked: Option<String> = sqlx::query_scalar("SELECT name FROM api_tokens WHERE hash = ?")
        .bind(&hash)
        .fetch_optional(db)
        .await?;
    Ok(revoked.map_or(Checked::Unknown, |name| Checked::Revoked { name }))
}

/// One row of `opsdeck token list`.
#[derive(Debug, sqlx::FromRow)]
pub struct TokenInfo {
    pub name: String,
    pub role: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub async fn list(db: &SqlitePool) -> Result<Vec<TokenInfo>> {
    Ok(sqlx::query_as(
        "SELECT name, role, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY name",
    )
    .fetch_all(db)
    .await?)
}

/// Revokes a token by name; false when no live token has that name.
pub async fn revoke(db: &SqlitePool, name: &str) -> Result<bool> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL")
            .bind(chrono::Utc::now().timestamp_millis())
            .bind(name)
            .execute(db)
            .await?;
    Ok(done.rows_affected() > 0)
}
