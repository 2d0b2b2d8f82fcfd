//! A job's output: lines numbered from 1, fanned out live through a
//! broadcast channel and written to `job_output` in chunks (a row per
//! batch, never a row per line). A [`Follower`] gets every line after N
//! exactly once, in order, whether it is already stored, waiting to be
//! stored, or not printed yet.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::{broadcast, mpsc};

use super::{State, store};
use crate::Result;
use crate::host::lines::Lines;
use crate::steps::redact::{MaskedStream, Redactor};

/// Lines are stored at least this often while a job prints...
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// ...and as soon as this many are waiting.
const FLUSH_LINES: usize = 16384;
/// Chunks waiting to be stored before reading the child pauses.
const STORE_BACKLOG: usize = 16;
/// Batches a live follower may fall behind before it re-reads the database.
const LIVE_BACKLOG: usize = 512;

#[derive(Debug)]
struct Batch {
    first: u64,
    lines: Lines,
}

#[derive(Debug, Clone)]
enum Event {
    Lines(Arc<Batch>),
    End(State),
}

/// The live side of one queued or running job's output.
pub struct Live {
    inner: Mutex<LiveInner>,
}

struct LiveInner {
    /// The next line's number.
    next: u64,
    /// Lines up to this number are in the database.
    stored: u64,
    /// Lines after `stored`, in batches, as they were broadcast.
    unstored: Vec<Arc<Batch>>,
    end: Option<State>,
    events: broadcast::Sender<Event>,
}

