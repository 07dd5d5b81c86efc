//! The police's receipt of a disclosure: a statement of who received what and when, signed by
//! the notification service with Ed25519 so that the disclosing organisation can prove receipt.
//!
//! The statement is JSON; its exact bytes are what is signed and what is kept. Verification
//! never re-serialises: it checks the signature over the bytes, then reads them.

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The format tag of a receipt statement.
pub const RECEIPT_FORMAT: &str = "tryggdel.receipt/1";

/// Why a receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt signature is not 64 bytes")]
    SignatureLength,
    #[error("the receipt was signed by key {got}, not the pinned key {expected}")]
    KeyId { expected: String, got: String },
    #[error("the receipt signature does not verify")]
    Signature,
    #[error("the receipt statement is not a {RECEIPT_FORMAT} statement: {0}")]
    Statement(String),
}

/// What a receipt states.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptStatement {
    pub format: String,
    pub disclosure_id: String,
    pub police_region: String,
    pub police_reference: String,
    pub acknowledged_by: String,
    /// RFC 3339, UTC.
    pub acknowledged_at: String,
    pub acknowledged_at_unix_ms: i64,
    /// The SHA-256 (hex) of the payload that was received.
    pub payload_sha256: String,
}

impl ReceiptStatement {
    /// The bytes to sign and keep.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ReceiptError> {
        serde_json::to_vec(self).map_err(|error| ReceiptError::Statement(error.to_string()))
    }

    /// Reads statement bytes (after their signature has been checked).
    pub fn parse(bytes: &[u8]) -> Result<ReceiptStatement, ReceiptError> {
        let statement: ReceiptStatement = serde_json::from_slice(bytes)
            .map_err(|error| ReceiptError::Statement(error.to_string()))?;
        if statement.format != RECEIPT_FORMAT {
            return Err(ReceiptError::Statement(format!(
                "format is {:?}",
                statement.format
            )));
        }
        Ok(statement)
    }
}

/// The id of a receipt key: hex of the first 4 bytes of SHA-256 of the public key.
pub fn receipt_key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..4])
}

/// A signed receipt: the statement's exact bytes, the signature and the signing key's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedReceipt {
    pub statement: Vec<u8>,
    pub signature: Vec<u8>,
    pub key_id: String,
}

/// Signs `statement` with `key`.
pub fn sign_receipt(
    statement: &ReceiptStatement,
    key: &SigningKey,
) -> Result<SignedReceipt, ReceiptError> {
    let bytes = statement.to_bytes()?;
    let signature = key.sign(&bytes);
    Ok(SignedReceipt {
        statement: bytes,
        signature: signature.to_bytes().to_vec(),
        key_id: receipt_key_id(&key.verifying_key()),
    })
}

/// Checks the key id and the signature over the exact statement bytes, then reads them.
pub fn verify_receipt(
    statement: &[u8],
    signature: &[u8],
    key_id: &str,
    key: &VerifyingKey,
) -> Result<ReceiptStatement, ReceiptError> {
    let expected = receipt_key_id(key);
    if key_id != expected {
        return Err(ReceiptError::KeyId {
            expected,
            got: key_id.to_owned(),
        });
    }
    let signature: [u8; 64] = signature
        .try_into()
        .map_err(|_| ReceiptError::SignatureLength)?;
    key.verify(statement, &Signature::from_bytes(&signature))
        .map_err(|_| ReceiptError::Signature)?;
    ReceiptStatement::parse(statement)
}

/// A receipt statement for tests in this and other crates. Enabled by the `testing`
/// feature.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::{RECEIPT_FORMAT, ReceiptStatement};

    /// Region Mitt's officer acknowledging a disclosure on 22 November 2026.
    pub fn receipt_statement() -> ReceiptStatement {
        ReceiptStatement {
            format: RECEIPT_FORMAT.into(),
            disclosure_id: "0193a1b2-0000-7000-8000-000000000001".into(),
            police_region: "mitt".into(),
            police_reference: "5000-K123456-26".into(),
            acknowledged_by: "polis-mitt-1".into(),
            acknowledged_at: "2026-11-22T10:00:00Z".into(),
            acknowledged_at_unix_ms: 1_795_341_600_000,
            payload_sha256: "ab".repeat(32),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::testing::receipt_statement as statement;
    use super::*;

    #[test]
    fn a_signed_receipt_verifies_and_reads_back() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let signed = sign_receipt(&statement(), &key).unwrap();
        let read = verify_receipt(
            &signed.statement,
            &signed.signature,
            &signed.key_id,
            &key.verifying_key(),
        )
        .unwrap();
        assert_eq!(read, statement());
    }

    #[test]
    fn any_change_or_another_key_is_refused() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let signed = sign_receipt(&statement(), &key).unwrap();
        let mut changed = signed.statement.clone();
        let position = changed.iter().position(|b| *b == b'K').unwrap();
        changed[position] = b'X';
        assert_eq!(
            verify_receipt(
                &changed,
                &signed.signature,
                &signed.key_id,
                &key.verifying_key()
            ),
            Err(ReceiptError::Signature)
        );
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(matches!(
            verify_receipt(&signed.statement, &signed.signature, &signed.key_id, &other),
            Err(ReceiptError::KeyId { .. })
        ));
        assert_eq!(
            verify_receipt(
                &signed.statement,
                &[0; 10],
                &signed.key_id,
                &key.verifying_key()
            ),
            Err(ReceiptError::SignatureLength)
        );
        let wrong_format = ReceiptStatement {
            format: "other/1".into(),
            ..statement()
        };
        let signed = sign_receipt(&wrong_format, &key).unwrap();
        assert!(matches!(
            verify_receipt(
                &signed.statement,
                &signed.signature,
                &signed.key_id,
                &key.verifying_key()
            ),
            Err(ReceiptError::Statement(_))
        ));
    }
}
