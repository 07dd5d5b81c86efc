//! A complete check of a cosigned checkpoint against a policy, and tlog-proof bundles that
//! verify offline with nothing but the policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ed25519_dalek::SigningKey;
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner, Cosigner, SignedNote};
use tryggdel_merkle::{MerkleTree, leaf_hash};
use tryggdel_witness::bundle::ProofBundle;
use tryggdel_witness::policy::Policy;
use tryggdel_witness::{BundleError, PolicyError};

const ORIGIN: &str = "audit.tryggdel.example/log";
const NOW: u64 = 1_780_000_000;

struct Fixture {
    signer: CheckpointSigner,
    witnesses: Vec<Cosigner>,
    policy: Policy,
    tree: MerkleTree,
    entries: Vec<Vec<u8>>,
}

fn fixture() -> Fixture {
    let signer = CheckpointSigner::new(SigningKey::from_bytes(&[9; 32]), ORIGIN).unwrap();
    let witnesses: Vec<Cosigner> = ["police.example/w", "ivo.example/w", "kommun.example/w"]
        .iter()
        .enumerate()
        .map(|(i, name)| Cosigner::new(SigningKey::from_bytes(&[i as u8 + 1; 32]), *name).unwrap())
        .collect();
    let mut text = format!("log {}\n", signer.verifier().to_vkey_string());
    for (i, w) in witnesses.iter().enumerate() {
        text.push_str(&format!("witness w{i} {}\n", w.verifier().to_vkey_string()));
    }
    text.push_str("group agencies 2 w0 w1 w2\nquorum agencies\n");
    let entries: Vec<Vec<u8>> = (0u32..21)
        .map(|i| format!("entry {i}").into_bytes())
        .collect();
    Fixture {
        policy: Policy::parse(&text).unwrap(),
        tree: MerkleTree::from_leaf_hashes(entries.iter().map(|e| leaf_hash(e))),
        signer,
        witnesses,
        entries,
    }
}

impl Fixture {
    fn note(&self, cosigners: &[usize], time: u64) -> String {
        let checkpoint = Checkpoint::new(ORIGIN, self.tree.len(), self.tree.root()).unwrap();
        let mut note = SignedNote::parse(&self.signer.sign(&checkpoint).unwrap()).unwrap();
        for &i in cosigners {
            note.add_signature(self.witnesses[i].cosign(&checkpoint, time).unwrap())
                .unwrap();
        }
        note.to_text()
    }

    fn bundle(&self, index: u64, cosigners: &[usize], time: u64) -> ProofBundle {
        ProofBundle {
            entry: self.entries[index as usize].clone(),
            index,
            proof: self.tree.inclusion_proof(index, self.tree.len()).unwrap(),
            checkpoint_note: self.note(cosigners, time),
        }
    }
}

#[test]
fn a_checkpoint_counts_only_with_the_quorum_and_a_recent_cosignature() {
    let f = fixture();
    let ok = f
        .policy
        .verify_checkpoint(&f.note(&[0, 2], NOW - 10), NOW, 3600)
        .unwrap();
    assert_eq!(ok.checkpoint.size(), 21);
    assert_eq!(ok.cosigned_by.len(), 2);
    assert!(matches!(
        f.policy.verify_checkpoint(&f.note(&[1], NOW), NOW, 3600),
        Err(PolicyError::QuorumNotMet { .. })
    ));
    assert!(matches!(
        f.policy
            .verify_checkpoint(&f.note(&[0, 1], NOW - 3601), NOW, 3600),
        Err(PolicyError::TooOld { .. })
    ));
    assert!(matches!(
        f.policy
            .verify_checkpoint(&f.note(&[0, 1], NOW + 3600), NOW, 3600),
        Err(PolicyError::CosignatureFromTheFuture { .. })
    ));
    // A log the policy does not know, under the same origin, is not trusted.
    let impostor = CheckpointSigner::new(SigningKey::from_bytes(&[66; 32]), ORIGIN).unwrap();
    let checkpoint = Checkpoint::new(ORIGIN, f.tree.len(), f.tree.root()).unwrap();
    let mut note = SignedNote::parse(&impostor.sign(&checkpoint).unwrap()).unwrap();
    for w in &f.witnesses {
        note.add_signature(w.cosign(&checkpoint, NOW).unwrap())
            .unwrap();
    }
    assert!(matches!(
        f.policy.verify_checkpoint(&note.to_text(), NOW, 3600),
        Err(PolicyError::LogSignature(_))
    ));
}

#[test]
fn a_bundle_round_trips_and_verifies_with_only_the_policy() {
    let f = fixture();
    for index in [0, 7, 20] {
        let bundle = f.bundle(index, &[1, 2], NOW);
        let text = bundle.to_text();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "));
        let parsed = ProofBundle::parse(&text).unwrap();
        assert_eq!(parsed, bundle);
        let verified = parsed.verify(&f.policy, NOW, 600).unwrap();
        assert_eq!(verified.entry, f.entries[index as usize]);
    }
}

#[test]
fn a_tampered_bundle_is_refused() {
    let f = fixture();
    let good = f.bundle(7, &[0, 1], NOW);
    let mut other_entry = good.clone();
    other_entry.entry = b"entry 8".to_vec();
    let mut other_index = good.clone();
    other_index.index = 8;
    let mut short_proof = good.clone();
    short_proof.proof.pop();
    for bad in [other_entry, other_index, short_proof] {
        assert!(matches!(
            ProofBundle::parse(&bad.to_text())
                .unwrap()
                .verify(&f.policy, NOW, 600),
            Err(BundleError::Inclusion(_))
        ));
    }
    let under_quorum = f.bundle(7, &[0], NOW);
    assert!(matches!(
        under_quorum.verify(&f.policy, NOW, 600),
        Err(BundleError::Policy(PolicyError::QuorumNotMet { .. }))
    ));
    for text in [
        String::new(),
        good.to_text()
            .replacen("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2", 1),
        good.to_text().replacen("extra ", "extra !", 1),
        good.to_text().replacen("index 7", "index 07", 1),
    ] {
        assert!(ProofBundle::parse(&text).is_err(), "{text:?}");
    }
}
