//! The follow hub: one `journalctl --follow` per distinct filter, its
//! entries fanned out to every viewer through a broadcast channel, killed
//! when its last viewer leaves. Cockpit runs a journalctl (and a bridge)
//! per viewer; here a hundred viewers of a unit cost one process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::broadcast;

use super::journal::{self, Entry, From};
use super::{Filter, file};
use crate::config::{Config, LogLimits};
use crate::host::ssh::Remote;
use crate::host::{self, Host};
use crate::{Error, Result};

/// Entries a viewer may fall behind before it is told lines were skipped.
const BACKLOG: usize = 4096;

/// What a follower broadcasts.
#[derive(Debug, Clone)]
pub enum Live {
    Entry(Arc<Entry>),
    /// journalctl ended (journald restarted, the host went away): viewers
    /// end their stream, and browsers reconnect where they were.
    Ended(String),
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    followers: HashMap<Filter, Follower>,
    viewers: usize,
}

struct Follower {
    /// Tells each run of the follower apart, so an ended one never
    /// removes its successor.
    id: u64,
    sender: broadcast::Sender<Live>,
    viewers: usize,
    /// Reads journalctl; aborting it kills journalctl (`kill_on_drop`).
    task: tokio::task::JoinHandle<()>,
}

/// A viewer's place in the hub; leaving (drop) may stop the follower.
pub struct Subscription {
    hub: Arc<Inner>,
    filter: Filter,
    id: u64,
    pub receiver: broadcast::Receiver<Live>,
}

impl Hub {
    pub fn new(config: Arc<Config>) -> Hub {
        Hub {
            inner: Arc::new(Inner {
                config,
                state: Mutex::default(),
            }),
        }
    }

    fn limits(&self) -> &LogLimits {
        &self.inner.config.logs
    }

    /// How many `journalctl --follow` processes run, and how many viewers.
    pub fn counts(&self) -> (usize, usize) {
        let state = lock(&self.inner.state);
        (state.followers.len(), state.viewers)
    }

    /// Joins the follower of `filter`, starting it if none runs. Every
    /// entry written after this returns reaches the subscription.
    pub async fn subscribe(&self, filter: &Filter) -> Result<Subscription> {
        if let Some(joined) = self.join(filter)? {
            return Ok(joined);
        }
        // Refuse before starting anything; checked again once started.
        self.check_limits(&lock(&self.inner.state), true)?;
        let source = self.start(filter).await?;
        let (sender, _) = broadcast::channel(BACKLOG);
        let mut state = lock(&self.inner.state);
        if state.followers.contains_key(filter) {
            // Another viewer started it meanwhile: ours is killed on drop.
            drop(state);
            return self.join(filter)?.ok_or_else(|| {
                Error::Unavailable("the log follower stopped while starting".into())
            });
        }
        self.check_limits(&state, true)?;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let task = tokio::spawn(run(
            source,
            sender.clone(),
            (self.inner.clone(), filter.clone(), id),
        ));
        let receiver = sender.subscribe();
        state.followers.insert(
            filter.clone(),
            Follower {
                id,
                sender,
                viewers: 1,
                task,
            },
        );
        state.viewers += 1;
        Ok(Subscription {
            hub: self.inner.clone(),
            filter: filter.clone(),
            id,
            receiver,
        })
    }

    /// Joins a running follower of `filter`, if there is one.
    fn join(&self, filter: &Filter) -> Result<Option<Subscription>> {
        let mut state = lock(&self.inner.state);
        if !state.followers.contains_key(filter) {
            return Ok(None);
        }
        self.check_limits(&state, false)?;
        state.viewers += 1;
        let Some(follower) = state.followers.get_mut(filter) else {
            return Ok(None);
        };
        follower.viewers += 1;
        Ok(Some(Subscription {
            hub: self.inner.clone(),
            filter: filter.clone(),
            id: follower.id,
            receiver: follower.sender.subscribe(),
        }))
    }

    fn check_limits(&self, state: &State, new_follower: bool) -> Result<()> {
        let limits = self.limits();
        if state.viewers >= limits.max_viewers {
            return Err(Error::Unavailable(format!(
                "{} log viewers are open, the most this opsdeck allows ([logs] max_viewers); close one or try again later",
                state.viewers
            )));
        }
        if new_follower && state.followers.len() >= limits.max_followers {
            return Err(Error::Unavailable(format!(
                "{} different log filters are followed, the most this opsdeck allows ([logs] max_followers); use a filter someone already watches, or try again later",
                state.followers.len()
            )));
        }
        Ok(())
    }

