//! Recomputing the chain, streaming: one row in memory at a time (plus one
//! held back to tell an inserted row from a broken link).

use std::io::BufRead;
use std::path::Path;

use futures_util::TryStreamExt;
use sqlx::SqlitePool;

use super::chain::{COLUMNS, GENESIS, Record, row_hash};

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
}

/// Walks rows in id order. `strict`: every id must follow the one before
/// (the database); otherwise absent ids are allowed (a filtered export).
struct Checker {
    strict: bool,
    prev_id: i64,
    prev_hash: String,
    /// A row whose prev_hash did not match, kept until the next row shows
    /// whether it was inserted (the next row links past it) or not.
    held: Option<Record>,
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

    fn push(&mut self, r: Record) -> Result<(), Problem> {
        if let Some(held) = self.held.take() {
            return Err(if r.prev_hash == self.prev_hash {
                Problem::Inserted {
                    id: held.id,
                    prev_id: self.prev_id,
                }
            } else {
                Problem::Unlinked {
                    id: held.id,
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
                self.held = Some(r);
                return Ok(());
            }
        } else if self.count > 0 {
            // A filtered export: the link cannot be checked across absent
            // rows (and a first row that does not start the chain is its own
            // anchor), but each row's hash still can.
            self.absent += (r.id - self.prev_id - 1) as u64;
        }
        if row_hash(&r) != r.hash {
            return Err(Problem::Changed { id: r.id });
        }
        self.count += 1;
        self.prev_id = r.id;
        self.prev_hash = r.hash;
        Ok(())
    }

    fn finish(self) -> Result<Verified, Problem> {
        if let Some(held) = self.held {
            return Err(Problem::Unlinked {
                id: held.id,
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

async fn verify_after(
    db: &SqlitePool,
    after_id: i64,
    after_hash: String,
) -> Result<Verified, VerifyError> {
    let mut checker = Checker::new(true, after_id, after_hash);
    let sql = format!("SELECT {COLUMNS} FROM audit_events WHERE id > ? ORDER BY id");
    let mut rows = sqlx::query_as::<_, Record>(&sql).bind(after_id).fetch(db);
    while let Some(r) = rows.try_next().await? {
        checker.push(r)?;
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
        checker.push(r)?;
    }
    Ok(checker.finish()?)
}
