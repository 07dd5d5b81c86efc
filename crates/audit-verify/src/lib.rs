//! tryggdel-audit-verify: the audit log's export format (writer and reader)
//! and the offline verifier a compliance officer runs with nothing but an
//! export file, a signed checkpoint and the log's public key.
//!
//! # The export format
//!
//! JSON Lines, UTF-8, one JSON object per `\n`-terminated line:
//!
//! * line 1, the header:
//!   `{"format":"tryggdel-audit-export/1","origin":"…","tree_size":N,"checkpoint":"<signed note>"}`
//! * lines 2 to N + 1, the entry with index `i` on line `i + 2`:
//!   `{"index":i,"entry":"<standard padded base64 of the stored bytes>","leaf_hash":"<64 lowercase hex digits>"}`
//!
//! [`ExportWriter`] writes it, [`ExportReader`] reads it one entry at a time,
//! and [`verify_export`] checks it and returns a [`Report`].
//!
//! ```
//! use tryggdel_audit_verify::{
//!     CheckpointVerifier, ExportEntry, ExportHeader, ExportWriter, VerifyOptions, verify_export,
//! };
//! use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner};
//! use tryggdel_merkle::{MerkleTree, leaf_hash};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The log side: two entries, a signed checkpoint, an export.
//! let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
//! let signer = CheckpointSigner::new(key, "tryggdel.example/audit")?;
//! let entries = [br#"{"seq":0}"#.to_vec(), br#"{"seq":1}"#.to_vec()];
//! let tree = MerkleTree::from_leaf_hashes(entries.iter().map(|e| leaf_hash(e)));
//! let note = signer.sign(&Checkpoint::new("tryggdel.example/audit", 2, tree.root())?)?;
//! let header = ExportHeader {
//!     origin: "tryggdel.example/audit".to_owned(),
//!     tree_size: 2,
//!     checkpoint_note: note,
//! };
//! let mut writer = ExportWriter::new(Vec::new(), &header)?;
//! for (index, entry) in entries.iter().enumerate() {
//!     writer.write_entry(&ExportEntry {
//!         index: index as u64,
//!         entry: entry.clone(),
//!         recorded_leaf_hash: leaf_hash(entry),
//!     })?;
//! }
//! let export = writer.finish()?;
//!
//! // The officer's side: the export, and the log's published verifier key.
//! let vkey = signer.verifier().to_vkey_string();
//! let options = VerifyOptions::new(CheckpointVerifier::parse_vkey(&vkey)?);
//! let report = verify_export(export.as_slice(), &options, &mut |_progress| {})?;
//! assert!(report.is_ok(), "{report}");
//! # Ok(())
//! # }
//! ```
//!
//! # Invariants
//!
//! * **Bytes are never re-serialised.** The leaf hash of an entry is
//!   `tryggdel_merkle::leaf_hash` of the exact decoded bytes. The entry JSON
//!   is only parsed for display ([`ExportEntry::entry_as_json`]), never to
//!   compute a hash.
//! * **Streaming.** Exactly one entry's bytes are held at a time; the
//!   verifier keeps only 32-byte hashes per entry (the
//!   [`tryggdel_merkle::MerkleTree`] over the recomputed leaf hashes, about
//!   two hashes per entry) plus `O(log n)` hashes for the recorded ones. No
//!   line is longer than [`MAX_LINE_LEN`].
//! * **Every failure names where.** A malformed export is a
//!   [`VerifyError::Malformed`] naming its line (the header is line 1, the
//!   entry with index `i` is line `i + 2`); every integrity finding in a
//!   [`Report`] names the entry index or the range of indices it concerns.
//! * **Integrity problems are findings, not errors.** [`VerifyError`] means
//!   no verdict could be reached (unreadable or malformed input, an
//!   impossible request); a changed entry, a wrong root or a bad signature is
//!   a failed step in the [`Report`], and [`Report::is_ok`] is true only when
//!   every step passed.
//! * **Pure library.** No files are opened, no network, no async: input and
//!   output are `std::io::BufRead` / `std::io::Write` supplied by the caller.

#![forbid(unsafe_code)]

mod error;
mod export;
mod report;
mod verify;

pub use error::VerifyError;
pub use export::{
    EntryRef, ExportEntry, ExportHeader, ExportOpening, ExportReader, ExportWriter, FORMAT,
    MAX_LINE_LEN, entry_as_json,
};
pub use report::{
    Check, EntryRange, Finding, InclusionDetails, MAX_FINDINGS_PER_STEP, Report, Status, Step,
};
pub use tryggdel_merkle::Hash;
pub use tryggdel_merkle::checkpoint::CheckpointVerifier;
pub use verify::{PROGRESS_INTERVAL, Progress, VerifyOptions, verify_export};
