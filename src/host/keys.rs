//! Key files (`file` secrets): a new private key made inside the rotation
//! job from the OS CSPRNG, as PKCS#8 PEM (what `openssl genpkey` writes and
//! Python's `cryptography`, Node's `crypto` and Go's `x509` read), with
//! RustCrypto's pure-Rust crates; and the fingerprint the page, the job
//! output and the audit log show instead of a file's content.

use rand::rngs::OsRng;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::secret::ServerKey;
use crate::config::KeyKind;
use crate::{Error, Result};

/// A new private key of `kind`, PKCS#8 PEM. RSA takes a second or more:
/// call it off the async threads.
pub fn make(kind: KeyKind) -> Result<Zeroizing<String>> {
    let failed = |e: &dyn std::fmt::Display| {
        Error::Internal(anyhow::anyhow!("cannot make a new {kind} key: {e}"))
    };
    match kind {
        // Version 1 PKCS#8, without the optional public key: the v2 form
        // (what `SigningKey::to_pkcs8_pem` writes) is refused by OpenSSL 3.0
        // ("unsupported"), so by Debian 12's `openssl` and every Python
        // `cryptography` built on it.
        KeyKind::Ed25519 => ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: ed25519_dalek::SigningKey::generate(&mut OsRng).to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| failed(&e)),
        KeyKind::EcdsaP256 => p256::SecretKey::random(&mut OsRng)
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| failed(&e)),
        KeyKind::Rsa(bits) => rsa::RsaPrivateKey::new(&mut OsRng, bits)
            .map_err(|e| failed(&e))?
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| failed(&e)),
    }
}

/// What a private key file holds, if it is a PKCS#8 PEM key of a kind
/// opsdeck makes: its kind, and `sha256:` + 16 hex digits of the SHA-256
/// of its public key (DER SubjectPublicKeyInfo), the same as
/// `openssl pkey -in key.pem -pubout -outform DER | sha256sum`. A public
/// key is no secret, so this fingerprint needs no server key, and it can
/// be compared with the public key registered wherever it is used.
pub fn public_key(pem: &str) -> Option<(KeyKind, String)> {
    let (kind, der) = if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        (KeyKind::Ed25519, key.verifying_key().to_public_key_der())
    } else if let Ok(key) = p256::SecretKey::from_pkcs8_pem(pem) {
        (KeyKind::EcdsaP256, key.public_key().to_public_key_der())
    } else {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).ok()?;
        let public = rsa::RsaPublicKey::from(&key);
        (
            KeyKind::Rsa(rsa::traits::PublicKeyParts::size(&public) * 8),
            public.to_public_key_der(),
        )
    };
    let digest = hex::encode(Sha256::digest(der.ok()?.as_bytes()));
    Some((kind, format!("sha256:{}", &digest[..16])))
}

/// How the page, the output and the audit log name a key file's content:
/// `ed25519 key, public key sha256:…` for a key opsdeck can read, else the
/// keyed fingerprint of the whole content (as for env values).
pub fn fingerprint(content: &str, server_key: &ServerKey) -> String {
    match public_key(content) {
        Some((kind, public)) => format!("{kind} key, public key {public}"),
        None => format!("content {}", server_key.fingerprint(content)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_makes_a_pkcs8_key_it_reads_back() {
        for kind in [KeyKind::Ed25519, KeyKind::EcdsaP256, KeyKind::Rsa(2048)] {
            let pem = make(kind).unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{kind}");
            let (read, public) = public_key(&pem).unwrap();
            assert_eq!(read, kind);
            assert_eq!(public.len(), "sha256:".len() + 16);
            assert_ne!(make(kind).unwrap(), pem, "a new key each time");
        }
        assert_eq!(public_key("not a key"), None);
    }

    #[test]
    fn an_ed25519_key_is_pkcs8_v1_as_openssl_3_0_reads_it() {
        let pem = make(KeyKind::Ed25519).unwrap();
        let read = ed25519_dalek::pkcs8::KeypairBytes::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(read.public_key, None);
    }
}
