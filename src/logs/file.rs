//! File sources (`logs = { files = [...] }`) for apps that log to files:
//! the same entries, cursors and exactly-once resume as the journal, read
//! by opsdeck itself rather than by `tail -F`, so each line's place in the
//! file is known. A cursor is `f=<inode>;o=<offset>`: the file, by inode
//! so a rotation cannot mix two files up, and the byte after the line.
//!
//! Following polls every 100 ms (well under journald's own 250 ms change
//! coalescing) instead of using inotify: a poll also sees a file renamed
//! away and recreated (logrotate's default) or truncated in place
//! (`copytruncate`), which is exactly where watchers get lost.

use std::io::SeekFrom;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, BufReader};
use tokio::sync::broadcast;

use super::hub::Live;
use super::journal::{Entry, truncate};
use crate::{Error, Result};

const POLL: Duration = Duration::from_millis(100);
/// A line without a newline this long is shown as it is (then cut).
const LONGEST_LINE: usize = 4 * super::journal::MAX_MESSAGE;
/// How far back from a place "load earlier" and backfill look for lines.
const LOOK_BACK: u64 = 4 * 1024 * 1024;

/// A place in a file: which file (inode) and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub inode: u64,
    pub offset: u64,
}

impl Place {
    pub fn cursor(&self) -> String {
        format!("f={:x};o={:x}", self.inode, self.offset)
    }

    /// A `f=…;o=…` cursor; `None` for anything else.
    pub fn parse(cursor: &str) -> Option<Place> {
        let (f, o) = cursor.trim().split_once(';')?;
        Some(Place {
            inode: u64::from_str_radix(f.strip_prefix("f=")?, 16).ok()?,
            offset: u64::from_str_radix(o.strip_prefix("o=")?, 16).ok()?,
        })
    }
}

/// The file's end now: where a live follow starts.
pub async fn end(path: &Path) -> Result<Place> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| unreadable(path, &e))?;
    Ok(Place {
        inode: meta.ino(),
        offset: meta.len(),
    })
}

/// Every line after `from` (the file's start when `from` names a file that
/// was rotated away), then `None` at the end.
pub struct Reader {
    path: PathBuf,
    source: String,
    text: Option<String>,
    lines: BufReader<tokio::fs::File>,
    place: Place,
    line: Vec<u8>,
}

impl Reader {
    pub async fn open(path: &Path, from: Option<Place>, text: Option<&str>) -> Result<Reader> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| unreadable(path, &e))?;
        let meta = file.metadata().await.map_err(|e| unreadable(path, &e))?;
        let offset = match from {
            Some(place) if place.inode == meta.ino() && place.offset <= meta.len() => place.offset,
            _ => 0,
        };
        let mut reader = Reader {
            path: path.to_owned(),
            source: path.display().to_string(),
            text: text.map(str::to_owned),
            lines: BufReader::with_capacity(64 * 1024, file),
            place: Place {
                inode: meta.ino(),
                offset,
            },
            line: Vec::new(),
        };
        reader.seek(offset).await?;
        Ok(reader)
    }

    async fn seek(&mut self, offset: u64) -> Result<()> {
        self.lines
            .seek(SeekFrom::Start(offset))
            .await
            .map_err(|e| unreadable(&self.path, &e))?;
        self.place.offset = offset;
        self.line.clear();
        Ok(())
    }

    /// The next whole line matching the text filter; `None` at the end
    /// (a partial last line waits for its newline).
    pub async fn next_entry(&mut self) -> Result<Option<Entry>> {
        loop {
            if self.line.is_empty() && self.lines.buffer().is_empty() && self.truncated() {
                self.seek(0).await?;
            }
            let n = (&mut self.lines)
                .take((LONGEST_LINE - self.line.len()) as u64)
                .read_until(b'\n', &mut self.line)
                .await
                .map_err(|e| unreadable(&self.path, &e))?;
            // A partial last line waits for its newline, unless it is
            // already longer than any message is shown.
            let whole = self.line.ends_with(b"\n") || self.line.len() >= LONGEST_LINE;
            if n == 0 || !whole {
                return Ok(None);
            }
            let start = self.place.offset;
            self.place.offset += self.line.len() as u64;
            let message = String::from_utf8_lossy(&self.line).trim_end().to_owned();
            self.line.clear();
            if self.text.as_ref().is_some_and(|t| !matches(&message, t)) {
                continue;
            }
            return Ok(Some(Entry {
                cursor: self.place.cursor(),
                realtime_us: now_us(),
                priority: 6,
                unit: self.source.clone(),
                message: truncate(message),
                seqnum: Some((format!("f{:x}", self.place.inode), start)),
            }));
        }
    }

    /// At the end: when the path now names another file (rotated), reads
    /// that one from its start; unread lines of the rotated file were read
    /// first. (A truncation of our own file is caught by `next_entry`,
    /// which checks before every read that goes to the file.)
    async fn reopen_if_rotated(&mut self) -> Result<()> {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            // Between logrotate's rename and the app's reopen: wait.
            return Ok(());
        };
        if meta.ino() != self.place.inode {
            *self = Reader::open(&self.path.clone(), None, self.text.as_deref()).await?;
        }
        Ok(())
    }

    /// Whether the file at our path is ours and was truncated since we read
    /// it: shorter than our place, or (truncated and written again past our
    /// place between two looks) without the newline our last line ended
    /// with. Checked before every read that goes to the file, so the tail
    /// of a rewritten file is never taken for a line.
    fn truncated(&self) -> bool {
        use std::os::unix::fs::FileExt;
        let Ok(file) = std::fs::File::open(&self.path) else {
            return false;
        };
        let Ok(meta) = file.metadata() else {
            return false;
        };
        if meta.ino() != self.place.inode {
            return false;
        }
        let Some(at) = self.place.offset.checked_sub(1) else {
            return false;
        };
        let mut byte = [0];
        meta.len() < self.place.offset
            || !file
                .read_at(&mut byte, at)
                .is_ok_and(|n| n == 1 && byte[0] == b'\n')
    }
}

