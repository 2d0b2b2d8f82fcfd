//! Secret values: generated from the OS CSPRNG, and fingerprinted so the
//! page and the audit log can show that a value changed without showing it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::{Rng, RngCore, rngs::OsRng};
use sha2::Sha256;

use crate::config::Generator;
use crate::{Error, Result};

/// A fresh value from the OS CSPRNG. Every alphabet is safe unquoted in
/// an env file.
pub fn generate(generator: Generator) -> String {
    match generator {
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
        let make = |spec: &str| generate(spec.parse().unwrap());
        let hex = make("hex:32");
        assert_eq!(hex.len(), 64);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        let b64 = make("base64url:32");
        assert_eq!(b64.len(), 43);
        assert!(
            b64.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        let alnum = make("alnum:40");
        assert_eq!(alnum.len(), 40);
        assert_ne!(alnum, make("alnum:40"));
        for bad in ["hex", "hex:x", "hex:8", "rot13:32", "alnum:100000"] {
            assert!(bad.parse::<Generator>().is_err(), "{bad}");
        }
        let spec: Generator = "base64url:24".parse().unwrap();
        assert_eq!(spec.to_string(), "base64url:24", "plans store the spec");
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
