//! Recomputing the chain, streaming: a page of rows in memory at a time
//! (the database) or one row (a file), plus the id of one held back to tell
//! an inserted row from a broken link.

use std::borrow::Cow;
use std::io::BufRead;
use std::path::Path;

use serde::Deserialize;
use sqlx::SqlitePool;

use super::chain::{CHAINED, COLUMNS, Canonical, GENESIS, Record};

/// A chain that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Rows checked.
    pub count: u64,
    /// The last row checked (0 when there are none) and its hash, from which
    /// an incremental check continues.
    pub last_id: i64,
    pub last_hash: String,
    /// Ids between the first and last row that are not there: always 0 for
    /// the database; in a file it means a filtered export, whose rows are
    /// each checked but whose links can only be checked between neighbours.
    pub absent: u64,
}

/// The first thing wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("row #{id} was changed after it was written: its content no longer matches its hash")]
    Changed { id: i64 },
    #[error(
        "row #{id} does not link to row #{prev_id}: its prev_hash is not #{prev_id}'s hash (#{prev_id} was rewritten with a new hash, or #{id} was)"
    )]
    Unlinked { id: i64, prev_id: i64 },
    #[error("row #{id} was inserted behind opsdeck's back: the row after it links to #{prev_id}")]
    Inserted { id: i64, prev_id: i64 },
    #[error("{}", missing_message(*from, *to))]
    Missing { from: i64, to: i64 },
    #[error("line {line}: {message}")]
    Malformed { line: u64, message: String },
}

fn missing_message(from: i64, to: i64) -> String {
    if from == to {
        format!("row #{from} was deleted: the chain goes on at #{}", to + 1)
    } else {
        format!(
            "rows #{from} to #{to} were deleted: the chain goes on at #{}",
            to + 1
        )
    }
}

impl Problem {
    /// The first bad row's id (the first missing one for a deletion).
    pub fn row(&self) -> Option<i64> {
        match self {
            Problem::Changed { id }
            | Problem::Unlinked { id, .. }
            | Problem::Inserted { id, .. } => Some(*id),
            Problem::Missing { from, .. } => Some(*from),
            Problem::Malformed { .. } => None,
        }
    }
}

/// Why a verification could not finish.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Broken(#[from] Problem),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("cannot read {path}: {error}")]
    File { path: String, error: std::io::Error },
    /// A row whose columns no longer have the types opsdeck writes (a
    /// number where text belongs, bytes that are not UTF-8).
    #[error("a row after #{after} cannot be read as an audit row: {message}")]
    Unreadable { after: i64, message: String },
}

/// Walks rows in id order. `strict`: every id must follow the one before
/// (the database); otherwise absent ids are allowed (a filtered export).
struct Checker {
    strict: bool,
    prev_id: i64,
    prev_hash: String,
    /// A row whose prev_hash did not match, kept until the next row shows
    /// whether it was inserted (the next row links past it) or not.
    held: Option<i64>,
    count: u64,
    absent: u64,
}

impl Checker {
    fn new(strict: bool, prev_id: i64, prev_hash: String) -> Checker {
        Checker {
            strict,
            prev_id,
            prev_hash,
            held: None,
            count: 0,
            absent: 0,
        }
    }

    /// Checks the next row: its fields and the hash stored with them.
    fn push(&mut self, r: &Canonical<'_>, hash: &str) -> Result<(), Problem> {
        if let Some(held) = self.held.take() {
            return Err(if r.prev_hash == self.prev_hash {
                Problem::Inserted {
                    id: held,
                    prev_id: self.prev_id,
                }
            } else {
                Problem::Unlinked {
                    id: held,
                    prev_id: self.prev_id,
                }
            });
        }
        if r.id <= self.prev_id {
            return Err(Problem::Malformed {
                line: self.count + 1,
                message: format!(
                    "row #{} comes after #{}: rows must be in id order",
                    r.id, self.prev_id
                ),
            });
        }
        let follows = r.id == self.prev_id + 1;
        if follows || self.strict {
            if !follows {
                return Err(Problem::Missing {
                    from: self.prev_id + 1,
                    to: r.id - 1,
                });
            }
            if r.prev_hash != self.prev_hash {
                self.held = Some(r.id);
                return Ok(());
            }
        } else if self.count > 0 {
            // A filtered export: the link cannot be checked across absent
            // rows (and a first row that does not start the chain is its own
            // anchor), but each row's hash still can.
            self.absent += (r.id - self.prev_id - 1) as u64;
        }
        if r.hash() != hash {
            return Err(Problem::Changed { id: r.id });
        }
        self.count += 1;
        self.prev_id = r.id;
        self.prev_hash.clear();
        self.prev_hash.push_str(hash);
        Ok(())
    }