    /// Starts following `filter`'s source from now on.
    async fn start(&self, filter: &Filter) -> Result<Source> {
        // Files are local: `opsdeck check` refuses `logs.files` elsewhere.
        if let Some(path) = &filter.file {
            let from = file::end(path).await?;
            return Ok(Source::File(path.clone(), from, filter.text.clone()));
        }
        // Start at the newest entry of the whole journal, not "from now":
        // whatever is written while journalctl starts up is then not lost.
        // (`--after-cursor` would wrongly skip the first match when that
        // entry does not match the filter; `read` drops it instead.)
        let newest = self.newest_cursor(filter).await?;
        let from = match &newest {
            Some(cursor) => From::At(cursor),
            None => From::Last(0),
        };
        let mut child = self.spawn(filter, &journal::argv(filter, from, true))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("journalctl has no stdout")))?;
        Ok(Source::Journal(child, stdout, newest))
    }

    async fn newest_cursor(&self, filter: &Filter) -> Result<Option<String>> {
        let mut child = self.spawn(filter, &journal::newest_argv())?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("journalctl has no stdout")))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut newest = None;
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(entry) = journal::parse(&line) {
                newest = Some(entry.cursor);
            }
        }
        let _ = child.wait().await;
        Ok(newest)
    }

    /// Starts `argv` (a journalctl) on the filter's host, stdout piped.
    pub fn spawn(&self, filter: &Filter, argv: &[String]) -> Result<tokio::process::Child> {
        let host =
            Remote::resolve(&self.inner.config, &filter.host)?.map_or(Host::Local, Host::Shell);
        host::journal::start(&host, argv)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = lock(&self.hub.state);
        state.viewers = state.viewers.saturating_sub(1);
        let last = match state.followers.get_mut(&self.filter) {
            Some(follower) if follower.id == self.id => {
                follower.viewers = follower.viewers.saturating_sub(1);
                follower.viewers == 0
            }
            _ => false,
        };
        if last && let Some(follower) = state.followers.remove(&self.filter) {
            follower.task.abort();
        }
    }
}

/// What a follower reads: a running `journalctl --follow` (and the entry
/// it starts at, already seen), or a file from a place on.
enum Source {
    Journal(
        tokio::process::Child,
        tokio::process::ChildStdout,
        Option<String>,
    ),
    File(std::path::PathBuf, file::Place, Option<String>),
}

/// Follows `source`, broadcasting each entry; when it ends, removes the
/// follower and tells its viewers.
async fn run(
    source: Source,
    sender: broadcast::Sender<Live>,
    (hub, filter, id): (Arc<Inner>, Filter, u64),
) {
    let why = match source {
        Source::Journal(child, stdout, started_at) => {
            read(child, stdout, started_at, &sender).await
        }
        Source::File(path, from, text) => file::follow(path, from, text, sender.clone()).await,
    };
    {
        let mut state = lock(&hub.state);
        if state.followers.get(&filter).is_some_and(|f| f.id == id) {
            state.followers.remove(&filter);
        }
    }
    let _ = sender.send(Live::Ended(why));
}

/// Reads the follower's journalctl and broadcasts each entry; why it ended.
async fn read(
    mut child: tokio::process::Child,
    stdout: tokio::process::ChildStdout,
    started_at: Option<String>,
    sender: &broadcast::Sender<Live>,
) -> String {
    let mut lines = BufReader::new(stdout).lines();
    let why = loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                let entry =
                    journal::parse(&line).filter(|e| Some(&e.cursor) != started_at.as_ref());
                if let Some(entry) = entry {
                    // No receiver right now is fine: they come and go.
                    let _ = sender.send(Live::Entry(Arc::new(entry)));
                }
            }
            Ok(None) => break "journalctl ended".to_owned(),
            Err(e) => break format!("reading journalctl failed: {e}"),
        }
    };
    let _ = child.kill().await;
    why
}

/// The hub's state; a panic elsewhere while holding it leaves it usable.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
