//! The formats of single config values. Each check returns the sentence
//! `opsdeck check` prints; the parsed forms (`Generator`, `SshTarget`,
//! schedules, time zones) are public for the code that acts on them.

use std::str::FromStr;

/// How a secret's new value is made (`generate = "hex:32"`). Stored in a
/// job's plan by its spec (the value itself is made inside the step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Generator {
    /// N random bytes as 2·N lowercase hex digits.
    Hex(usize),
    /// N random bytes, base64url without padding.
    Base64Url(usize),
    /// N characters from `[A-Za-z0-9]`.
    Alnum(usize),
}

impl FromStr for Generator {
    type Err = String;

    fn from_str(text: &str) -> Result<Generator, String> {
        let expected = "expected \"hex:N\", \"base64url:N\" or \"alnum:N\" with N from 16 to 512";
        let (kind, n) = text
            .split_once(':')
            .ok_or_else(|| format!("{expected}, found {text:?}"))?;
        let n: usize = n
            .parse()
            .map_err(|_| format!("{expected}, found {text:?}"))?;
        if n < 16 {
            return Err(format!("{expected}; {n} is too few to be unguessable"));
        }
        if n > 512 {
            return Err(format!("{expected}; {n} is more than 512"));
        }
        match kind {
            "hex" => Ok(Generator::Hex(n)),
            "base64url" => Ok(Generator::Base64Url(n)),
            "alnum" => Ok(Generator::Alnum(n)),
            _ => Err(format!("{expected}, found {text:?}")),
        }
    }
}

impl TryFrom<String> for Generator {
    type Error = String;

    fn try_from(text: String) -> Result<Generator, String> {
        text.parse()
    }
}

impl From<Generator> for String {
    fn from(generator: Generator) -> String {
        generator.to_string()
    }
}

impl std::fmt::Display for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Generator::Hex(n) => write!(f, "hex:{n}"),
            Generator::Base64Url(n) => write!(f, "base64url:{n}"),
            Generator::Alnum(n) => write!(f, "alnum:{n}"),
        }
    }
}

/// `user@host[:port]`, the form `ssh` takes (with or without `ssh://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: String,
    pub host: String,
    pub port: u16,
}

impl FromStr for SshTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<SshTarget, String> {
        let bad = || format!("expected \"ssh://user@host[:port]\", found {text:?}");
        let rest = text.strip_prefix("ssh://").unwrap_or(text);
        let (user, rest) = rest.split_once('@').ok_or_else(bad)?;
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':'))
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?,
            None => 22,
        };
        // A user or host starting with `-` would be read by ssh as an option.
        let user_ok = matches!(user.chars().next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        let host_ok = matches!(host.chars().next(), Some(c) if c.is_ascii_alphanumeric())
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c));
        if !user_ok || !host_ok {
            return Err(bad());
        }
        Ok(SshTarget {
            user: user.into(),
            host: host.into(),
            port,
        })
    }
}

/// Where an app runs (`host = …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAddress {
    Local,
    Ssh(SshTarget),
    /// A `[hosts.<name>]` entry.
    Named(String),
}

impl FromStr for HostAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<HostAddress, String> {
        if text == "local" {
            Ok(HostAddress::Local)
        } else if text.contains('@') || text.starts_with("ssh://") {
            text.parse().map(HostAddress::Ssh)
        } else if check_name(text).is_ok() {
            Ok(HostAddress::Named(text.into()))
        } else {
            Err(format!(
                "expected \"local\", \"ssh://user@host[:port]\" or the name of a [hosts.<name>] table, found {text:?}"
            ))
        }
    }
}

/// A sweep's `schedule`: standard 5-field cron (minute hour day-of-month
/// month day-of-week), evaluated in the sweep's `timezone`.
pub fn parse_schedule(text: &str) -> Result<croner::Cron, String> {
    let fields = text.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "expected a 5-field cron schedule (minute hour day month weekday) like \"0 3 * * *\", found {fields} fields in {text:?}"
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| format!("invalid cron schedule {text:?}: {e}"))
}

/// A sweep's `timezone`: an IANA name like "Europe/Berlin", or "UTC".
pub fn parse_time_zone(text: &str) -> Result<chrono_tz::Tz, String> {
    text.parse().map_err(|_| {
        format!("expected an IANA time zone like \"Europe/Berlin\" or \"UTC\", found {text:?}")
    })
}

