//! Real git repositories for tests: a bare "origin", an author's clone that
//! commits and pushes, and the app's deployed work tree.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A bare "origin" and a deployed clone of it (the app's work tree), like
/// `git clone https://git.example.org/…/rfc-app.git /opt/rfc-app`.
pub struct Repos {
    _dir: tempfile::TempDir,
    pub author: PathBuf,
    pub app: PathBuf,
}

/// Runs git in `dir` as Ada; its trimmed stdout.
pub fn sh_git(dir: &Path, args: &[&str]) -> String {
    sh_git_env(dir, args, &[])
}

/// Runs git in `dir` as Ada with `env` too (`GIT_COMMITTER_DATE`, …);
/// its trimmed stdout.
pub fn sh_git_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new("git")
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.org")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.org")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Repos {
    /// Origin with one commit (`version` = "v1") and the app cloned from it.
    pub fn new() -> Repos {
        let dir = tempfile::tempdir().unwrap();
        let origin = dir.path().join("origin.git");
        let author = dir.path().join("author");
        let app = dir.path().join("app");
        fs::create_dir(&author).unwrap();
        sh_git(dir.path(), &["init", "--bare", "origin.git"]);
        sh_git(&author, &["init"]);
        sh_git(
            &author,
            &["remote", "add", "origin", origin.to_str().unwrap()],
        );
        let repos = Repos {
            _dir: dir,
            author,
            app,
        };
        repos.push("version", "v1", "First version");
        sh_git(
            repos.app.parent().unwrap(),
            &["clone", "-q", origin.to_str().unwrap(), "app"],
        );
        repos
    }

    /// Commits one file in the author's clone and pushes; returns the SHA.
    pub fn push(&self, file: &str, text: &str, subject: &str) -> String {
        self.push_files(&[(file, Some(text))], subject)
    }

    /// Writes (`Some`) or deletes (`None`) files, commits, pushes; the SHA.
    pub fn push_files(&self, files: &[(&str, Option<&str>)], subject: &str) -> String {
        let sha = self.commit_files(files, subject);
        sh_git(&self.author, &["push", "-q", "origin", "main"]);
        sha
    }

    fn commit_files(&self, files: &[(&str, Option<&str>)], subject: &str) -> String {
        for (file, text) in files {
            match text {
                Some(text) => fs::write(self.author.join(file), text).unwrap(),
                None => fs::remove_file(self.author.join(file)).unwrap(),
            }
            sh_git(&self.author, &["add", "--all", file]);
        }
        sh_git(&self.author, &["commit", "-q", "-m", subject]);
        sh_git(&self.author, &["rev-parse", "HEAD"])
    }
}
