//! Ed25519 key pairs in the PEM forms `jsonwebtoken` reads.
//!
//! Private keys are written in the plain RFC 8410 form: PKCS#8 v1 (a OneAsymmetricKey of
//! version 0 without the public key, 48 bytes of DER, `MC4CAQAwBQYDK2VwBCIEI…` in PEM), which
//! every reader takes, OpenSSL 3.0 and Python's `cryptography` included; they refuse the v2
//! form with the public key embedded, which `ed25519-dalek` writes by default. Both forms are
//! read.

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, KeypairBytes};
use zeroize::Zeroizing;

use crate::AuthError;

/// An Ed25519 key pair as PEM text: PKCS#8 `PRIVATE KEY` (v1, RFC 8410) and SPKI
/// `PUBLIC KEY`.
///
/// `Debug` never prints the private key.
#[derive(Clone)]
pub struct SigningKeyPair {
    /// PKCS#8 v1 private key PEM (`-----BEGIN PRIVATE KEY-----`). Secret.
    pub private_key_pem: String,
    /// SPKI public key PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_key_pem: String,
}

impl std::fmt::Debug for SigningKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyPair")
            .field("private_key_pem", &"<redacted>")
            .field("public_key_pem", &self.public_key_pem)
            .finish()
    }
}

/// Generates a fresh Ed25519 key pair from the operating system's CSPRNG.
pub fn generate_ed25519_key_pair() -> Result<SigningKeyPair, AuthError> {
    let signing_key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    // `Zeroizing<String>`: the intermediate copy is wiped when it drops.
    let private_key_pem = ed25519_private_key_pem(&signing_key)?;
    Ok(SigningKeyPair {
        private_key_pem: String::clone(&private_key_pem),
        public_key_pem: public_key_pem(&signing_key)?,
    })
}

/// `signing_key` as a PKCS#8 v1 PEM (RFC 8410: the private key only, no public key), the form
/// every Ed25519 key this system writes has. Wiped from memory when dropped.
pub fn ed25519_private_key_pem(
    signing_key: &ed25519_dalek::SigningKey,
) -> Result<Zeroizing<String>, AuthError> {
    // Without `public_key` the encoding is version 0 (v1); the bytes are wiped on drop.
    let private_only = KeypairBytes {
        secret_key: signing_key.to_bytes(),
        public_key: None,
    };
    private_only
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| AuthError::Key {
            context: "encoding the private key as pkcs#8 pem failed",
        })
}

/// The SPKI PEM of the public half of `signing_key`.
pub(crate) fn public_key_pem(signing_key: &ed25519_dalek::SigningKey) -> Result<String, AuthError> {
    signing_key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|_| AuthError::Key {
            context: "encoding the public key as spki pem failed",
        })
}

/// Reads and checks an SPKI Ed25519 public key PEM.
pub(crate) fn parse_public_key_pem(pem: &str) -> Result<ed25519_dalek::VerifyingKey, AuthError> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    ed25519_dalek::VerifyingKey::from_public_key_pem(pem.trim()).map_err(|_| AuthError::Key {
        context: "public key is not an ed25519 spki pem",
    })
}

