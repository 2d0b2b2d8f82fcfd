//! Secret values: generated from the OS CSPRNG, and fingerprinted so the
//! page and the audit log can show that a value changed without showing it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::{Rng, RngCore, rngs::OsRng};
use sha2::Sha256;

use crate::{Error, Result};

/// A generator from config: `hex:N` (N random bytes as hex), `base64url:N`
/// (N random bytes, unpadded URL-safe base64), `alnum:N` (N characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    Hex(usize),
    Base64Url(usize),
    Alnum(usize),
}

impl Generator {
    pub fn parse(spec: &str) -> std::result::Result<Generator, String> {
        let (kind, n) = spec
            .split_once(':')
            .ok_or_else(|| format!("expected hex:N, base64url:N or alnum:N, found {spec:?}"))?;
        let n: usize = n
            .parse()
            .map_err(|_| format!("expected a number after {kind}:, found {n:?}"))?;
        if !(16..=512).contains(&n) {
            return Err(format!("{spec}: N must be between 16 and 512"));
        }
        match kind {
            "hex" => Ok(Generator::Hex(n)),
            "base64url" => Ok(Generator::Base64Url(n)),
            "alnum" => Ok(Generator::Alnum(n)),
            _ => Err(format!(
                "unknown generator {kind:?}; expected hex, base64url or alnum"
            )),
        }
    }

    /// A fresh value. Every alphabet is safe unquoted in an env file.
    pub fn generate(self) -> String {
        match self {
            Generator::Hex(n) => hex::encode(random_bytes(n)),
            Generator::Base64Url(n) => {
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(n))
            }
            Generator::Alnum(n) => {
                const ALPHABET: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                (0..n)
                    .map(|_| ALPHABET[OsRng.gen_range(0..ALPHABET.len())] as char)
                    .collect()
            }
        }
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// opsdeck's own key for fingerprints, `<data_dir>/server.key` (0600).
/// An HMAC rather than a plain hash: a fingerprint of a short value cannot
/// be brute-forced by someone who only has the database or an export.
#[derive(Clone)]
pub struct ServerKey([u8; 32]);

impl ServerKey {
    pub fn load_or_create(data_dir: &Path) -> Result<ServerKey> {
        let path = data_dir.join("server.key");
        match std::fs::read(&path) {
            Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
                .map(ServerKey)
                .map_err(|_| {
                    Error::Unavailable(format!(
                        "{} is not a 32-byte key; move it away to let opsdeck make a new one \
                         (fingerprints shown so far will change)",
                        path.display()
                    ))
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                OsRng.fill_bytes(&mut key);
                let written = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .and_then(|mut f| f.write_all(&key).and_then(|()| f.sync_all()));
                written.map_err(|e| {
                    Error::Unavailable(format!("cannot write {}: {e}", path.display()))
                })?;
                Ok(ServerKey(key))
            }
            Err(e) => Err(Error::Unavailable(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// `sha256:` + the first 12 hex digits of HMAC-SHA256(key, value).
    pub fn fingerprint(&self, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(value.as_bytes());
        let digest = hex::encode(mac.finalize().into_bytes());
        format!("sha256:{}", &digest[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_make_values_of_the_right_shape() {
        let hex = Generator::parse("hex:32").unwrap().generate();
        assert_eq!(hex.len(), 64);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        let b64 = Generator::parse("base64url:32").unwrap().generate();
        assert_eq!(b64.len(), 43);
        assert!(
            b64.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        let alnum = Generator::parse("alnum:40").unwrap().generate();
        assert_eq!(alnum.len(), 40);
        assert_ne!(alnum, Generator::parse("alnum:40").unwrap().generate());
        for bad in ["hex", "hex:x", "hex:8", "rot13:32", "alnum:100000"] {
            assert!(Generator::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_persists_and_fingerprints_are_keyed() {
        let dir = tempfile::tempdir().unwrap();
        let a = ServerKey::load_or_create(dir.path()).unwrap();
        let b = ServerKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.fingerprint("v"), b.fingerprint("v"));
        assert!(a.fingerprint("v").starts_with("sha256:"));
        assert_eq!(a.fingerprint("v").len(), 19);
        let other = tempfile::tempdir().unwrap();
        let c = ServerKey::load_or_create(other.path()).unwrap();
        assert_ne!(a.fingerprint("v"), c.fingerprint("v"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("server.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
