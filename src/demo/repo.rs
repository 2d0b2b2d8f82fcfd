//! The demo app's repositories: an upstream (`origin.git`, bare, standing in
//! for the Gitea repository) with a short history, and the work tree opsdeck
//! deploys (`demo-app`), cloned from it one commit behind, so "What ships?"
//! has a commit to show and Rollback has a commit to go back to.

use std::path::Path;

use anyhow::Context as _;

use crate::host::local;

/// Files every version has; `message.txt` changes from commit to commit.
const FILES: &[(&str, &str)] = &[
    (
        "README.md",
        "# demo-app\n\nA stand-in for your app: opsdeck's demo deploys and runs it.\n\
         `./build.sh` writes `dist/`; `opsdeck demo-service` serves it on a health URL.\n",
    ),
    (".gitignore", "dist/\n"),
    (
        "build.sh",
        "#!/bin/sh\n# A build that takes a few seconds and prints progress, like `npm run build`.\nset -e\nfor step in compile bundle minify; do\n  echo \"building: $step\"\n  sleep 1\ndone\nmkdir -p dist\ngit rev-parse --short HEAD > dist/version\necho \"build done: $(cat dist/version)\"\n",
    ),
    (
        "slow.sh",
        "#!/bin/sh\n# Prints a line every 200 ms for a minute: watch it stream, or cancel it.\ni=0\nwhile [ $i -lt 300 ]; do\n  i=$((i+1))\n  echo \"tick $i of 300: $(date +%T)\"\n  sleep 0.2\ndone\n",
    ),
];

/// The upstream's history: author, subject, `message.txt`. The work tree
/// starts at the one before last; the last is what a first deploy ships.
const HISTORY: &[(&str, &str, &str)] = &[
    ("Ada Lovelace", "demo-app: first version", "Hello.\n"),
    ("Ben Okafor", "Greet visitors by name", "Hello, visitor.\n"),
    (
        "Ada Lovelace",
        "Say what is new on the home page",
        "Hello, visitor. New: this line came with your first deploy.\n",
    ),
];

/// Makes `origin.git` and the `demo-app` work tree unless they exist; an
/// older demo's work tree without a remote gets `origin` added.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    let origin = dir.join("origin.git");
    if !origin.exists() {
        make_origin(dir, &origin)?;
    }
    let repo = super::service::repo(dir);
    if !repo.join(".git").exists() {
        git(
            dir,
            &["clone", "-q", &origin.display().to_string(), "demo-app"],
        )?;
        git(&repo, &["reset", "-q", "--hard", "HEAD~1"])?;
    } else if !succeeds(&repo, &["remote", "get-url", "origin"]) {
        git(
            &repo,
            &["remote", "add", "origin", &origin.display().to_string()],
        )?;
    }
    Ok(())
}

/// Commits the history in a scratch work tree, then keeps only its bare copy.
fn make_origin(dir: &Path, origin: &Path) -> anyhow::Result<()> {
    let scratch = dir.join(".origin-work");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("cannot remove {}", scratch.display()))?;
    }
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    for (name, body) in FILES {
        let path = scratch.join(name);
        std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
        if name.ends_with(".sh") {
            super::make_executable(&path)?;
        }
    }
    git(&scratch, &["init", "-q", "-b", "main"])?;
    for (author, subject, message) in HISTORY {
        std::fs::write(scratch.join("message.txt"), message).context("cannot write message.txt")?;
        git(&scratch, &["add", "."])?;
        let name = format!("user.name={author}");
        let email = format!(
            "user.email={}@demo.invalid",
            author.split(' ').next().unwrap_or("demo").to_lowercase()
        );
        git(
            &scratch,
            &["-c", &name, "-c", &email, "commit", "-q", "-m", subject],
        )?;
    }
    git(
        dir,
        &[
            "clone",
            "-q",
            "--bare",
            &scratch.display().to_string(),
            &origin.display().to_string(),
        ],
    )?;
    std::fs::remove_dir_all(&scratch)
        .with_context(|| format!("cannot remove {}", scratch.display()))
}

fn succeeds(repo: &Path, args: &[&str]) -> bool {
    local::succeeds("git", args, repo)
}

pub(super) fn git(repo: &Path, args: &[&str]) -> anyhow::Result<()> {
    Ok(local::run("git", args, repo)?)
}
