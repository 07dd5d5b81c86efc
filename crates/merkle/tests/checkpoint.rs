//! C2SP signed-note checkpoints: round trip, tampering, foreign keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey};
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier};
use tryggdel_merkle::{MerkleError, empty_root, leaf_hash, root_from_leaf_hashes};

const ORIGIN: &str = "tryggdel.example/log";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn signer() -> CheckpointSigner {
    CheckpointSigner::new(key(1), ORIGIN).unwrap()
}

fn checkpoint() -> Checkpoint {
    let leaves: Vec<_> = (0u8..5).map(|i| leaf_hash(&[i])).collect();
    Checkpoint::new(ORIGIN, 5, root_from_leaf_hashes(&leaves)).unwrap()
}

#[test]
fn round_trip() {
    let signer = signer();
    let cp = checkpoint();
    let note = signer.sign(&cp).unwrap();
    let verifier = signer.verifier();
    assert_eq!(verifier.verify(&note).unwrap(), cp);

    let body = cp.body_text();
    assert_eq!(
        body,
        format!("{ORIGIN}\n5\n{}\n", STANDARD.encode(cp.root()))
    );
    assert!(note.starts_with(&format!("{body}\n\u{2014} {ORIGIN} ")));
    assert!(note.ends_with('\n'));
    let sig_line = note.lines().last().unwrap();
    let blob = STANDARD
        .decode(sig_line.rsplit(' ').next().unwrap())
        .unwrap();
    assert_eq!(blob.len(), 4 + 64);
    assert_eq!(blob[..4], signer.key_id());
}

#[test]
fn key_id_follows_signed_note_spec() {
    use sha2::{Digest as _, Sha256};
    let signer = signer();
    let mut h = Sha256::new();
    h.update(ORIGIN.as_bytes());
    h.update(b"\n");
    h.update([0x01]);
    h.update(key(1).verifying_key().as_bytes());
    assert_eq!(signer.key_id()[..], h.finalize()[..4]);
}

#[test]
fn size_zero_checkpoint_needs_empty_root() {
    assert!(Checkpoint::new(ORIGIN, 0, empty_root()).is_ok());
    assert_eq!(
        Checkpoint::new(ORIGIN, 0, [1; 32]),
        Err(MerkleError::EmptyTreeRootMismatch)
    );
    let signer = signer();
    let note = signer
        .sign(&Checkpoint::new(ORIGIN, 0, empty_root()).unwrap())
        .unwrap();
    assert_eq!(signer.verifier().verify(&note).unwrap().size(), 0);
}