fn all_chars(text: &str, allowed: impl Fn(char) -> bool) -> bool {
    !text.is_empty() && text.chars().all(allowed)
}

/// App and host names go into URLs, paths and audit rows.
pub(super) fn check_name(text: &str) -> Result<(), String> {
    let ok = text.len() <= 64
        && matches!(text.chars().next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && all_chars(text, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a name of lowercase letters, digits, '.', '_' and '-' starting with a letter or digit (at most 64), found {text:?}"
        ))
    }
}

pub(super) fn check_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("expected an IP address and port like \"127.0.0.1:8080\" or \"[::1]:8080\", found {text:?}")
    })
}

pub(super) fn check_http_url(text: &str) -> Result<url::Url, String> {
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        _ => Err(format!(
            "expected an http:// or https:// URL like \"https://ops.example.org\", found {text:?}"
        )),
    }
}

/// `server.public_url`: where browsers reach opsdeck, which serves from
/// the root of its own host name (links, cookies and the sign-in callback
/// `<public_url>/auth/callback` assume it).
pub(super) fn check_public_url(text: &str) -> Result<(), String> {
    let url = check_http_url(text)?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "expected the root URL opsdeck is served at, like \"https://ops.example.org\" (opsdeck cannot live under a path), found {text:?}"
        ));
    }
    Ok(())
}

/// `user:<login>`, `org:<org>` or `team:<org>:<team>` (Gitea's names).
pub(super) fn check_role_entry(text: &str) -> Result<(), String> {
    let gitea_name = |s: &str| all_chars(s, |c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    let ok = match text.split(':').collect::<Vec<_>>()[..] {
        ["user", login] => gitea_name(login),
        ["org", org] => gitea_name(org),
        ["team", org, team] => gitea_name(org) && gitea_name(team),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected \"user:<login>\", \"org:<org>\" or \"team:<org>:<team>\", found {text:?}"
        ))
    }
}

/// `rfc-app.service`, `backup@db.timer`, … (what `systemctl` accepts).
pub(super) fn check_unit(text: &str) -> Result<(), String> {
    const TYPES: [&str; 9] = [
        "service",
        "socket",
        "target",
        "timer",
        "path",
        "mount",
        "automount",
        "swap",
        "slice",
    ];
    let ok = text.len() <= 255
        && !text.starts_with(['-', '.'])
        && all_chars(text, |c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
        && text
            .rsplit_once('.')
            .is_some_and(|(stem, ty)| !stem.is_empty() && TYPES.contains(&ty));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a systemd unit name like \"rfc-app.service\", found {text:?}"
        ))
    }
}

/// A name `KEY=value` env files and processes accept.
pub(super) fn check_env_name(text: &str) -> Result<(), String> {
    let ok = !text.starts_with(|c: char| c.is_ascii_digit())
        && all_chars(text, |c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected an environment variable name like \"SECRET_KEY\" (letters, digits, '_'), found {text:?}"
        ))
    }
}

/// `owner/name` of a Gitea repository.
pub(super) fn check_gitea_repo(text: &str) -> Result<(), String> {
    check_repo(text, "Gitea")
}

/// `owner/name` of a GitHub repository.
pub(super) fn check_github_repo(text: &str) -> Result<(), String> {
    check_repo(text, "GitHub")
}

/// `owner/name` as Gitea and GitHub both spell repositories: the two
/// words reach API paths, so nothing else.
fn check_repo(text: &str, forge: &str) -> Result<(), String> {
    let part = |s: &str| all_chars(s, |c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    match text.split_once('/') {
        Some((owner, name)) if part(owner) && part(name) => Ok(()),
        _ => Err(format!(
            "expected a {forge} repository as \"owner/name\", found {text:?}"
        )),
    }
}

/// A branch name that reaches git's argv: nothing git could read as an
/// option, a range or a revision expression.
pub(super) fn check_branch(text: &str) -> Result<(), String> {
    let ok = !text.starts_with(['-', '/', '.'])
        && !text.ends_with(['/', '.'])
        && !text.contains("..")
        && !text.contains("@{")
        && !text.ends_with(".lock")
        && all_chars(text, |c| c.is_ascii_graphic() && !"~^:?*[\\".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a git branch name like \"main\", found {text:?}"
        ))
    }
}
