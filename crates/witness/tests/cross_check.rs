//! Our notes, cosignatures and proofs checked by independent implementations from crates.io:
//! `signed_note` (Cloudflare's c2sp.org/signed-note) and `tlog_tiles` (its tlog-checkpoint
//! and RFC 6962 tree proofs, a port of Go's golang.org/x/mod/sumdb/tlog).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use signed_note::{Note, StandardVerifier, Verifier, VerifierList};
use tryggdel_merkle::checkpoint::{
    Checkpoint, CheckpointSigner, CosignatureVerifier, Cosigner, SignedNote,
};
use tryggdel_merkle::{MerkleTree, leaf_hash};

/// A cosignature/v1 verifier written against `signed_note`'s trait from the spec alone.
struct SpecCosignatureVerifier {
    name: String,
    key: VerifyingKey,
}

impl Verifier for SpecCosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        let mut encoded = vec![0x04];
        encoded.extend_from_slice(self.key.as_bytes());
        signed_note::key_id(&self.name, &encoded)
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 72 {
            return false;
        }
        let time = u64::from_be_bytes(sig[..8].try_into().unwrap());
        let mut message = format!("cosignature/v1\ntime {time}\n").into_bytes();
        message.extend_from_slice(msg);
        let signature = Signature::from_slice(&sig[8..]).unwrap();
        self.key.verify_strict(&message, &signature).is_ok()
    }
}

fn spec_verifier(ours: &CosignatureVerifier) -> Box<dyn Verifier> {
    let vkey = ours.to_vkey_string();
    let key_b64 = vkey.splitn(3, '+').nth(2).unwrap();
    use base64::Engine as _;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .unwrap();
    assert_eq!(blob[0], 0x04);
    Box::new(SpecCosignatureVerifier {
        name: ours.name().to_owned(),
        key: VerifyingKey::from_bytes(&blob[1..].try_into().unwrap()).unwrap(),
    })
}

#[test]
fn signed_note_verifies_the_eight_real_cosignatures_with_our_key_ids() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/witness");
    let text = std::fs::read(dir.join("cosigned-checkpoint.txt")).unwrap();
    let keys: Vec<CosignatureVerifier> = std::fs::read_to_string(dir.join("witness-vkeys.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| CosignatureVerifier::parse_vkey(l).unwrap())
        .collect();
    for key in &keys {
        assert_eq!(
            spec_verifier(key).key_id(),
            u32::from_be_bytes(key.key_id()),
            "{}",
            key.name()
        );
    }
    let note = Note::from_bytes(&text).unwrap();
    let list = VerifierList::new(keys.iter().map(spec_verifier).collect());
    let (verified, unverified) = note.verify(&list).unwrap();
    assert_eq!(verified.len(), 8);
    assert!(unverified.is_empty());
    // Both parsers see the same body and signature lines.
    let ours = SignedNote::parse(std::str::from_utf8(&text).unwrap()).unwrap();
    assert_eq!(ours.body().as_bytes(), note.text());
    assert_eq!(ours.to_text().into_bytes(), note.to_bytes());
    // And tlog_tiles reads the same checkpoint.
    let theirs = tlog_tiles::Checkpoint::from_bytes(note.text()).unwrap();
    let checkpoint = Checkpoint::parse_body(ours.body()).unwrap();
    assert_eq!(theirs.origin(), checkpoint.origin());
    assert_eq!(theirs.size(), checkpoint.size());
    assert_eq!(theirs.hash().0, *checkpoint.root());
}

#[test]
fn signed_note_verifies_our_log_signature_and_our_cosignatures() {
    let origin = "audit.tryggdel.example/log";
    let tree = MerkleTree::from_leaf_hashes((0u32..37).map(|i| leaf_hash(&i.to_be_bytes())));
    let checkpoint = Checkpoint::new(origin, tree.len(), tree.root()).unwrap();
    let signer = CheckpointSigner::new(SigningKey::from_bytes(&[7; 32]), origin).unwrap();
    let mut note = SignedNote::parse(&signer.sign(&checkpoint).unwrap()).unwrap();
    let cosigners: Vec<Cosigner> = (1u8..=3)
        .map(|i| {
            Cosigner::new(
                SigningKey::from_bytes(&[i; 32]),
                format!("witness{i}.example"),
            )
            .unwrap()
        })
        .collect();
    for (i, cosigner) in cosigners.iter().enumerate() {
        note.add_signature(
            cosigner
                .cosign(&checkpoint, 1_780_000_000 + i as u64)
                .unwrap(),
        )
        .unwrap();
    }
    let text = note.to_text();

    let parsed = Note::from_bytes(text.as_bytes()).unwrap();
    let mut verifiers: Vec<Box<dyn Verifier>> = vec![Box::new(
        StandardVerifier::new(&signer.verifier().to_vkey_string()).unwrap(),
    )];
    verifiers.extend(cosigners.iter().map(|c| spec_verifier(&c.verifier())));
    let (verified, _) = parsed.verify(&VerifierList::new(verifiers)).unwrap();
    assert_eq!(verified.len(), 4);

    let theirs = tlog_tiles::Checkpoint::from_bytes(parsed.text()).unwrap();
    assert_eq!(theirs.to_bytes(), checkpoint.body_text().into_bytes());
}

#[test]
fn tlog_tiles_checks_our_consistency_and_inclusion_proofs() {
    let tree = MerkleTree::from_leaf_hashes((0u32..300).map(|i| leaf_hash(&i.to_be_bytes())));
    let hash = |h: [u8; 32]| tlog_tiles::Hash(h);
    for (old, new) in [
        (1, 2),
        (3, 7),
        (8, 8),
        (64, 65),
        (100, 300),
        (255, 256),
        (7, 300),
    ] {
        let proof: Vec<_> = tree
            .consistency_proof(old, new)
            .unwrap()
            .into_iter()
            .map(hash)
            .collect();
        tlog_tiles::check_tree(
            &proof,
            new,
            hash(tree.root_at(new).unwrap()),
            old,
            hash(tree.root_at(old).unwrap()),
        )
        .unwrap_or_else(|e| panic!("{old}->{new}: {e:?}"));
        if old < new {
            let forked = hash(leaf_hash(b"forked"));
            assert!(
                tlog_tiles::check_tree(&proof, new, forked, old, hash(tree.root_at(old).unwrap()))
                    .is_err()
            );
        }
    }
    for (index, size) in [(0, 1), (5, 37), (299, 300), (128, 129)] {
        let proof: Vec<_> = tree
            .inclusion_proof(index, size)
            .unwrap()
            .into_iter()
            .map(hash)
            .collect();
        tlog_tiles::check_record(
            &proof,
            size,
            hash(tree.root_at(size).unwrap()),
            index,
            hash(tree.leaf_hash(index).unwrap()),
        )
        .unwrap_or_else(|e| panic!("{index}@{size}: {e:?}"));
    }
}
