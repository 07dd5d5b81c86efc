//! Person references: a keyed hash of an identity number, so that the audit log can find every
//! entry about a person without ever holding the number in clear.
//!
//! `PersonRef = "hmac-sha256:" ‖ hex(HMAC-SHA-256(key, twelve digits))`. The key is one per
//! deployment; without it a reference cannot be tested against a guessed number (identity
//! numbers are few enough to enumerate, so an unkeyed hash would hide nothing).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::IdentityNumber;

const PREFIX: &str = "hmac-sha256:";
const KEY_LEN: usize = 32;

/// Why a person key or reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonKeyError {
    #[error("person key is not valid base64")]
    KeyEncoding,
    #[error("person key must be {KEY_LEN} bytes, got {0}")]
    KeyLength(usize),
    #[error("person reference must be \"{PREFIX}\" followed by 64 lowercase hex digits")]
    Reference,
}

/// The per-deployment key person references are computed under.
#[derive(Clone)]
pub struct PersonKey {
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl PersonKey {
    /// A key from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> PersonKey {
        PersonKey {
            key: Zeroizing::new(bytes),
        }
    }

    /// A key from its base64 text (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<PersonKey, PersonKeyError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| PersonKeyError::KeyEncoding)?,
        );
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| PersonKeyError::KeyLength(bytes.len()))?;
        Ok(PersonKey::from_bytes(key))
    }

    /// The reference for `number`: the same person gives the same reference however the
    /// number was written.
    pub fn reference(&self, number: &IdentityNumber) -> PersonRef {
        // HMAC zero-pads a key shorter than the hash's block to the block size, so the padded
        // key gives the same MAC as the 32-byte one, through the infallible constructor.
        let mut block = Zeroizing::new([0u8; 64]);
        block[..KEY_LEN].copy_from_slice(self.key.as_slice());
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&(*block).into());
        mac.update(number.as_twelve_digits().as_bytes());
        PersonRef(format!(
            "{PREFIX}{}",
            hex::encode(mac.finalize().into_bytes())
        ))
    }
}

impl fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonKey(<redacted>)")
    }
}

/// A keyed hash standing for a person; safe to store and log.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersonRef(String);

impl PersonRef {
    /// Parses the text form `hmac-sha256:<64 lowercase hex>`.
    pub fn parse(text: &str) -> Result<PersonRef, PersonKeyError> {
        let digest = text.strip_prefix(PREFIX).ok_or(PersonKeyError::Reference)?;
        if digest.len() != 64
            || !digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(PersonKeyError::Reference);
        }
        Ok(PersonRef(text.to_owned()))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use time::macros::date;

    use super::*;
    use crate::testing::personnummer_from;

    fn number(text: &str) -> IdentityNumber {
        IdentityNumber::parse(text, date!(2026 - 01 - 01)).unwrap()
    }

    #[test]
    fn the_same_person_gives_the_same_reference_however_written() {
        let key = PersonKey::from_bytes([7; 32]);
        let twelve = personnummer_from(date!(1985 - 03 - 14), 123);
        let ten = twelve[2..].to_owned();
        let a = key.reference(&number(&twelve));
        let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).unwrap();
        reference.update(twelve.replace('-', "").as_bytes());
        let expected = hex::encode(reference.finalize().into_bytes());
        assert_eq!(a.as_str(), format!("hmac-sha256:{expected}"));
        let b = key.reference(&number(&ten));
        assert_eq!(a, b);
        assert!(PersonRef::parse(a.as_str()).is_ok());
        assert!(!a.as_str().contains(&twelve[..8]));
    }

    #[test]
    fn another_key_or_person_gives_another_reference() {
        let one = number(&personnummer_from(date!(1985 - 03 - 14), 123));
        let two = number(&personnummer_from(date!(1985 - 03 - 14), 124));
        let key = PersonKey::from_bytes([7; 32]);
        let other = PersonKey::from_bytes([8; 32]);
        assert_ne!(key.reference(&one), key.reference(&two));
        assert_ne!(key.reference(&one), other.reference(&one));
    }

    #[test]
    fn keys_and_references_are_parsed() {
        assert_eq!(
            PersonKey::from_base64("AAAA").unwrap_err(),
            PersonKeyError::KeyLength(3)
        );
        assert_eq!(
            PersonKey::from_base64("not base64!").unwrap_err(),
            PersonKeyError::KeyEncoding
        );
        let encoded = STANDARD.encode([1u8; 32]);
        assert!(PersonKey::from_base64(&format!(" {encoded}\n")).is_ok());
        assert!(format!("{:?}", PersonKey::from_bytes([1; 32])).contains("redacted"));
        for bad in [
            "",
            "sha256:00",
            "hmac-sha256:",
            &format!("hmac-sha256:{}", "A".repeat(64)),
            &format!("hmac-sha256:{}", "0".repeat(63)),
        ] {
            assert_eq!(
                PersonRef::parse(bad),
                Err(PersonKeyError::Reference),
                "{bad}"
            );
        }
    }
}
