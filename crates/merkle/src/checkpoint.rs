//! Signed tree heads as C2SP signed notes
//! (<https://c2sp.org/tlog-checkpoint>, <https://c2sp.org/signed-note>).
//!
//! A checkpoint body is exactly three lines, `<origin>\n<size>\n<base64
//! root>\n` (extension lines are not produced and are refused). The note is
//! the body, a blank line, and one or more signature lines
//! `— <key name> <base64(key id ‖ signature)>\n`, where for Ed25519 the key
//! id is the first 4 bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)` and
//! the signature is over the body bytes. The key name is the log's origin.
//!
//! The same note carries witness cosignatures (<https://c2sp.org/tlog-cosignature>):
//! signature type 0x04, key id `SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)[..4]`,
//! and a blob `key id ‖ 8-byte big-endian time ‖ Ed25519 signature` over
//! `cosignature/v1\ntime <time>\n<checkpoint body>`. [`SignedNote`] parses
//! and writes any note; [`Cosigner`] and [`CosignatureVerifier`] make and
//! check cosignatures.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::{Hash, MerkleError, empty_root};

/// Signed-note signature type byte for Ed25519.
const ED25519_TYPE: u8 = 0x01;
/// Signed-note signature type byte for a cosignature/v1 (Ed25519).
const COSIGNATURE_V1_TYPE: u8 = 0x04;
/// Length of a cosignature/v1 blob after the key id: time and signature.
const COSIGNATURE_LEN: usize = 8 + Signature::BYTE_SIZE;
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
    typed_key_id(name, ED25519_TYPE, key)
}

/// `SHA-256(name ‖ "\n" ‖ signature type ‖ public key)[..4]`.
fn typed_key_id(name: &str, signature_type: u8, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([signature_type]);
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
        vkey_string(&self.name, self.key_id, ED25519_TYPE, &self.key)
    }

    /// Parses a verifier key string produced by [`Self::to_vkey_string`]
    /// (or Go's `golang.org/x/mod/sumdb/note`), checking the key type and
    /// that the key id matches the name and key.
    pub fn parse_vkey(vkey: &str) -> Result<Self, MerkleError> {
        let (name, key) = parse_typed_vkey(vkey, ED25519_TYPE, "key type is not ed25519")?;
        Self::new(name, key)
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
        self.verify_note(&SignedNote::parse(note_text)?)
    }

    /// [`Self::verify`] for a note already parsed.
    pub fn verify_note(&self, note: &SignedNote) -> Result<Checkpoint, MerkleError> {
        let checkpoint = Checkpoint::parse_body(note.body())?;
        if checkpoint.origin != self.name {
            return Err(MerkleError::OriginMismatch {
                expected: self.name.clone(),
                got: checkpoint.origin,
            });
        }
        let mut verified = false;
        for line in note.signatures() {
            if line.name != self.name || line.key_id != self.key_id {
                continue;
            }
            let signature = Signature::from_slice(&line.signature)
                .map_err(|_| MerkleError::InvalidSignature(self.name.clone()))?;
            self.key
                .verify_strict(note.body().as_bytes(), &signature)
                .map_err(|_| MerkleError::InvalidSignature(self.name.clone()))?;
            verified = true;
        }
        if !verified {
            return Err(MerkleError::NoKnownSignature(self.name.clone()));
        }
        Ok(checkpoint)
    }
}

impl Checkpoint {
    /// Parses a checkpoint body (`<origin>\n<size>\n<base64 root>\n`)
    /// without checking any signature or origin: the caller decides which
    /// key the origin must be signed by. Extension lines are refused.
    pub fn parse_body(body: &str) -> Result<Self, MerkleError> {
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

/// One signature line of a note: the key name, the 4-byte key id and the
/// rest of the signature blob (for Ed25519 the 64-byte signature, for a
/// cosignature/v1 the time and the signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    name: String,
    key_id: [u8; 4],
    signature: Vec<u8>,
}

impl NoteSignature {
    /// The key name on the line.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id on the line.
    #[must_use]
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The signature bytes after the key id.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The line as it appears in a note, newline included:
    /// `— <name> <base64(key id ‖ signature)>\n`.
    #[must_use]
    pub fn to_line(&self) -> String {
        let mut blob = Vec::with_capacity(4 + self.signature.len());
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(blob))
    }

    /// Parses lines in the form [`Self::to_line`] writes (each ending in a
    /// newline), as a witness answers `add-checkpoint`.
    pub fn parse_lines(text: &str) -> Result<Vec<Self>, MerkleError> {
        parse_signature_lines(text)
    }
}

