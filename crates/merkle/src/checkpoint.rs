//! Signed tree heads as C2SP signed notes
//! (<https://c2sp.org/tlog-checkpoint>, <https://c2sp.org/signed-note>).
//!
//! A checkpoint body is exactly three lines, `<origin>\n<size>\n<base64
//! root>\n` (extension lines are not produced and are refused). The note is
//! the body, a blank line, and one or more signature lines
//! `— <key name> <base64(key id ‖ signature)>\n`, where for Ed25519 the key
//! id is the first 4 bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)` and
//! the signature is over the body bytes. The key name is the log's origin.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::{Hash, MerkleError, empty_root};

/// Signed-note signature type byte for Ed25519.
const ED25519_TYPE: u8 = 0x01;
/// Signature line prefix: an em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// Upper bound on signature lines accepted in one note.
const MAX_SIGNATURES: usize = 100;
/// Upper bound on the length of a note accepted for verification.
const MAX_NOTE_LEN: usize = 64 * 1024;

/// A tree head: the log's origin, its size and its root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
}

impl Checkpoint {
    /// A checkpoint for `origin` (non-empty, no control characters). A size-0
    /// checkpoint must carry the empty root.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Result<Self, MerkleError> {
        let origin = origin.into();
        if origin.is_empty() {
            return Err(MerkleError::InvalidOrigin("origin is empty"));
        }
        if origin.chars().any(char::is_control) {
            return Err(MerkleError::InvalidOrigin(
                "origin contains a control character",
            ));
        }
        if size == 0 && root != empty_root() {
            return Err(MerkleError::EmptyTreeRootMismatch);
        }
        Ok(Self { origin, size, root })
    }

    /// The log's origin line.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The tree size.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The tree root.
    #[must_use]
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// The note body: `<origin>\n<size>\n<base64 root>\n`.
    #[must_use]
    pub fn body_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }
}

/// Signed-note key names are non-empty and contain no whitespace and no `+`.
fn check_key_name(name: &str) -> Result<(), MerkleError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(MerkleError::InvalidKeyName(name.to_owned()));
    }
    Ok(())
}

/// The signed-note key id of an Ed25519 key:
/// `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)[..4]`.
fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519_TYPE]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut id = [0u8; 4];
    id.copy_from_slice(&digest[..4]);
    id
}

/// Signs checkpoints with an Ed25519 key under the log's name (= origin).
pub struct CheckpointSigner {
    name: String,
    key: SigningKey,
    key_id: [u8; 4],
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("name", &self.name)
            .field("key_id", &hex::encode(self.key_id))
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A signer for key `name`, which must also be the origin of every
    /// checkpoint it signs.
    pub fn new(key: SigningKey, name: impl Into<String>) -> Result<Self, MerkleError> {
        let name = name.into();
        check_key_name(&name)?;
        let key_id = key_id(&name, &key.verifying_key());
        Ok(Self { name, key, key_id })
    }

    /// The key name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte signed-note key id.
    #[must_use]
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The matching verifier.
    #[must_use]
    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
            key_id: self.key_id,
        }
    }

    /// Signs `checkpoint` and returns the complete note text: body, blank
    /// line, signature line.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, MerkleError> {
        if checkpoint.origin != self.name {
            return Err(MerkleError::SignerOriginMismatch {
                origin: checkpoint.origin.clone(),
                name: self.name.clone(),
            });
        }
        let body = checkpoint.body_text();
        let signature = self.key.sign(body.as_bytes());
        let mut blob = Vec::with_capacity(4 + Signature::BYTE_SIZE);
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{body}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        ))
    }
}

/// Verifies notes against one pinned origin and Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointVerifier {
    name: String,
    key: VerifyingKey,
    key_id: [u8; 4],
}

/// One parsed signature line.
struct SignatureLine<'a> {
    name: &'a str,
    key_id: [u8; 4],
    signature: Vec<u8>,
}

impl CheckpointVerifier {
    /// A verifier pinned to origin / key name `name` and `key`.
    pub fn new(name: impl Into<String>, key: VerifyingKey) -> Result<Self, MerkleError> {
        let name = name.into();
        check_key_name(&name)?;
        let key_id = key_id(&name, &key);
        Ok(Self { name, key, key_id })
    }

