//! One viewer's stream: first what it missed (the newest N entries, or
//! everything after the cursor it reconnects with), then the shared live
//! follow — with the overlap between the two dropped, so every entry
//! arrives exactly once and in order.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{broadcast, mpsc};

use super::hub::{Hub, Live, Subscription};
use super::journal::{self, Entry, From};
use super::{Filter, file};
use crate::Result;

/// What a viewer receives, in order.
#[derive(Debug, Clone)]
pub enum Seen {
    Entry(Arc<Entry>),
    /// It fell this many entries behind the live follow; they were dropped
    /// for it (never buffered without bound).
    Skipped(u64),
    /// The follow ended; the browser reconnects from its last cursor.
    Ended(String),
}

/// Where a viewer starts.
pub enum Start {
    /// The newest `n` entries first.
    Newest(usize),
    /// Every entry after this cursor first (a reconnect, a resume).
    After(String),
}

/// A viewer's stream; dropping it leaves the hub.
pub struct Viewer {
    pub seen: mpsc::Receiver<Seen>,
}

/// Entries queued for one viewer before its reader waits for it: a viewer
/// that stops reading holds this much, then falls behind the broadcast.
const QUEUE: usize = 256;

impl Viewer {
    pub async fn open(hub: &Hub, filter: &Filter, start: Start) -> Result<Viewer> {
        // Subscribe first: what is written while the catch-up reads is
        // then in the subscription, and the overlap is dropped below.
        let subscription = hub.subscribe(filter).await?;
        let catch_up = match (&filter.file, &start) {
            (_, Start::Newest(0)) => None,
            (Some(path), Start::Newest(n)) => Some(CatchUp::Listed(
                file::earlier(path, None, filter.text.as_deref(), *n).await?,
            )),
            (Some(path), Start::After(cursor)) => Some(CatchUp::File(
                file::Reader::open(path, file::Place::parse(cursor), filter.text.as_deref())
                    .await?,
            )),
            // A few thousand at most; journalctl prints `--lines` with
            // `--grep` newest first, so put them in order here.
            (None, Start::Newest(n)) => Some(CatchUp::Listed(in_order(
                read_all(hub.spawn(filter, &journal::argv(filter, From::Last(*n), false))?).await,
            ))),
            (None, Start::After(cursor)) => Some(CatchUp::After(
                hub.spawn(filter, &journal::argv(filter, From::After(cursor), false))?,
            )),
        };
        let (sender, seen) = mpsc::channel(QUEUE);
        tokio::spawn(feed(catch_up, subscription, sender));
        Ok(Viewer { seen })
    }
}

/// What reads what a viewer missed: a journalctl, or a log file.
enum CatchUp {
    Listed(Vec<Entry>),
    After(tokio::process::Child),
    File(file::Reader),
}

/// Feeds one viewer until it leaves or the follow ends.
async fn feed(
    catch_up: Option<CatchUp>,
    mut subscription: Subscription,
    sender: mpsc::Sender<Seen>,
) {
    let mut last = None;
    match catch_up {
        Some(CatchUp::Listed(entries)) => {
            for entry in entries {
                if !deliver(entry, &mut last, &sender).await {
                    return;
                }
            }
        }
        Some(CatchUp::After(mut child)) => {
            // Possibly many: streamed, in the order journalctl prints them.
            if let Some(stdout) = child.stdout.take() {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let Some(entry) = journal::parse(&line) else {
                        continue;
                    };
                    if !deliver(entry, &mut last, &sender).await {
                        return;
                    }
                }
            }
            let _ = child.wait().await;
        }
        Some(CatchUp::File(mut reader)) => {
            while let Ok(Some(entry)) = reader.next_entry().await {
                if !deliver(entry, &mut last, &sender).await {
                    return;
                }
            }
        }
        None => {}
    }
    loop {
        let live = tokio::select! {
            live = subscription.receiver.recv() => live,
            // A quiet unit must not keep a gone viewer (and journalctl) alive.
            () = sender.closed() => return,
        };
        let seen = match live {
            Ok(Live::Entry(entry)) if entry.seen_by(last.as_ref()) => continue,
            Ok(Live::Entry(entry)) => Seen::Entry(entry),
            Ok(Live::Ended(why)) => {
                let _ = sender.send(Seen::Ended(why)).await;
                return;
            }
            Err(broadcast::error::RecvError::Lagged(n)) => Seen::Skipped(n),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if sender.send(seen).await.is_err() {
            return;
        }
    }
}

/// Sends a caught-up entry, remembering it as the last one seen (so the
/// live follow's overlap is dropped); false when the viewer left.
async fn deliver(
    entry: Entry,
    last: &mut Option<(String, u64)>,
    sender: &mpsc::Sender<Seen>,
) -> bool {
    *last = entry.seqnum.clone();
    sender.send(Seen::Entry(Arc::new(entry))).await.is_ok()
}

/// Up to `n` entries before `cursor` (or the newest `n`), oldest first:
/// the page's "load earlier".
pub async fn earlier(
    hub: &Hub,
    filter: &Filter,
    cursor: Option<&str>,
    n: usize,
) -> Result<Vec<Entry>> {
    if let Some(path) = &filter.file {
        let before = cursor.and_then(file::Place::parse);
        return file::earlier(path, before, filter.text.as_deref(), n).await;
    }
    let argv = match cursor {
        // `--cursor` includes the entry itself: ask for one more.
        Some(cursor) => journal::argv(filter, From::Before(cursor, n + 1), false),
        None => journal::argv(filter, From::Last(n), false),
    };
    let mut entries = read_all(hub.spawn(filter, &argv)?).await;
    if let Some(cursor) = cursor {
        entries.retain(|e| e.cursor != cursor);
    }
    let mut entries = in_order(entries);
    let extra = entries.len().saturating_sub(n);
    entries.drain(..extra);
    Ok(entries)
}

/// Every entry a (non-following) journalctl prints.
async fn read_all(mut child: tokio::process::Child) -> Vec<Entry> {
    let mut entries = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            entries.extend(journal::parse(&line));
        }
    }
    let _ = child.wait().await;
    entries
}

/// Oldest first: by time, then by place in the journal.
fn in_order(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| {
        (a.realtime_us, a.seqnum.as_ref().map(|s| s.1))
            .cmp(&(b.realtime_us, b.seqnum.as_ref().map(|s| s.1)))
    });
    entries
}