/// A C2SP signed note: a body and at least one signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    body: String,
    signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses a note: UTF-8 text with no control characters but newlines, at
    /// most 64 KiB, a body ending in a newline, a blank line, then 1 to 100
    /// well-formed signature lines, each ending in a newline.
    pub fn parse(note_text: &str) -> Result<Self, MerkleError> {
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
        let signatures = parse_signature_lines(rest.get(1..).unwrap_or(""))?;
        Ok(Self {
            body: body.to_owned(),
            signatures,
        })
    }

    /// The body, ending in a newline.
    #[must_use]
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The signature lines in order.
    #[must_use]
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature line unless the same name and key id already signed.
    pub fn add_signature(&mut self, signature: NoteSignature) -> Result<(), MerkleError> {
        if self
            .signatures
            .iter()
            .any(|s| s.name == signature.name && s.key_id == signature.key_id)
        {
            return Ok(());
        }
        if self.signatures.len() == MAX_SIGNATURES {
            return Err(MerkleError::MalformedNote("note has too many signatures"));
        }
        self.signatures.push(signature);
        Ok(())
    }

    /// Keeps only the signature lines `keep` accepts.
    pub fn retain_signatures(&mut self, keep: impl FnMut(&NoteSignature) -> bool) {
        self.signatures.retain(keep);
    }

    /// The note text: body, blank line, signature lines.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut text = String::with_capacity(self.body.len() + 1 + 100 * self.signatures.len());
        text.push_str(&self.body);
        text.push('\n');
        for signature in &self.signatures {
            text.push_str(&signature.to_line());
        }
        text
    }
}

/// The message a cosignature/v1 signs: `cosignature/v1\ntime <time>\n` and
/// the checkpoint body.
#[must_use]
pub fn cosignature_message(body: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{body}")
}

/// Makes cosignature/v1 signatures with a witness's Ed25519 key.
pub struct Cosigner {
    name: String,
    key: SigningKey,
    key_id: [u8; 4],
}

impl std::fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cosigner")
            .field("name", &self.name)
            .field("key_id", &hex::encode(self.key_id))
            .finish_non_exhaustive()
    }
}

impl Cosigner {
    /// A cosigner for the witness named `name`.
    pub fn new(key: SigningKey, name: impl Into<String>) -> Result<Self, MerkleError> {
        let name = name.into();
        check_key_name(&name)?;
        let key_id = typed_key_id(&name, COSIGNATURE_V1_TYPE, &key.verifying_key());
        Ok(Self { name, key, key_id })
    }

    /// The witness's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier.
    #[must_use]
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
            key_id: self.key_id,
        }
    }

    /// Cosigns `checkpoint` at `time` (seconds since the epoch, not zero).
    pub fn cosign(&self, checkpoint: &Checkpoint, time: u64) -> Result<NoteSignature, MerkleError> {
        if time == 0 {
            return Err(MerkleError::MalformedNote("a cosignature time of zero"));
        }
        let message = cosignature_message(&checkpoint.body_text(), time);
        let signature = self.key.sign(message.as_bytes());
        let mut blob = Vec::with_capacity(COSIGNATURE_LEN);
        blob.extend_from_slice(&time.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        Ok(NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id,
            signature: blob,
        })
    }
}

/// Verifies cosignature/v1 signatures of one witness key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key: VerifyingKey,
    key_id: [u8; 4],
}

impl CosignatureVerifier {
    /// A verifier for the witness named `name` with `key`.
    pub fn new(name: impl Into<String>, key: VerifyingKey) -> Result<Self, MerkleError> {
        let name = name.into();
        check_key_name(&name)?;
        let key_id = typed_key_id(&name, COSIGNATURE_V1_TYPE, &key);
        Ok(Self { name, key, key_id })
    }

    /// Parses `<name>+<hex key id>+<base64(0x04 ‖ public key)>`, checking the
    /// type and that the key id matches the name and key.
    pub fn parse_vkey(vkey: &str) -> Result<Self, MerkleError> {
        let (name, key) =
            parse_typed_vkey(vkey, COSIGNATURE_V1_TYPE, "key type is not cosignature/v1")?;
        Self::new(name, key)
    }

    /// The verifier key text, as [`Self::parse_vkey`] reads it.
    #[must_use]
    pub fn to_vkey_string(&self) -> String {
        vkey_string(&self.name, self.key_id, COSIGNATURE_V1_TYPE, &self.key)
    }

    /// The witness's key name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key id.
    #[must_use]
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// Whether `signature` claims to be from this key (name and key id).
    #[must_use]
    pub fn is_signer_of(&self, signature: &NoteSignature) -> bool {
        signature.name == self.name && signature.key_id == self.key_id
    }

