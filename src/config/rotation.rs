//! What a `[[app.secret]]` is, read from its keys: where it lives (a
//! `KEY=value` line of an env file, or a whole file such as a PEM key) and
//! how its new value comes about (made by opsdeck, pasted by a person,
//! a key made inside the job, or a command's output). `validate_secrets.rs`
//! reports the combinations that make no sense; the code that acts on a
//! secret asks here.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{App, Generator, Secret};

/// `generate = "set"`: the value is issued elsewhere (a Gitea token, an
/// SMTP password) and pasted into opsdeck when it changes.
const SET: &str = "set";

/// A key made inside the job for a `file` secret, written as PKCS#8 PEM.
/// Stored in a job's plan by its spec (`"rsa:3072"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum KeyKind {
    Ed25519,
    /// RSA with this many bits: 2048, 3072 or 4096.
    Rsa(usize),
    /// ECDSA on NIST P-256.
    EcdsaP256,
}

impl KeyKind {
    const EXPECTED: &str =
        "expected \"ed25519\", \"rsa:2048\", \"rsa:3072\", \"rsa:4096\" or \"ecdsa-p256\"";
}

impl FromStr for KeyKind {
    type Err = String;

    fn from_str(text: &str) -> Result<KeyKind, String> {
        match text {
            "ed25519" => Ok(KeyKind::Ed25519),
            "ecdsa-p256" => Ok(KeyKind::EcdsaP256),
            "rsa:2048" => Ok(KeyKind::Rsa(2048)),
            "rsa:3072" => Ok(KeyKind::Rsa(3072)),
            "rsa:4096" => Ok(KeyKind::Rsa(4096)),
            _ => Err(format!("{}, found {text:?}", KeyKind::EXPECTED)),
        }
    }
}

impl TryFrom<String> for KeyKind {
    type Error = String;

    fn try_from(text: String) -> Result<KeyKind, String> {
        text.parse()
    }
}

impl From<KeyKind> for String {
    fn from(kind: KeyKind) -> String {
        kind.to_string()
    }
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Ed25519 => f.write_str("ed25519"),
            KeyKind::Rsa(bits) => write!(f, "rsa:{bits}"),
            KeyKind::EcdsaP256 => f.write_str("ecdsa-p256"),
        }
    }
}

/// How a secret's new value comes about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Made by opsdeck from the OS CSPRNG (`generate = "hex:32"`).
    Generate(Generator),
    /// Pasted by a person (`generate = "set"`).
    Set,
    /// A key file's new key (`generate = "ed25519"`).
    Key(KeyKind),
    /// A key file's new content, printed by this argv (`generate_with`).
    Command(Vec<String>),
}

/// Where a secret lives on the app's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place<'a> {
    /// Variable `key` of env file `file`.
    Env { file: &'a Path, key: &'a str },
    /// The whole file (`file = "/srv/robot/signing.pem"`).
    File(&'a Path),
}

impl Secret {
    /// How the secret's new value comes about, or why its keys say nothing
    /// that makes sense.
    pub fn source(&self) -> Result<Source, String> {
        let spec = self.generate.as_str();
        match (&self.generate_with, spec, &self.file) {
            (Some(_), "", None) => Err(
                "`generate_with` makes the whole content of a file: set `file`, or use `generate` for a value in an env file".into(),
            ),
            (Some(argv), "", Some(_)) => Ok(Source::Command(argv.clone())),
            (Some(_), _, _) => Err(
                "both `generate` and `generate_with` say how the new value is made; keep one"
                    .into(),
            ),
            (None, "", _) => Err(format!(
                "missing `generate`: {}",
                if self.file.is_some() {
                    "\"ed25519\", \"rsa:3072\" or \"ecdsa-p256\" (or `generate_with`, a command that prints the file)"
                } else {
                    "\"hex:32\", \"base64url:32\" or \"alnum:32\" (opsdeck makes the value), or \"set\" (a value issued elsewhere, pasted when it changes)"
                }
            )),
            (None, SET, Some(_)) => Err(
                "\"set\" takes one line pasted into an env file; a key file is made by `generate = \"ed25519\"` (or \"rsa:3072\", \"ecdsa-p256\") or `generate_with`".into(),
            ),
            (None, SET, None) => Ok(Source::Set),
            (None, spec, Some(_)) => spec.parse().map(Source::Key).map_err(|e| {
                if spec.parse::<Generator>().is_ok() {
                    format!("{e}: a `file` secret is a whole key file, and {spec:?} makes one env value")
                } else {
                    e
                }
            }),
            (None, spec, None) => spec.parse().map(Source::Generate).map_err(|e| {
                if spec.parse::<KeyKind>().is_ok() {
                    format!("{spec:?} makes a key file: set `file` to its path")
                } else {
                    format!("{e}; or \"set\" for a value issued elsewhere")
                }
            }),
        }
    }

    /// Whether opsdeck makes the new value itself: only then may it rotate
    /// the secret on a schedule, with nobody there. A value issued
    /// elsewhere (`generate = "set"`) is pasted by a person.
    pub fn made_by_opsdeck(&self) -> bool {
        self.source() != Ok(Source::Set)
    }

    /// The variable in the env file: `key`, else `name`.
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or(&self.name)
    }

    /// Where the secret lives in `app`; None for an env value when neither
    /// the secret nor the app names an env file.
    pub fn place<'a>(&'a self, app: &'a App) -> Option<Place<'a>> {
        if let Some(file) = &self.file {
            return Some(Place::File(file));
        }
        let file = self.env_file.as_deref().or(app.env_file.as_deref())?;
        Some(Place::Env {
            file,
            key: self.key(),
        })
    }
}

impl<'a> Place<'a> {
    /// The file the secret is in.
    pub fn path(&self) -> &'a Path {
        match self {
            Place::Env { file, .. } | Place::File(file) => file,
        }
    }
}

impl App {
    /// Every env file of the app, each once: its own `env_file` and those
    /// its secrets name. Every job of the app masks all their values.
    pub fn env_files(&self) -> Vec<PathBuf> {
        let own = self.env_file.iter();
        let secrets = self.secrets.iter().filter_map(|s| match s.place(self) {
            Some(Place::Env { file, .. }) => Some(file),
            _ => None,
        });
        let mut files: Vec<PathBuf> = Vec::new();
        for file in own.map(PathBuf::as_path).chain(secrets) {
            if !files.iter().any(|f| f == file) {
                files.push(file.to_path_buf());
            }
        }
        files
    }

    /// The key files of the app's `file` secrets, each once.
    pub fn key_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = Vec::new();
        for file in self.secrets.iter().filter_map(|s| s.file.as_ref()) {
            if !files.contains(file) {
                files.push(file.clone());
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_kinds_round_trip_and_refuse_others() {
        for spec in ["ed25519", "rsa:2048", "rsa:3072", "rsa:4096", "ecdsa-p256"] {
            assert_eq!(spec.parse::<KeyKind>().unwrap().to_string(), spec);
        }
        for bad in ["rsa:1024", "rsa", "ed448", "ecdsa-p384", ""] {
            assert!(bad.parse::<KeyKind>().is_err(), "{bad}");
        }
    }
}