    fn finish(self) -> Result<Verified, Problem> {
        if let Some(held) = self.held {
            return Err(Problem::Unlinked {
                id: held,
                prev_id: self.prev_id,
            });
        }
        Ok(Verified {
            count: self.count,
            last_id: self.prev_id,
            last_hash: self.prev_hash,
            absent: self.absent,
        })
    }
}

/// Recomputes the whole chain in the database.
pub async fn verify(db: &SqlitePool) -> Result<Verified, VerifyError> {
    verify_after(db, 0, GENESIS.to_string()).await
}

/// Continues a verification that ended at `done`: checks that its last row
/// is still there unchanged, then only the rows written since.
pub async fn verify_from(db: &SqlitePool, done: &Verified) -> Result<Verified, VerifyError> {
    if done.last_id > 0 {
        let hash: Option<String> = sqlx::query_scalar("SELECT hash FROM audit_events WHERE id = ?")
            .bind(done.last_id)
            .fetch_optional(db)
            .await?;
        match hash {
            None => {
                return Err(Problem::Missing {
                    from: done.last_id,
                    to: done.last_id,
                }
                .into());
            }
            Some(h) if h != done.last_hash => {
                return Err(Problem::Changed { id: done.last_id }.into());
            }
            Some(_) => {}
        }
    }
    let more = verify_after(db, done.last_id, done.last_hash.clone()).await?;
    Ok(Verified {
        count: done.count + more.count,
        ..more
    })
}

/// Rows are read a page at a time, each page one JSON array that SQLite
/// builds: sqlx hands rows over from its SQLite thread one at a time, which
/// cost more than hashing them (verification ran at ~110,000 rows/s row by
/// row). The next page is built while this one is hashed.
const PAGE: usize = 4096;

/// One row of a page: the fields its hash covers, and the hash stored.
#[derive(Deserialize)]
struct Stored<'a>(
    #[serde(borrow)] Canonical<'a>,
    #[serde(borrow)] Cow<'a, str>,
);

async fn verify_after(
    db: &SqlitePool,
    after_id: i64,
    after_hash: String,
) -> Result<Verified, VerifyError> {
    let sql = format!(
        "SELECT json_group_array(json_array(json_array({CHAINED}), hash) ORDER BY id) FROM
           (SELECT {COLUMNS} FROM audit_events WHERE id > ? ORDER BY id LIMIT {PAGE})"
    );
    let fetch = |after: i64| {
        sqlx::query_scalar::<_, String>(&sql)
            .bind(after)
            .fetch_one(db)
    };
    let mut checker = Checker::new(true, after_id, after_hash);
    let (mut page, mut after) = (Some(fetch(after_id).await?), after_id);
    while let Some(text) = page.take() {
        let rows: Vec<Stored> =
            serde_json::from_str(&text).map_err(|e| VerifyError::Unreadable {
                after,
                message: e.to_string(),
            })?;
        let last = rows.last().map(|r| r.0.id).filter(|_| rows.len() == PAGE);
        // Biased: the next page's query is sent before this page is hashed.
        let (next, checked) = tokio::join!(
            biased;
            async {
                match last {
                    Some(last) => fetch(last).await.map(Some),
                    None => Ok(None),
                }
            },
            async {
                rows.iter()
                    .try_for_each(|Stored(row, hash)| checker.push(row, hash))
            }
        );
        checked?;
        page = next?;
        after = last.unwrap_or(after);
    }
    Ok(checker.finish()?)
}

/// Verifies a JSON Lines export (`opsdeck audit export --format jsonl`).
pub fn verify_file(path: &Path) -> Result<Verified, VerifyError> {
    let file_error = |error| VerifyError::File {
        path: path.display().to_string(),
        error,
    };
    let file = std::fs::File::open(path).map_err(file_error)?;
    let mut checker = Checker::new(false, 0, GENESIS.to_string());
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(file_error)?;
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(&line).map_err(|e| Problem::Malformed {
            line: n as u64 + 1,
            message: format!("not an audit row: {e}"),
        })?;
        checker.push(&r.canonical(), &r.hash)?;
    }
    Ok(checker.finish()?)
}