    /// The pinned origin / key name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pinned public key.
    #[must_use]
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The 4-byte signed-note key id.
    #[must_use]
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The signed-note verifier key text:
    /// `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
    #[must_use]
    pub fn to_vkey_string(&self) -> String {
        let mut blob = Vec::with_capacity(33);
        blob.push(ED25519_TYPE);
        blob.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            STANDARD.encode(blob)
        )
    }

    /// Parses a verifier key string produced by [`Self::to_vkey_string`]
    /// (or Go's `golang.org/x/mod/sumdb/note`), checking the key type and
    /// that the key id matches the name and key.
    pub fn parse_vkey(vkey: &str) -> Result<Self, MerkleError> {
        // The key name cannot contain '+', the base64 key can: split off two fields only.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(MerkleError::InvalidVerifierKey(
                "expected <name>+<key id>+<key>",
            ));
        };
        check_key_name(name)?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(MerkleError::InvalidVerifierKey(
                "key id is not 8 hex digits",
            ));
        }
        let id = hex::decode(id_hex)
            .map_err(|_| MerkleError::InvalidVerifierKey("key id is not 8 hex digits"))?;
        let blob = decode_base64_strict(key_b64).ok_or(MerkleError::InvalidVerifierKey(
            "key is not canonical base64",
        ))?;
        let Some((&ED25519_TYPE, key_bytes)) = blob.split_first() else {
            return Err(MerkleError::InvalidVerifierKey("key type is not ed25519"));
        };
        let key_bytes: [u8; 32] = key_bytes
            .try_into()
            .map_err(|_| MerkleError::InvalidVerifierKey("ed25519 key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key_bytes)
            .map_err(|_| MerkleError::InvalidVerifierKey("ed25519 key is not a valid point"))?;
        let verifier = Self::new(name, key)?;
        if verifier.key_id[..] != id[..] {
            return Err(MerkleError::InvalidVerifierKey(
                "key id does not match name and key",
            ));
        }
        Ok(verifier)
    }

    /// Verifies a signed checkpoint note and returns the checkpoint.
    ///
    /// Requires: the strict three-line body with the pinned origin, a
    /// canonical decimal size and a canonical base64 32-byte root; a blank
    /// line; at least one well-formed signature line; and a signature line
    /// from the pinned name and key id that verifies over the body. Lines
    /// from other keys are ignored; a failing signature from the pinned key
    /// rejects the note.
    pub fn verify(&self, note_text: &str) -> Result<Checkpoint, MerkleError> {
        if note_text.len() > MAX_NOTE_LEN {
            return Err(MerkleError::MalformedNote("note is too long"));
        }
        if note_text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(MerkleError::MalformedNote(
                "note contains a control character other than newline",
            ));
        }
        let Some(split) = note_text.rfind("\n\n") else {
            return Err(MerkleError::MalformedNote(
                "no blank line between body and signatures",
            ));
        };
        let (body, rest) = note_text.split_at(split + 1);
        let signatures = rest.get(1..).unwrap_or("");

        let checkpoint = self.parse_body(body)?;
        let lines = parse_signature_lines(signatures)?;

        let mut verified = false;
        for line in lines {
            if line.name != self.name || line.key_id != self.key_id {
                continue;
            }
            let signature = Signature::from_slice(&line.signature)
                .map_err(|_| MerkleError::InvalidSignature(self.name.clone()))?;
            self.key
                .verify_strict(body.as_bytes(), &signature)
                .map_err(|_| MerkleError::InvalidSignature(self.name.clone()))?;
            verified = true;
        }
        if !verified {
            return Err(MerkleError::NoKnownSignature(self.name.clone()));
        }
        Ok(checkpoint)
    }

    fn parse_body(&self, body: &str) -> Result<Checkpoint, MerkleError> {
        let Some(text) = body.strip_suffix('\n') else {
            return Err(MerkleError::MalformedCheckpoint(
                "body does not end with a newline",
            ));
        };
        let mut lines = text.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(MerkleError::MalformedCheckpoint(
                "body has fewer than three lines",
            ));
        };
        if lines.next().is_some() {
            return Err(MerkleError::MalformedCheckpoint(
                "body has extension lines, which are not supported",
            ));
        }
        if origin != self.name {
            return Err(MerkleError::OriginMismatch {
                expected: self.name.clone(),
                got: origin.to_owned(),
            });
        }
        let size = parse_size(size)?;
        let root = decode_base64_strict(root)
            .ok_or(MerkleError::MalformedCheckpoint(
                "root hash is not canonical base64",
            ))
            .and_then(|bytes| {
                Hash::try_from(bytes.as_slice())
                    .map_err(|_| MerkleError::MalformedCheckpoint("root hash is not 32 bytes"))
            })?;
        Checkpoint::new(origin, size, root)
    }
}

/// A canonical decimal `u64`: ASCII digits only, no sign, no leading zeros.
fn parse_size(text: &str) -> Result<u64, MerkleError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MerkleError::MalformedCheckpoint(
            "tree size is not a decimal number",
        ));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(MerkleError::MalformedCheckpoint(
            "tree size has leading zeros",
        ));
    }
    text.parse()
        .map_err(|_| MerkleError::MalformedCheckpoint("tree size does not fit in 64 bits"))
}

/// Standard padded base64 that re-encodes to exactly the same text.
fn decode_base64_strict(text: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(text).ok()?;
    (STANDARD.encode(&bytes) == text).then_some(bytes)
}

fn parse_signature_lines(text: &str) -> Result<Vec<SignatureLine<'_>>, MerkleError> {
    if text.is_empty() {
        return Err(MerkleError::MalformedNote("note has no signature lines"));
    }
    let Some(text) = text.strip_suffix('\n') else {
        return Err(MerkleError::MalformedNote(
            "signature block does not end with a newline",
        ));
    };
    let mut out = Vec::new();
    for line in text.split('\n') {
        if out.len() == MAX_SIGNATURES {
            return Err(MerkleError::MalformedNote("note has too many signatures"));
        }
        let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
            return Err(MerkleError::MalformedNote(
                "signature line does not start with an em dash and a space",
            ));
        };
        let Some((name, b64)) = rest.split_once(' ') else {
            return Err(MerkleError::MalformedNote(
                "signature line has no space between name and signature",
            ));
        };
        check_key_name(name)
            .map_err(|_| MerkleError::MalformedNote("signature line has an invalid key name"))?;
        let Some(blob) = decode_base64_strict(b64) else {
            return Err(MerkleError::MalformedNote(
                "signature is not canonical base64",
            ));
        };
        let Some((id, signature)) = blob.split_first_chunk::<4>() else {
            return Err(MerkleError::MalformedNote("signature is too short"));
        };
        if signature.is_empty() {
            return Err(MerkleError::MalformedNote("signature is too short"));
        }
        out.push(SignatureLine {
            name,
            key_id: *id,
            signature: signature.to_vec(),
        });
    }
    Ok(out)
}