    /// Verifies `signature` over the checkpoint `body` and returns its time.
    /// A signature from another key, of the wrong length, with time zero or
    /// that does not verify is an error.
    pub fn verify(&self, body: &str, signature: &NoteSignature) -> Result<u64, MerkleError> {
        if !self.is_signer_of(signature) {
            return Err(MerkleError::NoKnownSignature(self.name.clone()));
        }
        let invalid = || MerkleError::InvalidSignature(self.name.clone());
        let Some((time, signature)) = signature.signature.split_first_chunk::<8>() else {
            return Err(invalid());
        };
        let time = u64::from_be_bytes(*time);
        if time == 0 {
            return Err(invalid());
        }
        let signature = Signature::from_slice(signature).map_err(|_| invalid())?;
        self.key
            .verify_strict(cosignature_message(body, time).as_bytes(), &signature)
            .map_err(|_| invalid())?;
        Ok(time)
    }
}

fn vkey_string(name: &str, key_id: [u8; 4], signature_type: u8, key: &VerifyingKey) -> String {
    let mut blob = Vec::with_capacity(33);
    blob.push(signature_type);
    blob.extend_from_slice(key.as_bytes());
    format!("{}+{}+{}", name, hex::encode(key_id), STANDARD.encode(blob))
}

/// Splits and checks `<name>+<key id>+<base64(type ‖ key)>`.
fn parse_typed_vkey(
    vkey: &str,
    signature_type: u8,
    wrong_type: &'static str,
) -> Result<(String, VerifyingKey), MerkleError> {
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
    let Some((&found_type, key_bytes)) = blob.split_first() else {
        return Err(MerkleError::InvalidVerifierKey(wrong_type));
    };
    if found_type != signature_type {
        return Err(MerkleError::InvalidVerifierKey(wrong_type));
    }
    let key_bytes: [u8; 32] = key_bytes
        .try_into()
        .map_err(|_| MerkleError::InvalidVerifierKey("ed25519 key is not 32 bytes"))?;
    let key = VerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| MerkleError::InvalidVerifierKey("ed25519 key is not a valid point"))?;
    if typed_key_id(name, signature_type, &key)[..] != id[..] {
        return Err(MerkleError::InvalidVerifierKey(
            "key id does not match name and key",
        ));
    }
    Ok((name.to_owned(), key))
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

fn parse_signature_lines(text: &str) -> Result<Vec<NoteSignature>, MerkleError> {
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
        out.push(NoteSignature {
            name: name.to_owned(),
            key_id: *id,
            signature: signature.to_vec(),
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint::new("example.org/log", 7, [9u8; 32]).unwrap()
    }

    #[test]
    fn a_cosignature_verifies_and_carries_its_time() {
        let cosigner = Cosigner::new(SigningKey::from_bytes(&[3; 32]), "witness.example").unwrap();
        let signature = cosigner.cosign(&checkpoint(), 1_770_000_000).unwrap();
        let verifier = cosigner.verifier();
        let body = checkpoint().body_text();
        assert_eq!(verifier.verify(&body, &signature).unwrap(), 1_770_000_000);
        assert_eq!(signature.signature().len(), COSIGNATURE_LEN);
        let other = Checkpoint::new("example.org/log", 8, [9u8; 32]).unwrap();
        assert!(verifier.verify(&other.body_text(), &signature).is_err());
        assert!(cosigner.cosign(&checkpoint(), 0).is_err());
    }

    #[test]
    fn vkeys_round_trip_and_keep_their_types_apart() {
        let cosigner = Cosigner::new(SigningKey::from_bytes(&[3; 32]), "witness.example").unwrap();
        let vkey = cosigner.verifier().to_vkey_string();
        assert_eq!(
            CosignatureVerifier::parse_vkey(&vkey).unwrap(),
            cosigner.verifier()
        );
        assert!(CheckpointVerifier::parse_vkey(&vkey).is_err());
        let log = CheckpointSigner::new(SigningKey::from_bytes(&[4; 32]), "example.org/log")
            .unwrap()
            .verifier()
            .to_vkey_string();
        assert!(CosignatureVerifier::parse_vkey(&log).is_err());
    }

    #[test]
    fn a_note_round_trips_through_its_text() {
        let signer =
            CheckpointSigner::new(SigningKey::from_bytes(&[4; 32]), "example.org/log").unwrap();
        let text = signer.sign(&checkpoint()).unwrap();
        let mut note = SignedNote::parse(&text).unwrap();
        assert_eq!(note.to_text(), text);
        let cosigner = Cosigner::new(SigningKey::from_bytes(&[3; 32]), "witness.example").unwrap();
        let cosignature = cosigner.cosign(&checkpoint(), 5).unwrap();
        note.add_signature(cosignature.clone()).unwrap();
        note.add_signature(cosignature.clone()).unwrap();
        assert_eq!(note.signatures().len(), 2);
        let reparsed = SignedNote::parse(&note.to_text()).unwrap();
        assert_eq!(reparsed, note);
        assert_eq!(
            signer.verifier().verify_note(&reparsed).unwrap(),
            checkpoint()
        );
        assert_eq!(
            NoteSignature::parse_lines(&cosignature.to_line()).unwrap(),
            vec![cosignature]
        );
    }
}