/// The live follow of one file, broadcast to its viewers until aborted or
/// the file cannot be read any more.
pub async fn follow(
    path: PathBuf,
    from: Place,
    text: Option<String>,
    sender: broadcast::Sender<Live>,
) -> String {
    let mut reader = match Reader::open(&path, Some(from), text.as_deref()).await {
        Ok(reader) => reader,
        Err(e) => return e.to_string(),
    };
    loop {
        match reader.next_entry().await {
            Ok(Some(entry)) => {
                let _ = sender.send(Live::Entry(Arc::new(entry)));
            }
            Ok(None) => {
                tokio::time::sleep(POLL).await;
                if let Err(e) = reader.reopen_if_rotated().await {
                    return e.to_string();
                }
            }
            Err(e) => return e.to_string(),
        }
    }
}

/// Up to `n` lines before the line `before` names (or up to the file's
/// end), oldest first.
pub async fn earlier(
    path: &Path,
    before: Option<Place>,
    text: Option<&str>,
    n: usize,
) -> Result<Vec<Entry>> {
    let until = match before {
        Some(place) => place,
        None => end(path).await?,
    };
    let from = Place {
        inode: until.inode,
        offset: until.offset.saturating_sub(LOOK_BACK),
    };
    let mut reader = Reader::open(path, Some(from), text).await?;
    if reader.place.inode != until.inode {
        // The file was rotated away: nothing before it in this one.
        return Ok(Vec::new());
    }
    if from.offset > 0 {
        // Start at a line boundary: drop the partial first line.
        let mut partial = Vec::new();
        let _ = reader.lines.read_until(b'\n', &mut partial).await;
        reader.place.offset += partial.len() as u64;
    }
    let mut entries = std::collections::VecDeque::new();
    while let Some(entry) = reader.next_entry().await? {
        // A cursor names the line ending there: earlier means before it.
        let past = reader.place.offset > until.offset
            || (before.is_some() && reader.place.offset == until.offset);
        if past {
            break;
        }
        if entries.len() == n {
            entries.pop_front();
        }
        entries.push_back(entry);
    }
    Ok(entries.into())
}

/// Whether `message` holds `text`, ignoring case (`grep -iF`, as the
/// page's equivalent command says).
fn matches(message: &str, text: &str) -> bool {
    message.to_lowercase().contains(&text.to_lowercase())
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn unreadable(path: &Path, e: &std::io::Error) -> Error {
    Error::Unavailable(format!("cannot read the log file {}: {e}", path.display()))
}
