//! A real, unprivileged system account for a test (made with `useradd`,
//! removed with `userdel` when dropped): what steps run as with `user` on
//! an app. Only root can make one; tests skip without it.

use std::path::Path;
use std::process::Command;

/// A real system account for one test, removed when dropped.
pub struct Account {
    pub name: String,
    pub uid: u32,
}

impl Account {
    /// Makes account `name`; `None` (the test is skipped) when not root.
    pub fn new(name: &str) -> Option<Account> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: making an account needs root");
            return None;
        }
        let _ = Command::new("userdel").arg(name).output();
        let made = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(name)
            .output()
            .unwrap();
        assert!(made.status.success(), "useradd: {made:?}");
        let uid = nix::unistd::User::from_name(name).unwrap().unwrap().uid;
        Some(Account {
            name: name.to_owned(),
            uid: uid.as_raw(),
        })
    }

    /// Gives `path` (and all below it) to the account.
    pub fn own(&self, path: &Path) {
        let done = Command::new("chown")
            .args(["-R", &format!("{0}:{0}", self.name)])
            .arg(path)
            .status()
            .unwrap();
        assert!(done.success());
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}
