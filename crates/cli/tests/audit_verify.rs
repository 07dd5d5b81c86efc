//! `tryggdel audit verify` as a compliance officer runs it: exit codes and messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use ed25519_dalek::SigningKey;
use tryggdel_audit_verify::{ExportEntry, ExportHeader, ExportWriter};
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner};
use tryggdel_merkle::{MerkleTree, leaf_hash};

const ORIGIN: &str = "audit.test.tryggdel.se/log";

/// Writes an export of `size` entries signed by `key`, with entry `tamper` changed after
/// signing if given; returns the verifier key string.
fn write_export(path: &Path, key: &SigningKey, size: u64, tamper: Option<u64>) -> String {
    let entries: Vec<Vec<u8>> = (0..size)
        .map(|i| {
            format!(
                r#"{{"format":"tryggdel.audit.entry/1","action":"disclosure.approved","n":{i}}}"#
            )
            .into_bytes()
        })
        .collect();
    let tree = MerkleTree::from_leaf_hashes(entries.iter().map(|entry| leaf_hash(entry)));
    let signer = CheckpointSigner::new(key.clone(), ORIGIN).unwrap();
    let note = signer
        .sign(&Checkpoint::new(ORIGIN, size, tree.root()).unwrap())
        .unwrap();
    let mut writer = ExportWriter::new(
        std::fs::File::create(path).unwrap(),
        &ExportHeader {
            origin: ORIGIN.into(),
            tree_size: size,
            checkpoint_note: note,
        },
    )
    .unwrap();
    for (index, entry) in entries.into_iter().enumerate() {
        let recorded = leaf_hash(&entry);
        let mut entry = entry;
        if tamper == Some(index as u64) {
            entry = String::from_utf8(entry)
                .unwrap()
                .replace("approved", "rejected")
                .into_bytes();
        }
        writer
            .write_entry(&ExportEntry {
                index: index as u64,
                entry,
                recorded_leaf_hash: recorded,
            })
            .unwrap();
    }
    writer.finish().unwrap();
    signer.verifier().to_vkey_string()
}

fn verify(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tryggdel"))
        .args(["audit", "verify"])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn an_intact_export_verifies_with_exit_code_0() {
    let directory = tempfile::tempdir().unwrap();
    let export = directory.path().join("log.jsonl");
    let vkey = write_export(&export, &SigningKey::from_bytes(&[3; 32]), 20, None);
    let key_file = directory.path().join("log.vkey");
    std::fs::write(&key_file, format!("{vkey}\n")).unwrap();
    let (code, out, err) = verify(&[
        "--export",
        export.to_str().unwrap(),
        "--key",
        key_file.to_str().unwrap(),
        "--inclusion",
        "7",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("FAILED"), "{out}");
    let (code, out, _) = verify(&[
        "--export",
        export.to_str().unwrap(),
        "--key",
        &vkey,
        "--json",
    ]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["tree_size"], 20);
}

#[test]
fn a_changed_entry_fails_with_exit_code_2_naming_its_index() {
    let directory = tempfile::tempdir().unwrap();
    let export = directory.path().join("log.jsonl");
    let vkey = write_export(&export, &SigningKey::from_bytes(&[3; 32]), 20, Some(13));
    let (code, out, err) = verify(&["--export", export.to_str().unwrap(), "--key", &vkey]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("FAILED"), "{out}");
    assert!(out.contains("index 13"), "{out}");
}

#[test]
fn a_foreign_key_fails_and_unusable_input_gives_exit_code_1() {
    let directory = tempfile::tempdir().unwrap();
    let export = directory.path().join("log.jsonl");
    write_export(&export, &SigningKey::from_bytes(&[3; 32]), 5, None);
    let foreign = CheckpointSigner::new(SigningKey::from_bytes(&[4; 32]), ORIGIN)
        .unwrap()
        .verifier()
        .to_vkey_string();
    let (code, out, _) = verify(&["--export", export.to_str().unwrap(), "--key", &foreign]);
    assert_eq!(code, 2, "{out}");

    let (code, _, err) = verify(&["--export", "/nonexistent/log.jsonl", "--key", &foreign]);
    assert_eq!(code, 1);
    assert!(
        err.contains("opening the export /nonexistent/log.jsonl"),
        "{err}"
    );
    let (code, _, err) = verify(&["--export", export.to_str().unwrap(), "--key", "not-a-key"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not a verifier key"), "{err}");
}
