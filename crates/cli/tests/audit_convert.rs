//! `tryggdel audit convert` as a compliance officer runs it for a supervisor: a verified
//! export becomes CSV, PDF/A or FHIR; a changed one is refused with exit code 2 and no file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use ed25519_dalek::SigningKey;
use tryggdel_audit_verify::{ExportEntry, ExportHeader, ExportWriter};
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner};
use tryggdel_merkle::{MerkleTree, leaf_hash};

const ORIGIN: &str = "audit.test.tryggdel.se/log";

/// Writes an export of three entries, entry 1 changed after signing if `tamper`; returns the
/// verifier key and the signed root (hex).
fn write_export(path: &Path, tamper: bool) -> (String, String) {
    let entries: Vec<Vec<u8>> = ["disclosure.read", "disclosure.listed", "disclosure.delivered"]
        .iter()
        .enumerate()
        .map(|(i, action)| {
            format!(
                r#"{{"format":"tryggdel.audit.entry/1","recorded_at":"2026-12-03T10:00:0{i}.000Z","action":"{action}","outcome":"success","actor":{{"user_id":"anna","roles":["officer"],"organisation":"region-vast","unit":"akuten"}},"recipient":"polisen","person_refs":["pr1_abc"]}}"#
            )
            .into_bytes()
        })
        .collect();
    let tree = MerkleTree::from_leaf_hashes(entries.iter().map(|entry| leaf_hash(entry)));
    let signer = CheckpointSigner::new(SigningKey::from_bytes(&[5; 32]), ORIGIN).unwrap();
    let note = signer
        .sign(&Checkpoint::new(ORIGIN, 3, tree.root()).unwrap())
        .unwrap();
    let mut writer = ExportWriter::new(
        std::fs::File::create(path).unwrap(),
        &ExportHeader {
            origin: ORIGIN.into(),
            tree_size: 3,
            checkpoint_note: note,
        },
    )
    .unwrap();
    for (index, entry) in entries.into_iter().enumerate() {
        let recorded = leaf_hash(&entry);
        let entry = if tamper && index == 1 {
            String::from_utf8(entry)
                .unwrap()
                .replace("anna", "anne")
                .into_bytes()
        } else {
            entry
        };
        writer
            .write_entry(&ExportEntry {
                index: index as u64,
                entry,
                recorded_leaf_hash: recorded,
            })
            .unwrap();
    }
    writer.finish().unwrap();
    (signer.verifier().to_vkey_string(), hex::encode(tree.root()))
}

fn convert(export: &Path, key: &str, format: &str, out: &Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tryggdel"))
        .args(["audit", "convert", "--export"])
        .arg(export)
        .args(["--key", key, "--format", format, "--out"])
        .arg(out)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn a_verified_export_converts_to_each_format_naming_the_checkpoint() {
    let directory = tempfile::tempdir().unwrap();
    let export = directory.path().join("log.jsonl");
    let (vkey, root) = write_export(&export, false);
    for format in ["csv", "pdf", "fhir"] {
        let out = directory.path().join(format!("log.{format}"));
        let (code, text) = convert(&export, &vkey, format, &out);
        assert_eq!(code, 0, "{format}: {text}");
        assert!(text.contains("3 entries"), "{text}");
        assert!(text.contains(&root), "{text}");
        let bytes = std::fs::read(&out).unwrap();
        match format {
            "pdf" => assert!(bytes.starts_with(b"%PDF-")),
            _ => assert!(String::from_utf8(bytes).unwrap().contains(&root)),
        }
        assert!(
            !directory
                .path()
                .join(format!("log.{format}.partial"))
                .exists()
        );
    }
}

#[test]
fn a_changed_export_is_not_converted_and_leaves_no_file() {
    let directory = tempfile::tempdir().unwrap();
    let export = directory.path().join("log.jsonl");
    let (vkey, _) = write_export(&export, true);
    let out = directory.path().join("log.csv");
    let (code, text) = convert(&export, &vkey, "csv", &out);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("NOT CONVERTED"), "{text}");
    assert!(text.contains("index 1"), "{text}");
    assert!(!out.exists());
    assert!(!directory.path().join("log.csv.partial").exists());
    // A key that is not a key: the conversion cannot run at all.
    let (code, text) = convert(&export, "not-a-key", "csv", &out);
    assert_eq!(code, 1, "{text}");
}
