//! Every transparency-dev/merkle JSON vector in `shared/testdata/merkle`:
//! happy paths must verify, every `wantErr` vector must be rejected.
//!
//! Hashes in the vectors are base64 byte strings that are sometimes not 32
//! bytes long (placeholders such as "don't care 1", empty garbage entries).
//! Each vector is run twice:
//!
//! * strictly, as a caller of this crate would: every field goes through
//!   [`hash_from_slice`] and a wrong length is a rejection. A happy vector
//!   must pass this unless it contains a placeholder (that case is counted
//!   and covered by the second run);
//! * opaquely, like the Go verifier that treats hashes as byte strings:
//!   roots and proof entries shorter than 32 bytes are zero-padded, which
//!   keeps equal values equal and distinct ones distinct in these vectors,
//!   so that the verifier itself, not the decoder, has to reach the right
//!   verdict. (The Go verifier does insist on a 32-byte leaf hash, so that
//!   one stays strict.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use tryggdel_merkle::{Hash, MerkleError, hash_from_slice, verify_consistency, verify_inclusion};

fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/merkle")
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read vector directory {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_json(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

fn bytes(v: &Value, field: &str, file: &Path) -> Vec<u8> {
    let s = v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{}: {field} is not a string", file.display()));
    STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("{}: {field} is not base64: {e}", file.display()))
}

fn proof_bytes(v: &Value, file: &Path) -> Vec<Vec<u8>> {
    match &v["proof"] {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                STANDARD
                    .decode(item.as_str().expect("proof entry is a string"))
                    .unwrap_or_else(|e| panic!("{}: proof entry not base64: {e}", file.display()))
            })
            .collect(),
        other => panic!("{}: proof is {other}", file.display()),
    }
}

fn u64_field(v: &Value, field: &str, file: &Path) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{}: {field} is not a u64", file.display()))
}

/// Zero-pads values shorter than 32 bytes; `None` for longer ones.
fn opaque(b: &[u8]) -> Option<Hash> {
    let mut h = [0u8; 32];
    h.get_mut(..b.len())?.copy_from_slice(b);
    Some(h)
}

fn strict_all(list: &[Vec<u8>]) -> Result<Vec<Hash>, MerkleError> {
    list.iter().map(|b| hash_from_slice(b)).collect()
}

fn opaque_all(list: &[Vec<u8>]) -> Option<Vec<Hash>> {
    list.iter().map(|b| opaque(b)).collect()
}

#[derive(Default, Debug)]
struct Counts {
    inclusion: usize,
    consistency: usize,
    happy: usize,
    rejected: usize,
    rejected_by_verifier: usize,
    happy_with_placeholders: usize,
}

/// How the Go verifier reads one of a vector's two hashes.
#[derive(Clone, Copy)]
enum GoReading {
    /// Refused unless exactly 32 bytes long, as a caller of this crate would.
    Strict,
    /// Zero-padded when shorter (see [`opaque`]).
    Opaque,
}

impl GoReading {
    fn read(self, b: &[u8]) -> Option<Hash> {
        match self {
            GoReading::Strict => hash_from_slice(b).ok(),
            GoReading::Opaque => opaque(b),
        }
    }
}

/// A verifier called with a vector's two numbers, its two hashes and its proof.
type Verify = fn([u64; 2], [Hash; 2], &[Hash]) -> Result<(), MerkleError>;

