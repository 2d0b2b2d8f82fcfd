//! git on the app's work tree: fetch, resolve a requested ref into a full SHA,
//! refuse a dirty tree, check out, list what ships between two SHAs and
//! the newest commits.
//!
//! A ref typed by a user reaches git's argv only after [`validate_ref`] and
//! after `--end-of-options`, and only to be resolved into a [`Sha`]; every
//! later command uses that SHA (DESIGN.md "Jobs").

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::error::Quoted;
use crate::host::Host;
use crate::host::exec::{Captured, command_line};
use crate::{Error, Result};

/// Fetching may cross the network; everything else is local and quick.
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);
const LOCAL_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest ref accepted; git's own limit is the file system's name length.
const MAX_REF_LEN: usize = 200;

/// The remote a work tree deploys from (how `git clone` names it).
const REMOTE: &str = "origin";

/// A full commit id that git itself printed; the only form of a ref that
/// anything after resolution runs with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha(String);

impl Sha {
    /// Accepts exactly 40 (SHA-1) or 64 (SHA-256) lower-case hex digits, e.g.
    /// a SHA read back from the release log.
    pub fn parse(text: &str) -> Result<Sha> {
        let hex = text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex && (text.len() == 40 || text.len() == 64) {
            Ok(Sha(text.to_owned()))
        } else {
            Err(Error::BadRequest(format!(
                "{} is not a full commit SHA",
                Quoted(text)
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 7-character form people read and release directories use.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

impl fmt::Display for Sha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One commit of "what ships".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub sha: Sha,
    pub author: String,
    pub subject: String,
}

/// Refuses anything but a plain branch, tag or commit name: git's
/// `check-ref-format` rules, no leading dash (it would read as an option),
/// and only letters, digits and `. _ / + -` (nothing a shell or git's
/// revision syntax gives meaning to: `;`, `$`, `~`, `^`, `:`, `@{`, spaces…).
pub fn validate_ref(name: &str) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::BadRequest(format!(
            "the ref {} is refused: {why}",
            Quoted(name)
        )))
    };
    if name.is_empty() {
        return Err(Error::BadRequest(
            "the ref is empty; name a branch, tag or commit".into(),
        ));
    }
    if name.len() > MAX_REF_LEN {
        return refuse(&format!(
            "it is {} bytes long; a ref has at most {MAX_REF_LEN}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._/+-".contains(*c)))
    {
        return refuse(&format!(
            "it contains {c:?}; a ref may contain only letters, digits and . _ / + -"
        ));
    }
    if name.starts_with('-') {
        return refuse("it starts with \"-\", which git would read as an option");
    }
    if name.contains("..") {
        return refuse("it contains \"..\"");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return refuse("it has an empty path component");
    }
    if name.ends_with('.') {
        return refuse("it ends with \".\"");
    }
    if name
        .split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return refuse("a component starts with \".\" or ends with \".lock\"");
    }
    Ok(())
}

/// `git fetch --prune origin`: brings the remote's branches and tags up to
/// date. A repository without `origin` gets that said, with the fix, rather
/// than git's "does not appear to be a git repository".
pub async fn fetch(host: &Host, repo: &Path) -> Result<()> {
    let fetched = git(
        host,
        repo,
        &["fetch", "--prune", "--tags", "--quiet", REMOTE],
        FETCH_TIMEOUT,
    )
    .await;
    if fetched.is_err() {
        let remotes = run(host, repo, &["remote"], LOCAL_TIMEOUT).await?;
        if remotes.success() && !remotes.stdout.lines().any(|r| r.trim() == REMOTE) {
            return Err(Error::Conflict(format!(
                "{place} has no remote named {REMOTE}, so opsdeck has nothing to fetch a deploy from; \
                 add the repository you push to: git -C {repo} remote add {REMOTE} <url>",
                place = host.place(repo),
                repo = repo.display(),
            )));
        }
    }
    fetched.map(drop)
}

/// Resolves a requested branch, tag or commit into the full SHA of a commit,
/// preferring the remote's branch (what `fetch` just brought) over a stale
/// local one.
pub async fn resolve(host: &Host, repo: &Path, name: &str) -> Result<Sha> {
    validate_ref(name)?;
    for candidate in [
        format!("refs/remotes/{REMOTE}/{name}"),
        format!("refs/tags/{name}"),
        name.to_owned(),
    ] {
        if let Some(sha) = commit_of(host, repo, name, &candidate).await? {
            return Ok(sha);
        }
    }
    Err(Error::BadRequest(format!(
        "{} is not a branch, tag or commit of {}",
        Quoted(name),
        host.place(repo)
    )))
}

/// Whether `name` is a tag of the repository (after a fetch: the remote's
/// tags too).
pub async fn is_tag(host: &Host, repo: &Path, name: &str) -> Result<bool> {
    validate_ref(name)?;
    let tag = format!("refs/tags/{name}");
    Ok(commit_of(host, repo, name, &tag).await?.is_some())
}

/// The commit `candidate` (a spelling of the requested `name`) names, if
/// it names one.
async fn commit_of(host: &Host, repo: &Path, name: &str, candidate: &str) -> Result<Option<Sha>> {
    let spec = format!("{candidate}^{{commit}}");
    let found = run(
        host,
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
        LOCAL_TIMEOUT,
    )
    .await?;
    if found.success() {
        return Sha::parse(found.stdout.trim()).map(Some);
    }
    // `--quiet` keeps "no such ref" silent; anything on stderr is a real
    // failure (not a repository, unreadable objects).
    if !found.stderr.trim().is_empty() {
        return Err(Error::Unavailable(format!(
            "git could not resolve {name:?} in {}: {}",
            host.place(repo),
            found.stderr.trim()
        )));
    }
    Ok(None)
}

/// The commit the work tree has checked out.
pub async fn head(host: &Host, repo: &Path) -> Result<Sha> {
    let out = git(
        host,
        repo,
        &["rev-parse", "--verify", "HEAD^{commit}"],
        LOCAL_TIMEOUT,
    )
    .await?;
    Sha::parse(out.trim())
}

/// Refuses a work tree whose tracked files were changed by hand, naming
/// them. Untracked files do not count: build output and env files live
/// there, and `git checkout` itself refuses to overwrite one.
pub async fn ensure_clean(host: &Host, repo: &Path) -> Result<()> {
    let out = git(
        host,
        repo,
        &["status", "--porcelain", "--untracked-files=no"],
        LOCAL_TIMEOUT,
    )
    .await?;
    let changed: Vec<&str> = out
        .lines()
        .filter_map(|line| line.get(3..))
        .filter(|path| !path.is_empty())
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    Err(Error::Conflict(format!(
        "the work tree {} has uncommitted changes to {}; commit or discard them before deploying",
        host.place(repo),
        changed.join(", ")
    )))
}

/// `git checkout --detach <sha>`: the work tree now holds exactly that commit.
pub async fn checkout(host: &Host, repo: &Path, sha: &Sha) -> Result<()> {
    git(
        host,
        repo,
        &["checkout", "--detach", "--quiet", sha.as_str()],
        LOCAL_TIMEOUT,
    )
    .await
    .map(drop)
}

/// When `sha` was committed — its committer time, in Unix milliseconds:
/// when this exact commit was made (a rebase or cherry-pick makes it
/// anew; the author time stays from the first draft). A deploy's lead
/// time runs from here.
pub async fn committed_at(host: &Host, repo: &Path, sha: &Sha) -> Result<i64> {
    let out = git(
        host,
        repo,
        &["show", "--no-patch", "--format=%ct", sha.as_str()],
        LOCAL_TIMEOUT,
    )
    .await?;
    let seconds: i64 = out.trim().parse().map_err(|_| {
        Error::Unavailable(format!(
            "git printed {:?} as the commit time of {}",
            out.trim(),
            sha.short()
        ))
    })?;
    Ok(seconds * 1000)
}

/// What ships when going from `from` to `to`: the commits in `to` that
/// `from` lacks, newest first.
pub async fn log(host: &Host, repo: &Path, from: &Sha, to: &Sha) -> Result<Vec<Commit>> {
    let range = format!("{from}..{to}");
    commits(host, repo, &[&range]).await
}

/// The newest `n` commits of the repository's branches, remote branches
/// and tags, newest first: what a `commit` parameter's field offers.
pub async fn recent(host: &Host, repo: &Path, n: usize) -> Result<Vec<Commit>> {
    let count = format!("--max-count={n}");
    commits(host, repo, &[&count, "--branches", "--remotes", "--tags"]).await
}

/// `git log` of `args` (options and revisions opsdeck wrote, never a
/// user's words), one [`Commit`] per commit.
async fn commits(host: &Host, repo: &Path, args: &[&str]) -> Result<Vec<Commit>> {
    let mut all = vec!["log", "--no-decorate", "--format=%H%x00%an%x00%s"];
    all.extend_from_slice(args);
    let out = git(host, repo, &all, LOCAL_TIMEOUT).await?;
    out.lines()
        .map(|line| {
            let mut fields = line.splitn(3, '\0');
            let (Some(sha), Some(author), Some(subject)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(Error::Internal(anyhow::anyhow!(
                    "unexpected `git log` line: {line:?}"
                )));
            };
            Ok(Commit {
                sha: Sha::parse(sha)?,
                author: author.to_owned(),
                subject: subject.to_owned(),
            })
        })
        .collect()
}

/// Runs git and returns its stdout, or an error that quotes git's own words.
async fn git(host: &Host, repo: &Path, args: &[&str], timeout: Duration) -> Result<String> {
    let out = run(host, repo, args, timeout).await?;
    if out.success() {
        return Ok(out.stdout);
    }
    Err(Error::Unavailable(format!(
        "`{}` failed in {}: {}",
        command_line(&argv(args)),
        host.place(repo),
        out.stderr.trim()
    )))
}

async fn run(host: &Host, repo: &Path, args: &[&str], timeout: Duration) -> Result<Captured> {
    // On another host, `cd` into a missing directory fails with its own words.
    if *host == Host::Local && !repo.is_dir() {
        return Err(Error::Unavailable(format!(
            "the repository {} does not exist",
            repo.display()
        )));
    }
    // Never wait for a password prompt; messages in English so they read the
    // same in every job log.
    let env = BTreeMap::from([
        ("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned()),
        ("LC_ALL".to_owned(), "C".to_owned()),
    ]);
    host.capture(&argv(args), Some(repo), &env, timeout).await
}

fn argv(args: &[&str]) -> Vec<String> {
    std::iter::once("git")
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect()
}
