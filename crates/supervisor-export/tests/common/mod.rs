//! A small signed export to convert: entries shaped as the audit service writes them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use tryggdel_audit_verify::{CheckpointVerifier, ExportEntry, ExportHeader, ExportWriter};
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner};
use tryggdel_merkle::{MerkleTree, leaf_hash};

pub const ORIGIN: &str = "tryggdel.example/audit";
pub const PERSON_REF: &str = "pr1_4f2c8a9e0b7d6c5a4f3e2d1c0b9a8f7e";
pub const IDENTITY_NUMBER: &str = "19121212-1212";

/// A signed export of `entries`, its verifier and its root (hex).
pub struct SignedExport {
    pub bytes: Vec<u8>,
    pub verifier: CheckpointVerifier,
    pub root_hex: String,
}

/// The entries of a day in a small log: a draft, a read, a list, a delivery, a refused read.
pub fn sample_entries() -> Vec<Vec<u8>> {
    let actor = |user: &str, roles: &[&str], unit: &str| json!({ "user_id": user, "roles": roles, "organisation": "region-vast", "unit": unit });
    let entry = |seq: u64,
                 action: &str,
                 outcome: &str,
                 detail: &str,
                 actor: serde_json::Value,
                 recipient: &str,
                 persons: &[&str],
                 details: serde_json::Value| {
        json!({
            "format": "tryggdel.audit.entry/1",
            "recorded_at": format!("2026-12-03T10:00:0{seq}.000Z"),
            "recorded_at_unix_ms": 1_796_292_000_000u64 + seq * 1000,
            "event_id": format!("0190a3b2-7c4d-7e5f-8a9b-0c1d2e3f4a5{seq}"),
            "source": "disclosure",
            "action": action,
            "occurred_at": format!("2026-12-03T10:00:0{seq}.000Z"),
            "occurred_at_unix_ms": 1_796_292_000_000u64 + seq * 1000,
            "outcome": outcome,
            "outcome_detail": detail,
            "actor": actor,
            "organisation": "region-vast",
            "disclosure_id": "0190a3b2-0000-7000-8000-000000000001",
            "objects": [{ "kind": "disclosure", "id": "0190a3b2-0000-7000-8000-000000000001" }],
            "purpose": {
                "legal_basis_id": "osl-10-21",
                "registry_version": "2026-1",
                "purpose": "Brott med minst ett års fängelse",
            },
            "recipient": recipient,
            "person_refs": persons,
            "trace_id": "",
            "details": details,
        })
        .to_string()
        .into_bytes()
    };
    vec![
        entry(
            0,
            "disclosure.draft_created",
            "success",
            "",
            actor("anna", &["drafter"], "psykiatri"),
            "",
            &[PERSON_REF],
            json!({}),
        ),
        entry(
            1,
            "disclosure.read",
            "success",
            "",
            actor("bertil", &["decision_maker"], "psykiatri"),
            "",
            &[PERSON_REF],
            json!({}),
        ),
        entry(
            2,
            "disclosure.listed",
            "success",
            "",
            actor("bertil", &["decision_maker"], "psykiatri"),
            "",
            &[PERSON_REF],
            json!({ "disclosure_ids": "0190a3b2-0000-7000-8000-000000000001", "count": "1" }),
        ),
        entry(
            3,
            "disclosure.delivered",
            "success",
            "",
            json!({ "user_id": "", "roles": [], "organisation": "", "unit": "" }),
            "polisen-region-vast",
            &[PERSON_REF],
            json!({}),
        ),
        entry(
            4,
            "disclosure.read",
            "refused",
            "=HYPERLINK(\"http://evil.example\",\"x\"), said \"no\"\nsecond line",
            actor("cecilia", &["officer"], "akuten"),
            "",
            &[],
            json!({}),
        ),
    ]
}

/// Signs a checkpoint over `entries` and writes the export.
pub fn signed_export(entries: &[Vec<u8>]) -> SignedExport {
    signed_export_with_key(entries, 7)
}

/// Like [`signed_export`], signed with the key from seed bytes `seed`.
pub fn signed_export_with_key(entries: &[Vec<u8>], seed: u8) -> SignedExport {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let signer = CheckpointSigner::new(key, ORIGIN).unwrap();
    let tree = MerkleTree::from_leaf_hashes(entries.iter().map(|e| leaf_hash(e)));
    let size = entries.len() as u64;
    let note = signer
        .sign(&Checkpoint::new(ORIGIN, size, tree.root()).unwrap())
        .unwrap();
    let header = ExportHeader {
        origin: ORIGIN.to_owned(),
        tree_size: size,
        checkpoint_note: note,
    };
    let mut writer = ExportWriter::new(Vec::new(), &header).unwrap();
    for (index, entry) in entries.iter().enumerate() {
        writer
            .write_entry(&ExportEntry {
                index: index as u64,
                entry: entry.clone(),
                recorded_leaf_hash: leaf_hash(entry),
            })
            .unwrap();
    }
    SignedExport {
        bytes: writer.finish().unwrap(),
        verifier: signer.verifier(),
        root_hex: hex::encode(tree.root()),
    }
}

/// A fixed conversion time.
pub fn converted_at() -> time::OffsetDateTime {
    time::macros::datetime!(2026-12-03 12:00:00 UTC)
}