#[test]
fn vkey_round_trip_and_tamper() {
    let verifier = signer().verifier();
    let vkey = verifier.to_vkey_string();
    assert!(vkey.starts_with(&format!("{ORIGIN}+")));
    let parts: Vec<_> = vkey.splitn(3, '+').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[1], hex::encode(verifier.key_id()));
    let parsed = CheckpointVerifier::parse_vkey(&vkey).unwrap();
    assert_eq!(parsed, verifier);

    // Wrong key id, wrong name, wrong key type, truncated key, garbage.
    let wrong_id = format!("{}+00000000+{}", parts[0], parts[2]);
    let wrong_name = format!("other.example+{}+{}", parts[1], parts[2]);
    let mut blob = STANDARD.decode(parts[2]).unwrap();
    blob[0] = 0x02;
    let wrong_type = format!("{}+{}+{}", parts[0], parts[1], STANDARD.encode(&blob));
    let short = format!("{}+{}+{}", parts[0], parts[1], STANDARD.encode(&blob[..20]));
    for bad in [
        wrong_id.as_str(),
        wrong_name.as_str(),
        wrong_type.as_str(),
        short.as_str(),
        "",
        "name+abc",
        "na me+00000000+AQ==",
        &format!("{vkey}+extra"),
    ] {
        assert!(CheckpointVerifier::parse_vkey(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn vkeys_whose_base64_holds_a_plus_round_trip() {
    // Base64 uses '+': the key part must not be split on it.
    let with_plus = (0u8..=255)
        .map(|seed| {
            CheckpointSigner::new(SigningKey::from_bytes(&[seed; 32]), ORIGIN)
                .unwrap()
                .verifier()
        })
        .find(|verifier| verifier.to_vkey_string().matches('+').count() > 2)
        .expect("some key's base64 holds a '+'");
    let parsed = CheckpointVerifier::parse_vkey(&with_plus.to_vkey_string()).unwrap();
    assert_eq!(parsed, with_plus);
}

/// Replaces line `n` (0-based) of the note with `line`.
fn replace_line(note: &str, n: usize, line: &str) -> String {
    let mut lines: Vec<&str> = note.split('\n').collect();
    lines[n] = line;
    lines.join("\n")
}

#[test]
fn tampered_body_lines_fail() {
    let signer = signer();
    let verifier = signer.verifier();
    let note = signer.sign(&checkpoint()).unwrap();
    let root_b64 = STANDARD.encode(checkpoint().root());
    let mut other_root = *checkpoint().root();
    other_root[31] ^= 1;

    let cases = [
        (0, "other.example/log".to_owned()),
        (0, format!("{ORIGIN} ")),
        (1, "6".to_owned()),
        (1, "05".to_owned()),
        (1, "+5".to_owned()),
        (1, "5 ".to_owned()),
        (1, "18446744073709551616".to_owned()),
        (2, STANDARD.encode(other_root)),
        (2, root_b64.trim_end_matches('=').to_owned()),
        (2, STANDARD.encode(&checkpoint().root()[..31])),
    ];
    for (line, replacement) in cases {
        let bad = replace_line(&note, line, &replacement);
        assert_ne!(bad, note);
        assert!(
            verifier.verify(&bad).is_err(),
            "line {line} = {replacement:?}"
        );
    }
    // Origin check happens even with a valid signature under another name.
    let other = CheckpointSigner::new(key(1), "other.example/log").unwrap();
    let other_note = other
        .sign(&Checkpoint::new("other.example/log", 5, *checkpoint().root()).unwrap())
        .unwrap();
    assert!(matches!(
        verifier.verify(&other_note),
        Err(MerkleError::OriginMismatch { .. })
    ));
}

#[test]
fn structural_damage_fails() {
    let signer = signer();
    let verifier = signer.verifier();
    let note = signer.sign(&checkpoint()).unwrap();
    let body = checkpoint().body_text();
    let sig_line = note.strip_prefix(&format!("{body}\n")).unwrap();

    let no_blank = format!("{body}{sig_line}");
    let extension = format!("{body}ext line\n\n{sig_line}");
    let crlf = note.replace('\n', "\r\n");
    let no_final_newline = note.trim_end_matches('\n').to_owned();
    let hyphen = note.replace('\u{2014}', "-");
    let garbage_sig_line = format!("{note}garbage\n");
    for bad in [
        no_blank,
        extension,
        crlf,
        no_final_newline,
        hyphen,
        garbage_sig_line,
        String::new(),
    ] {
        assert!(verifier.verify(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn note_without_signature_fails() {
    let verifier = signer().verifier();
    let body = checkpoint().body_text();
    assert!(matches!(
        verifier.verify(&format!("{body}\n")),
        Err(MerkleError::MalformedNote(_))
    ));
    assert!(verifier.verify(&body).is_err());
}

#[test]
fn signature_from_another_key_fails() {
    let verifier = signer().verifier();
    let cp = checkpoint();
    // Same name, different key: its key id differs, so no known signature.
    let impostor = CheckpointSigner::new(key(2), ORIGIN).unwrap();
    let note = impostor.sign(&cp).unwrap();
    assert_eq!(
        verifier.verify(&note),
        Err(MerkleError::NoKnownSignature(ORIGIN.to_owned()))
    );

    // Another key's signature under the pinned key id is a bad signature.
    let body = cp.body_text();
    let forged_sig = key(2).sign(body.as_bytes());
    let mut blob = signer().key_id().to_vec();
    blob.extend_from_slice(&forged_sig.to_bytes());
    let forged = format!("{body}\n\u{2014} {ORIGIN} {}\n", STANDARD.encode(&blob));
    assert_eq!(
        verifier.verify(&forged),
        Err(MerkleError::InvalidSignature(ORIGIN.to_owned()))
    );

    // A flipped bit in the real signature fails too.
    let note = signer().sign(&cp).unwrap();
    let sig_b64 = note.lines().last().unwrap().rsplit(' ').next().unwrap();
    let mut blob = STANDARD.decode(sig_b64).unwrap();
    blob[10] ^= 0x20;
    let flipped = note.replace(sig_b64, &STANDARD.encode(&blob));
    assert!(verifier.verify(&flipped).is_err());
}

#[test]
fn unknown_cosigners_are_ignored_but_not_sufficient() {
    let signer = signer();
    let verifier = signer.verifier();
    let cp = checkpoint();
    let note = signer.sign(&cp).unwrap();
    let witness = CheckpointSigner::new(key(3), "witness.example").unwrap();
    let witness_sig = key(3).sign(cp.body_text().as_bytes());
    let mut blob = witness.key_id().to_vec();
    blob.extend_from_slice(&witness_sig.to_bytes());
    let witness_line = format!("\u{2014} witness.example {}\n", STANDARD.encode(&blob));

    // Extra unknown signer before and after the known one: still verifies.
    let before = note.replacen("\n\n", &format!("\n\n{witness_line}"), 1);
    assert_eq!(verifier.verify(&before).unwrap(), cp);
    assert_eq!(
        verifier.verify(&format!("{note}{witness_line}")).unwrap(),
        cp
    );

    // Only the unknown signer: refused.
    let only_witness = format!("{}\n{witness_line}", cp.body_text());
    assert_eq!(
        verifier.verify(&only_witness),
        Err(MerkleError::NoKnownSignature(ORIGIN.to_owned()))
    );
}

#[test]
fn signer_refuses_foreign_origin_and_bad_names() {
    let other = Checkpoint::new("other.example/log", 1, leaf_hash(b"x")).unwrap();
    assert!(matches!(
        signer().sign(&other),
        Err(MerkleError::SignerOriginMismatch { .. })
    ));
    for bad in ["", "a b", "a+b", "a\nb"] {
        assert!(CheckpointSigner::new(key(1), bad).is_err(), "{bad:?}");
        assert!(
            CheckpointVerifier::new(bad, key(1).verifying_key()).is_err(),
            "{bad:?}"
        );
    }
    assert!(Checkpoint::new("", 1, [0; 32]).is_err());
    assert!(Checkpoint::new("a\nb", 1, [0; 32]).is_err());
}
