//! Proof verification, RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2
//! (consistency). Every function checks sizes and the exact proof length
//! before hashing anything, and checks that the path was fully consumed.

use crate::{Hash, MerkleError, empty_root, node_hash};

/// The walk from a node up to the root that both verifiers make (RFC 9162 §2.1.3.2 and
/// §2.1.4.2, the variables `fn` and `sn`): `f` is the node's index on its level, `s` the
/// index of the last node on that level.
struct PathWalk {
    f: u64,
    s: u64,
}

/// Which side of the running hash the next proof hash goes on.
enum Sibling {
    /// `HASH(0x01 || proof hash || running hash)`.
    Left,
    /// `HASH(0x01 || running hash || proof hash)`.
    Right,
}

impl PathWalk {
    /// One level up.
    fn up(&mut self) {
        self.f >>= 1;
        self.s >>= 1;
    }

    /// The side of the next proof hash, moving up past it; `None` at the root, where a
    /// further proof hash makes the proof too long.
    fn next_sibling(&mut self) -> Option<Sibling> {
        if self.at_root() {
            return None;
        }
        let sibling = if self.f & 1 == 1 || self.f == self.s {
            // Levels where the node has no right sibling take no proof hash.
            while self.f & 1 == 0 && self.f != 0 {
                self.up();
            }
            Sibling::Left
        } else {
            Sibling::Right
        };
        self.up();
        Some(sibling)
    }

    /// Whether the walk reached the root, i.e. the proof was fully consumed.
    fn at_root(&self) -> bool {
        self.s == 0
    }
}

/// Number of bits needed to represent `x` (0 for 0).
fn bit_len(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// The `(inner, border)` split of an inclusion path for `index` in a tree of
/// `size` leaves (`index < size`): `inner` levels below the point where the
/// paths to `index` and `size - 1` join, then `border` left-hand siblings
/// along the right border.
fn decompose(index: u64, size: u64) -> (u32, u32) {
    let inner = bit_len(index ^ (size - 1));
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}

/// The exact length of a valid inclusion proof for `index` in a tree of
/// `size` leaves.
pub fn inclusion_proof_len(index: u64, size: u64) -> Result<usize, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexBeyondSize { index, size });
    }
    let (inner, border) = decompose(index, size);
    Ok((inner + border) as usize)
}

