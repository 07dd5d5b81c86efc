//! Property tests: generated proofs verify, every single-bit or structural
//! mutation is rejected, and `MerkleTree` agrees with the slice functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use proptest::sample::Index;
use tryggdel_merkle::{
    Hash, MerkleTree, consistency_proof, inclusion_proof, root_from_inclusion_proof,
    root_from_leaf_hashes, verify_consistency, verify_inclusion,
};

fn split(n: u64) -> u64 {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// Sides of an RFC 9162 `PATH` from the leaf up (true: sibling on the
/// right), derived from the RFC recursion rather than the verifier's bit
/// arithmetic. Two (index, size) pairs with the same shape hash a given
/// proof identically, so a proof verifies for both or neither.
fn inclusion_shape(m: u64, n: u64) -> Vec<bool> {
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    let mut v = if m < k {
        inclusion_shape(m, k)
    } else {
        inclusion_shape(m - k, n - k)
    };
    v.push(m < k);
    v
}

/// Same idea for `SUBPROOF`: whether the seed is root1 (not in the proof)
/// and the sides of the following proof hashes.
fn consistency_shape(m: u64, n: u64, b: bool) -> (bool, Vec<bool>) {
    if m == n {
        return (b, Vec::new());
    }
    let k = split(n);
    let (seed, mut v) = if m <= k {
        consistency_shape(m, k, b)
    } else {
        consistency_shape(m - k, n - k, false)
    };
    v.push(m <= k);
    (seed, v)
}

fn leaves_strategy(max: usize) -> impl Strategy<Value = Vec<Hash>> {
    prop::collection::vec(any::<[u8; 32]>(), 1..=max)
}

fn pick(ix: &Index, lo: u64, hi_inclusive: u64) -> u64 {
    lo + ix.index((hi_inclusive - lo + 1) as usize) as u64
}

/// `hash` with bit `bit` (0..256) flipped.
fn with_bit_flipped(hash: &Hash, bit: usize) -> Hash {
    let mut flipped = *hash;
    flipped[bit / 8] ^= 1 << (bit % 8);
    flipped
}

/// Checks that `verifies` refuses `proof` with any single bit of any of its hashes flipped,
/// cut short at either end, or padded at either end with any of `pads`.
fn changed_proofs_are_refused(
    proof: &[Hash],
    pads: [Hash; 3],
    verifies: impl Fn(&[Hash]) -> bool,
) -> Result<(), TestCaseError> {
    for p in 0..proof.len() {
        for bit in 0..256 {
            let mut bad = proof.to_vec();
            bad[p] = with_bit_flipped(&bad[p], bit);
            prop_assert!(!verifies(&bad));
        }
    }
    for cut in 0..proof.len() {
        prop_assert!(!verifies(&proof[..cut]));
        prop_assert!(!verifies(&proof[cut + 1..]));
    }
    for pad in pads {
        let mut longer = proof.to_vec();
        longer.push(pad);
        prop_assert!(!verifies(&longer));
        let mut longer = vec![pad];
        longer.extend_from_slice(proof);
        prop_assert!(!verifies(&longer));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn all_generated_proofs_verify(leaves in leaves_strategy(256), s in any::<Index>()) {
        let tree = MerkleTree::from_leaf_hashes(leaves.iter().copied());
        let n = tree.len();
        let root = tree.root();
        prop_assert_eq!(root, root_from_leaf_hashes(&leaves));
        let size = pick(&s, 1, n);
        let root_s = tree.root_at(size).unwrap();
        for index in 0..size {
            let proof = tree.inclusion_proof(index, size).unwrap();
            let leaf = tree.leaf_hash(index).unwrap();
            prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root_s), Ok(()));
        }
        for index in 0..n {
            let proof = tree.inclusion_proof(index, n).unwrap();
            prop_assert_eq!(
                root_from_inclusion_proof(&leaves[index as usize], index, n, &proof),
                Ok(root)
            );
        }
        for size1 in 1..=n {
            let r1 = tree.root_at(size1).unwrap();
            let proof = tree.consistency_proof(size1, n).unwrap();
            prop_assert_eq!(verify_consistency(size1, n, &r1, &root, &proof), Ok(()));
            let proof = tree.consistency_proof(size1.min(size), size).unwrap();
            let r1 = tree.root_at(size1.min(size)).unwrap();
            prop_assert_eq!(
                verify_consistency(size1.min(size), size, &r1, &root_s, &proof),
                Ok(())
            );
        }
    }

    #[test]
    fn inclusion_mutations_fail(
        leaves in leaves_strategy(256),
        s in any::<Index>(),
        i in any::<Index>(),
        extra in any::<[u8; 32]>(),
    ) {
        let tree = MerkleTree::from_leaf_hashes(leaves.iter().copied());
        let size = pick(&s, 1, tree.len());
        let index = pick(&i, 0, size - 1);
        let root = tree.root_at(size).unwrap();
        let leaf = leaves[index as usize];
        let proof = tree.inclusion_proof(index, size).unwrap();
        prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));

        // Every single bit of every proof hash, of the root, of the leaf; truncated and
        // extended proofs.
        changed_proofs_are_refused(&proof, [extra, root, leaf], |proof| {
            verify_inclusion(&leaf, index, size, proof, &root).is_ok()
        })?;
        for bit in 0..256 {
            let bad_root = with_bit_flipped(&root, bit);
            prop_assert!(verify_inclusion(&leaf, index, size, &proof, &bad_root).is_err());
            let bad_leaf = with_bit_flipped(&leaf, bit);
            prop_assert!(verify_inclusion(&bad_leaf, index, size, &proof, &root).is_err());
        }

        // Reordered proofs.
        if proof.len() >= 2 {
            let mut swapped = proof.clone();
            swapped.swap(0, 1);
            if swapped != proof {
                prop_assert!(verify_inclusion(&leaf, index, size, &swapped, &root).is_err());
            }
        }

        // Other indices and sizes: a proof only carries the shape of its
        // path, so it verifies exactly when the path shape is unchanged
        // (e.g. leaf 0 of size 3 and of size 4), and never for another
        // index of the same tree size.
        let want_shape = inclusion_shape(index, size);
        for size2 in size.saturating_sub(3)..=size + 3 {
            for index2 in 0..=size2 {
                if (index2, size2) == (index, size) {
                    continue;
                }
                let ok = verify_inclusion(&leaf, index2, size2, &proof, &root).is_ok();
                let same = index2 < size2 && inclusion_shape(index2, size2) == want_shape;
                prop_assert_eq!(ok, same, "index {} size {}", index2, size2);
                if size2 == size {
                    prop_assert!(!ok);
                }
            }
        }
        prop_assert!(verify_inclusion(&leaf, size, size, &proof, &root).is_err());
        prop_assert!(verify_inclusion(&leaf, u64::MAX, size, &proof, &root).is_err());
    }

    #[test]
    fn consistency_mutations_fail(
        leaves in leaves_strategy(256),
        a in any::<Index>(),
        b in any::<Index>(),
        extra in any::<[u8; 32]>(),
    ) {
        prop_assume!(leaves.len() >= 2);
        let tree = MerkleTree::from_leaf_hashes(leaves.iter().copied());
        let size2 = pick(&b, 2, tree.len());
        let size1 = pick(&a, 1, size2 - 1);
        let r1 = tree.root_at(size1).unwrap();
        let r2 = tree.root_at(size2).unwrap();
        let proof = tree.consistency_proof(size1, size2).unwrap();
        prop_assert!(!proof.is_empty());
        prop_assert_eq!(verify_consistency(size1, size2, &r1, &r2, &proof), Ok(()));

        changed_proofs_are_refused(&proof, [extra, r1, r2], |proof| {
            verify_consistency(size1, size2, &r1, &r2, proof).is_ok()
        })?;
        for bit in 0..256 {
            let bad = with_bit_flipped(&r1, bit);
            prop_assert!(verify_consistency(size1, size2, &bad, &r2, &proof).is_err());
            let bad = with_bit_flipped(&r2, bit);
            prop_assert!(verify_consistency(size1, size2, &r1, &bad, &proof).is_err());
        }
        prop_assert!(verify_consistency(size1, size2, &r2, &r1, &proof).is_err());

        // Changed sizes verify exactly when the proof shape is unchanged.
        let want_shape = consistency_shape(size1, size2, true);
        for s1 in size1.saturating_sub(3)..=size1 + 3 {
            for s2 in size2.saturating_sub(3)..=size2 + 3 {
                if (s1, s2) == (size1, size2) {
                    continue;
                }
                let ok = verify_consistency(s1, s2, &r1, &r2, &proof).is_ok();
                let same = 0 < s1 && s1 < s2 && consistency_shape(s1, s2, true) == want_shape;
                prop_assert_eq!(ok, same, "sizes {} {}", s1, s2);
            }
        }
        prop_assert!(verify_consistency(size2, size1, &r1, &r2, &proof).is_err());
        prop_assert!(verify_consistency(0, size2, &r1, &r2, &proof).is_err());
        prop_assert!(verify_consistency(0, size2, &r1, &r2, &[]).is_err());
        prop_assert!(verify_consistency(size1, size1, &r1, &r2, &[]).is_err());
    }

    #[test]
    fn tree_agrees_with_slice_functions(
        leaves in leaves_strategy(300),
        picks in prop::collection::vec((any::<Index>(), any::<Index>()), 8),
    ) {
        let tree = MerkleTree::from_leaf_hashes(leaves.iter().copied());
        let n = leaves.len() as u64;
        prop_assert_eq!(tree.len(), n);
        prop_assert_eq!(tree.root(), root_from_leaf_hashes(&leaves));
        prop_assert_eq!(tree.root_at(n).unwrap(), tree.root());
        prop_assert_eq!(tree.root_at(0).unwrap(), root_from_leaf_hashes(&[]));
        let mut pairs: Vec<(u64, u64)> = picks
            .iter()
            .map(|(x, y)| {
                let size = pick(y, 1, n);
                (pick(x, 0, size - 1), size)
            })
            .collect();
        pairs.extend([(0, n), (n - 1, n), (0, 1)]);
        for (index, size) in pairs {
            prop_assert_eq!(
                tree.root_at(size).unwrap(),
                root_from_leaf_hashes(&leaves[..size as usize])
            );
            prop_assert_eq!(
                tree.inclusion_proof(index, size).unwrap(),
                inclusion_proof(&leaves, index, size).unwrap()
            );
            // index + 1 <= size doubles as a consistency pair.
            prop_assert_eq!(
                tree.consistency_proof(index + 1, size).unwrap(),
                consistency_proof(&leaves, index + 1, size).unwrap()
            );
            prop_assert_eq!(
                tree.consistency_proof(index, size),
                consistency_proof(&leaves, index, size)
            );
        }
        prop_assert_eq!(tree.inclusion_proof(n, n), inclusion_proof(&leaves, n, n));
        prop_assert!(tree.inclusion_proof(0, n + 1).is_err());
        prop_assert!(inclusion_proof(&leaves, 0, n + 1).is_err());
        prop_assert!(tree.consistency_proof(1, n + 1).is_err());
        prop_assert!(consistency_proof(&leaves, 1, n + 1).is_err());
    }

    #[test]
    fn incremental_pushes_match_rebuild(leaves in leaves_strategy(64)) {
        let mut tree = MerkleTree::new();
        for (i, leaf) in leaves.iter().enumerate() {
            prop_assert_eq!(tree.push(*leaf), i as u64);
            prop_assert_eq!(tree.root(), root_from_leaf_hashes(&leaves[..=i]));
        }
        prop_assert_eq!(tree, MerkleTree::from_leaf_hashes(leaves.iter().copied()));
    }
}
