//! The real cosignatures of eight public witnesses in `shared/testdata/witness`: every one
//! verifies with its key, each subset's quorum holds or fails as `cases.json` lists, and
//! every mutation is rejected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tryggdel_merkle::checkpoint::{Checkpoint, CosignatureVerifier, NoteSignature, SignedNote};
use tryggdel_witness::policy::Policy;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/witness")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn cases() -> serde_json::Value {
    serde_json::from_str(&read("cases.json")).unwrap()
}

fn note() -> SignedNote {
    SignedNote::parse(&read("cosigned-checkpoint.txt")).unwrap()
}

fn vkeys() -> Vec<CosignatureVerifier> {
    read("witness-vkeys.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| CosignatureVerifier::parse_vkey(l.trim()).unwrap())
        .collect()
}

fn policy() -> Policy {
    Policy::parse(&read("policy.txt")).unwrap()
}

/// Verifies each cosignature of `note` with its key; the times of those that verified.
fn verify_each(note: &SignedNote) -> BTreeMap<String, Result<u64, String>> {
    let keys = vkeys();
    note.signatures()
        .iter()
        .map(|signature| {
            let key = keys.iter().find(|k| k.is_signer_of(signature)).unwrap();
            (
                signature.name().to_owned(),
                key.verify(note.body(), signature)
                    .map_err(|e| e.to_string()),
            )
        })
        .collect()
}

#[test]
fn every_cosignature_verifies_with_its_key() {
    let note = note();
    let want_time = cases()["cosignature_time"].as_u64().unwrap();
    let checkpoint = Checkpoint::parse_body(note.body()).unwrap();
    assert_eq!(checkpoint.size(), 381_382);
    assert_eq!(note.signatures().len(), 8);
    let results = verify_each(&note);
    assert_eq!(results.len(), 8, "one cosignature per witness");
    for (name, result) in results {
        assert_eq!(result, Ok(want_time), "{name}");
    }
    // The policy's witnesses are the same eight keys.
    let policy = policy();
    assert_eq!(policy.witnesses().len(), 8);
    for key in vkeys() {
        assert!(
            policy
                .witnesses()
                .iter()
                .any(|w| w.verifier() == &key && w.name() == key.name())
        );
    }
    assert_eq!(policy.verified_cosignatures(&note).unwrap().len(), 8);
}

#[test]
fn each_subset_meets_the_quorum_or_not_as_listed() {
    let policy = policy();
    let cases = cases();
    let subsets = cases["subsets"].as_array().unwrap();
    assert!(subsets.len() >= 6);
    for subset in subsets {
        let name = subset["name"].as_str().unwrap();
        let keep: Vec<&str> = subset["keep"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut note = note();
        note.retain_signatures(|s| keep.contains(&s.name()));
        assert_eq!(note.signatures().len(), keep.len(), "{name}");
        let verified = policy.verified_cosignatures(&note).unwrap();
        assert_eq!(verified.len(), keep.len(), "{name}");
        assert_eq!(
            policy.is_met_by(verified.keys().map(String::as_str)),
            subset["quorum"].as_bool().unwrap(),
            "{name}"
        );
    }
}

fn mutate_signature(signature: &NoteSignature, change: impl Fn(&mut Vec<u8>)) -> NoteSignature {
    let mut blob = signature.key_id().to_vec();
    let mut rest = signature.signature().to_vec();
    change(&mut rest);
    blob.extend_from_slice(&rest);
    let line = format!("\u{2014} {} {}\n", signature.name(), STANDARD.encode(blob));
    NoteSignature::parse_lines(&line).unwrap().remove(0)
}

fn with_signatures(body: &str, signatures: Vec<NoteSignature>) -> SignedNote {
    let mut text = format!("{body}\n");
    for s in signatures {
        text.push_str(&s.to_line());
    }
    SignedNote::parse(&text).unwrap()
}

#[test]
fn every_mutation_is_rejected() {
    let original = note();
    let policy = policy();
    let mutations = cases()["mutations"].as_array().unwrap().clone();
    assert_eq!(mutations.len(), 3);
    for mutation in mutations {
        assert!(!mutation["each_cosignature_verifies"].as_bool().unwrap());
        let kind = mutation["mutation"].as_str().unwrap();
        let mutated = match kind {
            "flip the last byte of each signature" => with_signatures(
                original.body(),
                original
                    .signatures()
                    .iter()
                    .map(|s| {
                        mutate_signature(s, |b| {
                            let last = b.last_mut().unwrap();
                            *last ^= 0xff;
                        })
                    })
                    .collect(),
            ),
            "body size" => with_signatures(
                &original.body().replace("\n381382\n", "\n381383\n"),
                original.signatures().to_vec(),
            ),
            "timestamp+1" => with_signatures(
                original.body(),
                original
                    .signatures()
                    .iter()
                    .map(|s| {
                        mutate_signature(s, |b| {
                            let time = u64::from_be_bytes(b[..8].try_into().unwrap()) + 1;
                            b[..8].copy_from_slice(&time.to_be_bytes());
                        })
                    })
                    .collect(),
            ),
            other => panic!("unknown mutation {other:?}"),
        };
        assert_ne!(mutated, original, "{kind}");
        for (name, result) in verify_each(&mutated) {
            assert!(result.is_err(), "{kind}: {name} still verifies");
        }
        assert!(policy.verified_cosignatures(&mutated).is_err(), "{kind}");
    }
}

#[test]
fn the_witness_keys_round_trip() {
    for line in read("witness-vkeys.txt").lines().filter(|l| !l.is_empty()) {
        assert_eq!(
            CosignatureVerifier::parse_vkey(line)
                .unwrap()
                .to_vkey_string(),
            line
        );
    }
}