/// What one kind of vector holds and how it is verified.
struct VectorKind {
    /// The fields holding the two sizes or indices, in the order `verify` takes them.
    numbers: [&'static str; 2],
    /// The fields holding the two hashes, each with how the Go verifier reads it.
    hashes: [(&'static str, GoReading); 2],
    verify: Verify,
}

const INCLUSION: VectorKind = VectorKind {
    numbers: ["leafIdx", "treeSize"],
    // The Go verifier checks the leaf hash length but not the others.
    hashes: [("root", GoReading::Opaque), ("leafHash", GoReading::Strict)],
    verify: |[index, size], [root, leaf], proof| verify_inclusion(&leaf, index, size, proof, &root),
};

const CONSISTENCY: VectorKind = VectorKind {
    numbers: ["size1", "size2"],
    hashes: [("root1", GoReading::Opaque), ("root2", GoReading::Opaque)],
    verify: |[size1, size2], [root1, root2], proof| {
        verify_consistency(size1, size2, &root1, &root2, proof)
    },
};

/// Runs the vector `v` of `kind` both ways (see the module comment): strictly, and as the Go
/// verifier reads each hash and (opaquely) the proof; then [`check`]s both outcomes against
/// `want_err`.
fn run_vector(v: &Value, file: &Path, want_err: bool, counts: &mut Counts, kind: &VectorKind) {
    let numbers = kind.numbers.map(|field| u64_field(v, field, file));
    let hashes = kind
        .hashes
        .map(|(field, reading)| (bytes(v, field, file), reading));
    let proof = proof_bytes(v, file);

    let strict = (|| {
        let [first, second] = hashes.each_ref().map(|(b, _)| hash_from_slice(b));
        let (first, second) = (first?, second?);
        let proof = strict_all(&proof)?;
        (kind.verify)(numbers, [first, second], &proof)
    })();
    let [first, second] = hashes.each_ref().map(|(b, reading)| reading.read(b));
    let opaque_result = match (first, second, opaque_all(&proof)) {
        (Some(first), Some(second), Some(proof)) => {
            Some((kind.verify)(numbers, [first, second], &proof))
        }
        _ => None,
    };
    check(file, want_err, &strict, opaque_result.as_ref(), counts);
}

fn check(
    file: &Path,
    want_err: bool,
    strict: &Result<(), MerkleError>,
    opaque: Option<&Result<(), MerkleError>>,
    counts: &mut Counts,
) {
    let name = file.display();
    if want_err {
        assert!(
            strict.is_err(),
            "{name}: strict verification accepted a wantErr vector"
        );
        if let Some(result) = opaque {
            assert!(
                result.is_err(),
                "{name}: verifier accepted a wantErr vector"
            );
            counts.rejected_by_verifier += 1;
        }
        counts.rejected += 1;
    } else {
        let opaque = opaque.unwrap_or_else(|| panic!("{name}: happy vector has an over-long hash"));
        assert_eq!(opaque, &Ok(()), "{name}: verifier rejected a happy vector");
        match strict {
            Ok(()) => {}
            Err(MerkleError::InvalidHashLength { .. }) => counts.happy_with_placeholders += 1,
            Err(e) => panic!("{name}: strict verification rejected a happy vector: {e}"),
        }
        counts.happy += 1;
    }
}

#[test]
fn all_transparency_dev_vectors() {
    let dir = vector_dir();
    assert!(
        dir.is_dir(),
        "merkle test vectors not found at {} (shared/ must be checked out beside the repo)",
        dir.display()
    );
    let mut files = Vec::new();
    collect_json(&dir, &mut files);
    files.sort();

    let mut counts = Counts::default();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", file.display()));
        let want_err = v["wantErr"]
            .as_bool()
            .unwrap_or_else(|| panic!("{}: wantErr missing", file.display()));
        let rel = file.strip_prefix(&dir).unwrap();
        match rel.components().next().and_then(|c| c.as_os_str().to_str()) {
            Some("inclusion") => {
                run_vector(&v, file, want_err, &mut counts, &INCLUSION);
                counts.inclusion += 1;
            }
            Some("consistency") => {
                run_vector(&v, file, want_err, &mut counts, &CONSISTENCY);
                counts.consistency += 1;
            }
            other => panic!("{}: unexpected vector kind {other:?}", file.display()),
        }
    }

    eprintln!("{counts:?}");
    let total = counts.inclusion + counts.consistency;
    assert_eq!(total, files.len());
    assert!(
        total > 100,
        "only {total} vectors read from {}",
        dir.display()
    );
    assert!(counts.inclusion > 0 && counts.consistency > 0, "{counts:?}");
    assert!(counts.happy >= 10 && counts.rejected > 100, "{counts:?}");
    assert!(counts.rejected_by_verifier > 100, "{counts:?}");
    // Only the "sizes are equal (one) and proof is empty" placeholder case.
    assert!(counts.happy_with_placeholders <= 1, "{counts:?}");
}