/// Reads and checks a PKCS#8 Ed25519 private key PEM.
pub(crate) fn parse_private_key_pem(pem: &str) -> Result<ed25519_dalek::SigningKey, AuthError> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim()).map_err(|_| AuthError::Key {
        context: "private key is not an ed25519 pkcs#8 pem",
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

    #[test]
    fn generated_pems_have_the_standard_labels() {
        let pair = generate_ed25519_key_pair().unwrap();
        assert!(
            pair.private_key_pem
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert!(
            pair.public_key_pem
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        let signing = parse_private_key_pem(&pair.private_key_pem).unwrap();
        let verifying = parse_public_key_pem(&pair.public_key_pem).unwrap();
        assert_eq!(signing.verifying_key(), verifying);
    }

    #[test]
    fn two_generated_pairs_differ() {
        let a = generate_ed25519_key_pair().unwrap();
        let b = generate_ed25519_key_pair().unwrap();
        assert_ne!(a.private_key_pem, b.private_key_pem);
        assert_ne!(a.public_key_pem, b.public_key_pem);
    }

    #[test]
    fn generated_pems_round_trip_through_jsonwebtoken() {
        let pair = generate_ed25519_key_pair().unwrap();
        let encoding = EncodingKey::from_ed_pem(pair.private_key_pem.as_bytes()).unwrap();
        let decoding = DecodingKey::from_ed_pem(pair.public_key_pem.as_bytes()).unwrap();
        let claims = serde_json::json!({ "sub": "u1", "exp": 4_000_000_000_i64 });
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &encoding).unwrap();
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &decoding,
            &Validation::new(Algorithm::EdDSA),
        )
        .unwrap();
        assert_eq!(decoded.claims, claims);

        let other = generate_ed25519_key_pair().unwrap();
        let other_decoding = DecodingKey::from_ed_pem(other.public_key_pem.as_bytes()).unwrap();
        let refused = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &other_decoding,
            &Validation::new(Algorithm::EdDSA),
        );
        assert!(refused.is_err());
    }

    #[test]
    fn openssl_generated_pems_are_read() {
        // `openssl genpkey -algorithm ed25519` (PKCS#8 v1) and `openssl pkey -pubout`;
        // a throwaway test key.
        const PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\n\
            MC4CAQAwBQYDK2VwBCIEIDfIbYacQL24lblb4ca/51u4EO2Tswla3he4d9YIj7sl\n\
            -----END PRIVATE KEY-----\n";
        const PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\n\
            MCowBQYDK2VwAyEAu19yoStrXRJPtDAR0Xawmr1Kd4dxcEZtHXT6LfyXQJo=\n\
            -----END PUBLIC KEY-----\n";
        let signing = parse_private_key_pem(PRIVATE).unwrap();
        let verifying = parse_public_key_pem(PUBLIC).unwrap();
        assert_eq!(signing.verifying_key(), verifying);
    }

    /// The DER inside a PEM `PRIVATE KEY`.
    fn private_key_der(pem: &str) -> Vec<u8> {
        use base64::Engine as _;
        let body: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }

    /// Whether `openssl pkey -noout` reads `pem`; None when there is no openssl to ask.
    fn openssl_reads(pem: &str) -> Option<bool> {
        use std::io::Write as _;
        let mut child = std::process::Command::new("openssl")
            .args(["pkey", "-noout"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(pem.as_bytes())
            .unwrap();
        Some(child.wait().unwrap().success())
    }

    #[test]
    fn generated_private_keys_are_plain_rfc_8410() {
        // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING
        // (32 bytes) } }: version 0 and nothing after the private key.
        const PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let pair = generate_ed25519_key_pair().unwrap();
        let der = private_key_der(&pair.private_key_pem);
        assert_eq!(der.len(), 48, "{}", pair.private_key_pem);
        assert_eq!(der[..16], PREFIX);
        assert!(
            pair.private_key_pem
                .starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"),
            "{}",
            pair.private_key_pem
        );
        let signing = parse_private_key_pem(&pair.private_key_pem).unwrap();
        assert_eq!(der[16..], signing.to_bytes());
        match openssl_reads(&pair.private_key_pem) {
            Some(read) => assert!(read, "openssl pkey refused {}", pair.private_key_pem),
            None => eprintln!("openssl is not installed: checked the DER only"),
        }
    }

    #[test]
    fn keys_written_before_in_the_v2_form_still_load() {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let signing_key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        // What this crate wrote before: PKCS#8 v2 with the public key.
        let v2 = signing_key.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert!(private_key_der(&v2).len() > 48, "{}", v2.as_str());
        assert_eq!(parse_private_key_pem(&v2).unwrap(), signing_key);
        assert!(EncodingKey::from_ed_pem(v2.as_bytes()).is_ok());
        let v1 = ed25519_private_key_pem(&signing_key).unwrap();
        assert_eq!(
            ed25519_dalek::SigningKey::from_pkcs8_pem(&v1).unwrap(),
            signing_key
        );
        assert_eq!(parse_private_key_pem(&v1).unwrap(), signing_key);
    }

    #[test]
    fn wrong_key_material_is_a_key_error() {
        let pair = generate_ed25519_key_pair().unwrap();
        assert!(matches!(
            parse_public_key_pem(&pair.private_key_pem),
            Err(AuthError::Key { .. })
        ));
        assert!(matches!(
            parse_private_key_pem(&pair.public_key_pem),
            Err(AuthError::Key { .. })
        ));
        assert!(matches!(
            parse_public_key_pem("not a pem"),
            Err(AuthError::Key { .. })
        ));
    }

    #[test]
    fn debug_does_not_print_the_private_key() {
        let pair = generate_ed25519_key_pair().unwrap();
        let printed = format!("{pair:?}");
        assert!(printed.contains("<redacted>"));
        assert!(!printed.contains("PRIVATE KEY"));
        let body = pair.private_key_pem.lines().nth(1).unwrap();
        assert!(!printed.contains(body));
    }
}
