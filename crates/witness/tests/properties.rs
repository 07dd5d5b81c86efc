//! Property tests of the parsers: requests, bundles, policies and notes round-trip through
//! their text, and no input makes a parser panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use tryggdel_merkle::checkpoint::{Checkpoint, Cosigner, NoteSignature, SignedNote};
use tryggdel_witness::bundle::ProofBundle;
use tryggdel_witness::policy::Policy;
use tryggdel_witness::protocol::AddCheckpoint;

fn hashes(max: usize) -> impl Strategy<Value = Vec<[u8; 32]>> {
    prop::collection::vec(any::<[u8; 32]>(), 0..max)
}

/// Text built from the pieces these formats are made of, so that parsers get near-misses
/// and not only noise.
fn near_misses() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("old ".to_owned()),
            Just("index ".to_owned()),
            Just("extra ".to_owned()),
            Just("c2sp.org/tlog-proof@v1".to_owned()),
            Just("witness ".to_owned()),
            Just("group ".to_owned()),
            Just("quorum ".to_owned()),
            Just("log ".to_owned()),
            Just("\u{2014} ".to_owned()),
            Just("\n".to_owned()),
            Just(" ".to_owned()),
            Just("any".to_owned()),
            Just("all".to_owned()),
            Just("AAAA".to_owned()),
            "[0-9]{1,20}",
            "[A-Za-z0-9+/=]{1,60}",
            "[a-z./+]{1,20}",
            any::<String>(),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn add_checkpoint_requests_round_trip(old in any::<u64>(), proof in hashes(64), note in "[ -~\n]{0,200}") {
        let request = AddCheckpoint { old_size: old, proof, note };
        let parsed = AddCheckpoint::parse(&request.to_text());
        if request.proof.len() <= 63 {
            prop_assert_eq!(parsed.unwrap(), request);
        } else {
            prop_assert!(parsed.is_err());
        }
    }

    #[test]
    fn bundles_round_trip(entry in prop::collection::vec(any::<u8>(), 0..300), index in any::<u64>(), proof in hashes(64), note in "[ -~\n]{0,200}") {
        let bundle = ProofBundle { entry, index, proof, checkpoint_note: note };
        prop_assert_eq!(ProofBundle::parse(&bundle.to_text()).unwrap(), bundle);
    }

    #[test]
    fn no_input_makes_a_parser_panic(text in near_misses()) {
        let _ = AddCheckpoint::parse(&text);
        let _ = ProofBundle::parse(&text);
        if let Ok(policy) = Policy::parse(&text) {
            let _ = policy.is_met_by(["a", "b"]);
        }
        let _ = SignedNote::parse(&text);
        let _ = NoteSignature::parse_lines(&text);
        let _ = Checkpoint::parse_body(&text);
    }

    #[test]
    fn cosignatures_verify_only_for_their_checkpoint_and_time(
        seed in any::<[u8; 32]>(), size in 1u64..u64::MAX, root in any::<[u8; 32]>(), time in 1u64..u64::MAX, other in any::<[u8; 32]>(),
    ) {
        let cosigner = Cosigner::new(SigningKey::from_bytes(&seed), "witness.example").unwrap();
        let checkpoint = Checkpoint::new("log.example", size, root).unwrap();
        let signature = cosigner.cosign(&checkpoint, time).unwrap();
        let line = signature.to_line();
        let parsed = NoteSignature::parse_lines(&line).unwrap().remove(0);
        prop_assert_eq!(cosigner.verifier().verify(&checkpoint.body_text(), &parsed).unwrap(), time);
        if other != root {
            let moved = Checkpoint::new("log.example", size, other).unwrap();
            prop_assert!(cosigner.verifier().verify(&moved.body_text(), &parsed).is_err());
        }
    }
}
