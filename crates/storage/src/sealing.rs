//! Authenticated encryption of protected fields at rest (XChaCha20-Poly1305).
//!
//! A sealed value is `v1.` followed by base64 of a random 24-byte nonce and the ciphertext.
//! The context string (e.g. `disclosure:<id>:protected`) is the associated data, so a value
//! copied into another row or field fails to open.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

const PREFIX: &str = "v1.";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    #[error("field encryption key must be 32 bytes of base64, got {0} bytes")]
    KeyLength(usize),
    #[error("field encryption key is not valid base64")]
    KeyEncoding,
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not open with this key and context")]
    Open,
    #[error("encryption failed")]
    Seal,
}

/// A 256-bit key. Never printed.
pub struct FieldKey(Zeroizing<[u8; 32]>);

impl FieldKey {
    pub fn from_base64(text: &str) -> Result<FieldKey, SealingError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| SealingError::KeyEncoding)?,
        );
        let array: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SealingError::KeyLength(bytes.len()))?;
        Ok(FieldKey(Zeroizing::new(array)))
    }

    /// A fresh random key, base64-encoded, for development key files.
    pub fn generate_base64() -> String {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        STANDARD.encode(bytes.as_ref())
    }
}

impl std::fmt::Debug for FieldKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("FieldKey(..)")
    }
}

/// Seals and opens protected fields with one key.
#[derive(Clone)]
pub struct FieldCipher {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("FieldCipher(..)")
    }
}

impl FieldCipher {
    pub fn new(key: &FieldKey) -> FieldCipher {
        FieldCipher {
            cipher: XChaCha20Poly1305::new(key.0.as_ref().into()),
        }
    }

    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, SealingError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealingError::Seal)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(format!("{PREFIX}{}", STANDARD.encode(sealed)))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Zeroizing<Vec<u8>>, SealingError> {
        let encoded = sealed.strip_prefix(PREFIX).ok_or(SealingError::Malformed)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| SealingError::Malformed)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealingError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealingError::Open)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cipher() -> FieldCipher {
        FieldCipher::new(&FieldKey::from_base64(&FieldKey::generate_base64()).unwrap())
    }

    #[test]
    fn round_trip_and_no_plaintext_in_sealed_text() {
        let cipher = cipher();
        let sealed = cipher
            .seal(b"Storgatan 1, Bollnas", "d:1:protected")
            .unwrap();
        assert!(!sealed.contains("Storgatan"));
        let opened = cipher.open(&sealed, "d:1:protected").unwrap();
        assert_eq!(opened.as_slice(), b"Storgatan 1, Bollnas");
    }

    #[test]
    fn other_context_other_key_and_tampering_fail() {
        let cipher = cipher();
        let sealed = cipher.seal(b"secret", "d:1:protected").unwrap();
        assert!(matches!(
            cipher.open(&sealed, "d:2:protected"),
            Err(SealingError::Open)
        ));
        assert!(matches!(
            self::cipher().open(&sealed, "d:1:protected"),
            Err(SealingError::Open)
        ));
        let mut bytes = STANDARD.decode(&sealed[3..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("v1.{}", STANDARD.encode(bytes));
        assert!(matches!(
            cipher.open(&tampered, "d:1:protected"),
            Err(SealingError::Open)
        ));
        assert!(matches!(
            cipher.open("garbage", "x"),
            Err(SealingError::Malformed)
        ));
    }

    #[test]
    fn key_must_be_32_bytes_and_never_prints() {
        assert!(matches!(
            FieldKey::from_base64("AAAA"),
            Err(SealingError::KeyLength(3))
        ));
        assert!(matches!(
            FieldKey::from_base64("***"),
            Err(SealingError::KeyEncoding)
        ));
        let key = FieldKey::from_base64(&FieldKey::generate_base64()).unwrap();
        assert_eq!(format!("{key:?}"), "FieldKey(..)");
    }
}