/// The exact length of a valid consistency proof from `size1` to `size2`
/// (0 when the sizes are equal). Errors for `size1 > size2` and for
/// `0 == size1 < size2`.
pub fn consistency_proof_len(size1: u64, size2: u64) -> Result<usize, MerkleError> {
    if size1 > size2 {
        return Err(MerkleError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == size2 {
        return Ok(0);
    }
    if size1 == 0 {
        return Err(MerkleError::ConsistencyFromEmptyTree { size2 });
    }
    let (inner, border) = decompose(size1 - 1, size2);
    // The levels below size1's largest aligned power-of-two subtree are not
    // part of the proof; that subtree's root is (unless it is the whole old
    // tree, i.e. size1 is a power of two) the proof's first hash.
    let shift = size1.trailing_zeros();
    let seed = usize::from(!size1.is_power_of_two());
    Ok(seed + (inner - shift + border) as usize)
}

/// Recomputes the root of a `tree_size` tree from `leaf_hash` at `index` and
/// its inclusion proof (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion_proof(
    leaf_hash: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
) -> Result<Hash, MerkleError> {
    let want = inclusion_proof_len(index, tree_size)?;
    let wrong_length = || MerkleError::InclusionProofLength {
        got: proof.len(),
        want,
    };
    if proof.len() != want {
        return Err(wrong_length());
    }
    let mut walk = PathWalk {
        f: index,
        s: tree_size - 1,
    };
    let mut r = *leaf_hash;
    for p in proof {
        match walk.next_sibling() {
            None => return Err(wrong_length()),
            Some(Sibling::Left) => r = node_hash(p, &r),
            Some(Sibling::Right) => r = node_hash(&r, p),
        }
    }
    if !walk.at_root() {
        return Err(MerkleError::InclusionProofNotConsumed);
    }
    Ok(r)
}

/// Verifies that `leaf_hash` is leaf `index` of the tree of `tree_size`
/// leaves whose root is `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    let calculated = root_from_inclusion_proof(leaf_hash, index, tree_size, proof)?;
    if &calculated != root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `size1` leaves with root `root1` is a prefix of
/// the tree of `size2` leaves with root `root2` (RFC 9162 §2.1.4.2).
///
/// `size1 == size2` requires an empty proof and equal roots (the empty root
/// when both are 0); `0 == size1 < size2` is refused as meaningless.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if size1 == 0 && size2 > 0 && !proof.is_empty() {
        return Err(MerkleError::ConsistencyProofLength {
            got: proof.len(),
            want: 0,
        });
    }
    let want = consistency_proof_len(size1, size2)?;
    let wrong_length = || MerkleError::ConsistencyProofLength {
        got: proof.len(),
        want,
    };
    if proof.len() != want {
        return Err(wrong_length());
    }
    if size1 == size2 {
        if size1 == 0 && (root1 != &empty_root() || root2 != &empty_root()) {
            return Err(MerkleError::EmptyTreeRootMismatch);
        }
        if root1 != root2 {
            return Err(MerkleError::RootMismatch);
        }
        return Ok(());
    }

    // 0 < size1 < size2 and proof.len() == want >= 1 from here on.
    let prepend = size1.is_power_of_two().then_some(root1);
    let mut path = prepend.into_iter().chain(proof.iter());
    let mut walk = PathWalk {
        f: size1 - 1,
        s: size2 - 1,
    };
    while walk.f & 1 == 1 {
        walk.up();
    }
    let Some(first) = path.next() else {
        return Err(MerkleError::ConsistencyProofLength { got: 0, want });
    };
    let mut fr = *first;
    let mut sr = *first;
    for c in path {
        match walk.next_sibling() {
            None => return Err(wrong_length()),
            Some(Sibling::Left) => {
                fr = node_hash(c, &fr);
                sr = node_hash(c, &sr);
            }
            Some(Sibling::Right) => sr = node_hash(&sr, c),
        }
    }
    if !walk.at_root() {
        return Err(MerkleError::ConsistencyProofNotConsumed);
    }
    if &fr != root1 {
        return Err(MerkleError::FirstRootMismatch);
    }
    if &sr != root2 {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{consistency_proof, inclusion_proof, leaf_hash, root_from_leaf_hashes};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn proof_lengths_match_generated_proofs() {
        let l = leaves(70);
        for size in 1..=70u64 {
            for index in 0..size {
                assert_eq!(
                    inclusion_proof_len(index, size).unwrap(),
                    inclusion_proof(&l, index, size).unwrap().len(),
                    "inclusion {index}/{size}"
                );
            }
            for size1 in 1..=size {
                assert_eq!(
                    consistency_proof_len(size1, size).unwrap(),
                    consistency_proof(&l, size1, size).unwrap().len(),
                    "consistency {size1}->{size}"
                );
            }
        }
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX).unwrap(), 63);
        assert_eq!(inclusion_proof_len(0, u64::MAX).unwrap(), 64);
        assert!(consistency_proof_len(u64::MAX - 1, u64::MAX).is_ok());
    }

    #[test]
    fn error_messages_name_the_failure() {
        let l = leaves(8);
        let root = root_from_leaf_hashes(&l);
        let proof = inclusion_proof(&l, 2, 8).unwrap();
        assert_eq!(
            verify_inclusion(&l[2], 2, 8, &proof[..2], &root)
                .unwrap_err()
                .to_string(),
            "inclusion proof has 2 hashes, expected 3"
        );
        assert_eq!(
            verify_inclusion(&l[2], 8, 8, &proof, &root)
                .unwrap_err()
                .to_string(),
            "leaf index 8 is not below tree size 8"
        );
        assert_eq!(
            verify_inclusion(&l[3], 2, 8, &proof, &root),
            Err(MerkleError::RootMismatch)
        );
        assert_eq!(verify_inclusion(&l[2], 2, 8, &proof, &root), Ok(()));
    }

    #[test]
    fn equal_and_empty_sizes() {
        let e = empty_root();
        let x = leaf_hash(b"x");
        assert_eq!(verify_consistency(0, 0, &e, &e, &[]), Ok(()));
        assert_eq!(
            verify_consistency(0, 0, &x, &x, &[]),
            Err(MerkleError::EmptyTreeRootMismatch)
        );
        assert_eq!(verify_consistency(3, 3, &x, &x, &[]), Ok(()));
        assert_eq!(
            verify_consistency(3, 3, &x, &e, &[]),
            Err(MerkleError::RootMismatch)
        );
        assert!(matches!(
            verify_consistency(3, 3, &x, &x, &[x]),
            Err(MerkleError::ConsistencyProofLength { got: 1, want: 0 })
        ));
        assert!(matches!(
            verify_consistency(0, 3, &e, &x, &[x]),
            Err(MerkleError::ConsistencyProofLength { got: 1, want: 0 })
        ));
        assert_eq!(
            verify_consistency(0, 3, &e, &x, &[]),
            Err(MerkleError::ConsistencyFromEmptyTree { size2: 3 })
        );
        assert_eq!(
            verify_consistency(4, 3, &x, &x, &[]),
            Err(MerkleError::SizesOutOfOrder { size1: 4, size2: 3 })
        );
    }

    /// The classic bug class: a verifier that stops when the proof runs out
    /// without checking that it reached the top of the size2 tree. Proofs
    /// that are a prefix of the real one must be refused up front.
    #[test]
    fn consistency_refuses_truncated_and_padded_paths() {
        let l = leaves(8);
        let r3 = root_from_leaf_hashes(&l[..3]);
        let r6 = root_from_leaf_hashes(&l[..6]);
        let r8 = root_from_leaf_hashes(&l);
        let proof = consistency_proof(&l, 3, 8).unwrap();
        assert_eq!(verify_consistency(3, 8, &r3, &r8, &proof), Ok(()));
        for cut in 0..proof.len() {
            assert_eq!(
                verify_consistency(3, 8, &r3, &r8, &proof[..cut]),
                Err(MerkleError::ConsistencyProofLength {
                    got: cut,
                    want: proof.len()
                })
            );
        }
        let mut longer = proof.clone();
        longer.push(r8);
        assert!(verify_consistency(3, 8, &r3, &r8, &longer).is_err());
        // A 3 -> 6 proof does not prove 3 -> 8 with the real size-8 root.
        let proof6 = consistency_proof(&l, 3, 6).unwrap();
        assert_eq!(verify_consistency(3, 6, &r3, &r6, &proof6), Ok(()));
        assert!(verify_consistency(3, 8, &r3, &r8, &proof6).is_err());
    }
}