impl Live {
    pub fn new() -> Arc<Live> {
        Arc::new(Live {
            inner: Mutex::new(LiveInner {
                next: 1,
                stored: 0,
                unstored: Vec::new(),
                end: None,
                events: broadcast::channel(LIVE_BACKLOG).0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LiveInner> {
        // A panic elsewhere cannot leave these few fields half-updated.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tells every follower the job ended; called after the final state is stored.
    pub fn end(&self, state: State) {
        let mut live = self.lock();
        live.end = Some(state);
        let _ = live.events.send(Event::End(state));
    }
}

/// Masks (with `redactor`), numbers, broadcasts and stores every line sent
/// to `lines` until all its senders are gone; returns how many lines the job printed. Storing runs
/// in a task of its own so that reading the child never waits for SQLite
/// (a child blocked on a full pipe is a slower build).
pub async fn record(
    live: Arc<Live>,
    db: SqlitePool,
    job: i64,
    mut lines: mpsc::Receiver<Lines>,
    redactor: Arc<Redactor>,
) -> u64 {
    let (chunks, to_store) = mpsc::channel(STORE_BACKLOG);
    let storing = tokio::spawn(store_chunks(live.clone(), db, job, to_store));
    let flush_timer = tokio::time::sleep(FLUSH_EVERY);
    tokio::pin!(flush_timer);
    let mut chunk: Vec<Arc<Batch>> = Vec::new();
    let mut waiting = 0usize;
    // One masked stream per pipe: a cut line's rest comes from its own.
    let mut masked = MaskedStream::new(&redactor);
    let mut masked_errors = MaskedStream::new(&redactor);
    loop {
        tokio::select! {
            batch = lines.recv() => match batch {
                Some(batch) => {
                    let batch = if batch.all_stderr() {
                        let mut batch = masked_errors.mask(batch);
                        batch.mark_stderr();
                        batch
                    } else {
                        masked.mask(batch)
                    };
                    if batch.is_empty() {
                        continue;
                    }
                    if chunk.is_empty() {
                        flush_timer.as_mut().reset(tokio::time::Instant::now() + FLUSH_EVERY);
                    }
                    waiting += batch.len();
                    chunk.push(publish(&live, batch));
                    if waiting >= FLUSH_LINES {
                        let _ = chunks.send(std::mem::take(&mut chunk)).await;
                        waiting = 0;
                    }
                }
                None => {
                    let mut errors = masked_errors.finish();
                    errors.mark_stderr();
                    for rest in [masked.finish(), errors] {
                        if !rest.is_empty() {
                            chunk.push(publish(&live, rest));
                        }
                    }
                    break;
                }
            },
            _ = &mut flush_timer, if !chunk.is_empty() => {
                let _ = chunks.send(std::mem::take(&mut chunk)).await;
                waiting = 0;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = chunks.send(chunk).await;
    }
    drop(chunks);
    let _ = storing.await;
    live.lock().next - 1
}

fn publish(live: &Live, lines: Lines) -> Arc<Batch> {
    let mut live = live.lock();
    let batch = Arc::new(Batch {
        first: live.next,
        lines,
    });
    live.next += batch.lines.len() as u64;
    live.unstored.push(batch.clone());
    let _ = live.events.send(Event::Lines(batch.clone()));
    batch
}

/// Writes each chunk of batches as one row, in order; followers see the
/// lines in `unstored` until they are in the database.
async fn store_chunks(
    live: Arc<Live>,
    db: SqlitePool,
    job: i64,
    mut chunks: mpsc::Receiver<Vec<Arc<Batch>>>,
) {
    while let Some(batches) = chunks.recv().await {
        let (Some(first), Some(last)) = (batches.first(), batches.last()) else {
            continue;
        };
        let (first, last) = (first.first, last.first + last.lines.len() as u64 - 1);
        let mut data = Vec::with_capacity(batches.iter().map(|b| b.lines.text().len()).sum());
        // Which lines of the chunk are stderr: `start-end` ranges of
        // indexes in it, comma-separated; none (NULL) for stdout only.
        let mut stderr = String::new();
        for batch in &batches {
            data.extend_from_slice(batch.lines.text().as_bytes());
            let at = (batch.first - first) as usize;
            for (start, end) in batch.lines.stderr() {
                if !stderr.is_empty() {
                    stderr.push(',');
                }
                stderr.push_str(&format!("{}-{}", at + start, at + end));
            }
        }
        // Stored joined by `\n`, without one after the last line.
        data.pop();
        let stderr = (!stderr.is_empty()).then_some(stderr);
        if let Err(e) = store::insert_chunk(&db, job, first, last, data, stderr).await {
            tracing::error!(job, first, last, error = %e, "job output lines could not be stored");
        }
        let mut live = live.lock();
        live.stored = last;
        live.unstored.drain(..batches.len());
    }
}

/// What a follower receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// Consecutive lines numbered from `first`; `stderr` which of them
    /// (ranges of indexes in `lines`, see
    /// [`crate::host::lines::in_ranges`]) came from stderr.
    Lines {
        first: u64,
        lines: Vec<String>,
        stderr: Vec<(usize, usize)>,
    },
    /// The job ended in this state; nothing follows.
    End(State),
}

/// Reads a job's output after a given line: stored chunks first, then the
/// lines not stored yet, then live ones, each exactly once.
pub struct Follower {
    db: SqlitePool,
    job: i64,
    live: Option<Arc<Live>>,
    /// The last line handed out.
    after: u64,
    events: Option<broadcast::Receiver<Event>>,
    /// Stored chunks starting up to this line are still to be read.
    replay_until: Option<u64>,
    /// What comes after the stored chunks of the current catch-up: the
    /// batches not stored yet, and the end if the job has ended.
    tail: Vec<Arc<Batch>>,
    tail_end: Option<State>,
    ready: VecDeque<Followed>,
    /// Stop after what exists now instead of waiting for the job to end.
    only_now: bool,
    done: bool,
}

impl Follower {
    pub(super) fn new(
        db: SqlitePool,
        job: i64,
        live: Option<Arc<Live>>,
        after: u64,
        only_now: bool,
    ) -> Follower {
        Follower {
            db,
            job,
            live,
            after,
            events: None,
            replay_until: None,
            tail: Vec::new(),
            tail_end: None,
            ready: VecDeque::new(),
            only_now,
            done: false,
        }
    }

    /// The next lines or the end; `None` once the end was given (or, with
    /// `only_now`, once what existed is read).
    pub async fn next(&mut self) -> Result<Option<Followed>> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Ok(Some(item));
            }
            if self.done {
                return Ok(None);
            }
            if let Some(until) = self.replay_until {
                self.replay(until).await?;
                continue;
            }
            let Some(events) = self.events.as_mut() else {
                self.catch_up().await?;
                continue;
            };
            match events.recv().await {
                Ok(Event::Lines(batch)) => self.take(batch.first, &batch.lines),
                Ok(Event::End(state)) => self.finish(state),
                // Fell behind, or the job just ended: start over from the
                // database, which by then holds what was missed.
                Err(_) => self.events = None,
            }
        }
    }

    /// Snapshots what exists now: subscribes to live lines, notes what is
    /// stored and what is not yet, so that together nothing is missed.
    async fn catch_up(&mut self) -> Result<()> {
        match &self.live {
            Some(live) => {
                let live = live.lock();
                self.events = Some(live.events.subscribe());
                self.replay_until = Some(live.stored);
                self.tail = live.unstored.clone();
                self.tail_end = live.end;
            }
            None => {
                // Not live: the job has ended and everything is stored.
                let state = store::state(&self.db, self.job)
                    .await?
                    .unwrap_or(State::Interrupted);
                self.replay_until = Some(u64::MAX);
                self.tail = Vec::new();
                self.tail_end = Some(state);
            }
        }
        Ok(())
    }

    async fn replay(&mut self, until: u64) -> Result<()> {
        let chunks = store::chunks(&self.db, self.job, self.after, until, 8).await?;
        if chunks.is_empty() {
            self.replay_until = None;
            for batch in std::mem::take(&mut self.tail) {
                self.take(batch.first, &batch.lines);
            }
            if let Some(state) = self.tail_end.take() {
                self.finish(state);
            }
            if self.only_now {
                self.done = true;
            }
            return Ok(());
        }
        for (first, data, stderr) in chunks {
            let text = match String::from_utf8(data) {
                Ok(text) => text,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            };
            // Rows from before stderr was marked hold NULL: all stdout.
            let lines = Lines::from_joined(text).with_stderr(parse_ranges(stderr.as_deref()));
            self.take(u64::try_from(first).unwrap_or(0), &lines);
        }
        Ok(())
    }

    /// Queues the lines of a batch that come after the last one handed out.
    fn take(&mut self, first: u64, lines: &Lines) {
        let skip = usize::try_from((self.after + 1).saturating_sub(first)).unwrap_or(usize::MAX);
        if skip >= lines.len() || self.done {
            return;
        }
        let first = first + skip as u64;
        self.after = first + (lines.len() - skip) as u64 - 1;
        let stderr = lines
            .stderr()
            .iter()
            .map(|&(start, end)| (start.saturating_sub(skip), end.saturating_sub(skip)))
            .filter(|(start, end)| start < end)
            .collect();
        self.ready.push_back(Followed::Lines {
            first,
            lines: lines.iter().skip(skip).map(str::to_owned).collect(),
            stderr,
        });
    }

    fn finish(&mut self, state: State) {
        if !self.only_now {
            self.ready.push_back(Followed::End(state));
        }
        self.done = true;
    }
}

/// A stored chunk's stderr ranges (`start-end,…`); a malformed part is
/// skipped, so a damaged row still shows its lines, unmarked.
fn parse_ranges(stored: Option<&str>) -> Vec<(usize, usize)> {
    stored
        .unwrap_or_default()
        .split(',')
        .filter_map(|range| {
            let (start, end) = range.split_once('-')?;
            Some((start.parse().ok()?, end.parse().ok()?))
        })
        .collect()
}
