//! Builds real signed logs and their exports for the integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use ed25519_dalek::SigningKey;
use tryggdel_audit_verify::{
    ExportEntry, ExportHeader, ExportWriter, Report, VerifyError, VerifyOptions, verify_export,
};
use tryggdel_merkle::MerkleTree;
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner};
use tryggdel_merkle::leaf_hash;

/// The test log's origin.
pub const ORIGIN: &str = "tryggdel.test/audit";

/// A deterministic signing key.
pub fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// The bytes the audit service might have stored for entry `i`.
pub fn entry_bytes(i: u64) -> Vec<u8> {
    format!(
        r#"{{"seq":{i},"event":"disclosure.approved","actor":"officer-{}","disclosure_id":"d-{:06}","at":"2026-11-22T10:{:02}:{:02}Z"}}"#,
        i % 7,
        i * 31 % 1_000_000,
        i / 60 % 60,
        i % 60
    )
    .into_bytes()
}

/// An in-memory log: entries, their tree, and the key that signs its
/// checkpoints.
pub struct Log {
    pub entries: Vec<Vec<u8>>,
    pub tree: MerkleTree,
    pub signer: CheckpointSigner,
}

impl Log {
    /// A log of `n` audit entries signed with key seed 1.
    pub fn new(n: u64) -> Self {
        Self::from_entries((0..n).map(entry_bytes).collect())
    }

    /// A log holding exactly `entries`, signed with key seed 1.
    pub fn from_entries(entries: Vec<Vec<u8>>) -> Self {
        Self::with_signer(
            entries,
            CheckpointSigner::new(signing_key(1), ORIGIN).unwrap(),
        )
    }

    /// A log holding `entries` signed by `signer`.
    pub fn with_signer(entries: Vec<Vec<u8>>, signer: CheckpointSigner) -> Self {
        let tree = MerkleTree::from_leaf_hashes(entries.iter().map(|e| leaf_hash(e)));
        Self {
            entries,
            tree,
            signer,
        }
    }

    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// The signed checkpoint note at `size`.
    pub fn checkpoint(&self, size: u64) -> String {
        let cp =
            Checkpoint::new(self.signer.name(), size, self.tree.root_at(size).unwrap()).unwrap();
        self.signer.sign(&cp).unwrap()
    }

    /// Options pinned to this log's key, nothing else asked.
    pub fn options(&self) -> VerifyOptions {
        VerifyOptions::new(self.signer.verifier())
    }

    /// The entries as an honest exporter would produce them.
    pub fn export_entries(&self) -> Vec<ExportEntry> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| ExportEntry {
                index: i as u64,
                entry: e.clone(),
                recorded_leaf_hash: leaf_hash(e),
            })
            .collect()
    }

    /// The header for an export at the full size.
    pub fn header(&self) -> ExportHeader {
        ExportHeader {
            origin: ORIGIN.to_owned(),
            tree_size: self.len(),
            checkpoint_note: self.checkpoint(self.len()),
        }
    }

    /// An honest export of the whole log.
    pub fn export(&self) -> Vec<u8> {
        write_export(&self.header(), &self.export_entries())
    }
}

/// Writes `entries` under `header` with [`ExportWriter`].
pub fn write_export(header: &ExportHeader, entries: &[ExportEntry]) -> Vec<u8> {
    let mut writer = ExportWriter::new(Vec::new(), header).unwrap();
    for entry in entries {
        writer.write_entry(entry).unwrap();
    }
    writer.finish().unwrap()
}

/// Verifies without a progress display.
pub fn verify(export: &[u8], options: &VerifyOptions) -> Result<Report, VerifyError> {
    verify_export(export, options, &mut |_| {})
}

/// The export's lines, without their newlines.
pub fn lines(export: &[u8]) -> Vec<String> {
    String::from_utf8(export.to_vec())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Joins lines back into an export, each with its newline.
pub fn unlines(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}
