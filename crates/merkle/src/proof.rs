//! Reference implementation over a slice of leaf hashes: RFC 9162 §2.1.1
//! `MTH`, §2.1.3.1 `PATH` and §2.1.4.1 `PROOF`/`SUBPROOF`, written as
//! directly after the RFC's recursive definitions as possible. Costs `O(n)`
//! hashes per call; [`crate::MerkleTree`] is the `O(log n)` equivalent.

use crate::{Hash, MerkleError, empty_root, node_hash, split_point};

/// `MTH(D[n])` of RFC 9162 §2.1.1 over already-hashed leaves, for any size
/// including 0 (the empty root).
#[must_use]
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [leaf] => *leaf,
        _ => {
            let (left, right) = split(leaves);
            node_hash(&root_from_leaf_hashes(left), &root_from_leaf_hashes(right))
        }
    }
}

/// Splits `leaves` (length >= 2) at the RFC's `k`.
fn split(leaves: &[Hash]) -> (&[Hash], &[Hash]) {
    // k < len for len >= 2, so this never splits out of bounds.
    let k = split_point(leaves.len() as u64);
    leaves.split_at(usize::try_from(k).unwrap_or(0))
}

/// The first `tree_size` leaves, or an error if there are not that many.
fn prefix(leaves: &[Hash], tree_size: u64) -> Result<&[Hash], MerkleError> {
    let too_big = || MerkleError::SizeBeyondLeaves {
        size: tree_size,
        available: leaves.len() as u64,
    };
    let n = usize::try_from(tree_size).map_err(|_| too_big())?;
    leaves.get(..n).ok_or_else(too_big)
}

/// RFC 9162 §2.1.3.1 `PATH(index, D[tree_size])`: the inclusion proof for
/// leaf `index` in the tree made of the first `tree_size` leaves, ordered
/// from the leaf's sibling up to the root's child.
pub fn inclusion_proof(
    leaves: &[Hash],
    index: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if index >= tree_size {
        return Err(MerkleError::IndexBeyondSize {
            index,
            size: tree_size,
        });
    }
    let tree = prefix(leaves, tree_size)?;
    let mut out = Vec::new();
    path(index, tree, &mut out);
    Ok(out)
}

fn path(m: u64, leaves: &[Hash], out: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let (left, right) = split(leaves);
    let k = left.len() as u64;
    if m < k {
        path(m, left, out);
        out.push(root_from_leaf_hashes(right));
    } else {
        path(m - k, right, out);
        out.push(root_from_leaf_hashes(left));
    }
}

/// RFC 9162 §2.1.4.1 `PROOF(size1, D[size2])`: the consistency proof that
/// the tree of the first `size1` leaves is a prefix of the tree of the first
/// `size2` leaves. Empty when `size1 == size2`; refused when
/// `0 == size1 < size2` (such a proof is meaningless).
pub fn consistency_proof(
    leaves: &[Hash],
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if size1 > size2 {
        return Err(MerkleError::SizesOutOfOrder { size1, size2 });
    }
    let tree = prefix(leaves, size2)?;
    if size1 == size2 {
        return Ok(Vec::new());
    }
    if size1 == 0 {
        return Err(MerkleError::ConsistencyFromEmptyTree { size2 });
    }
    let mut out = Vec::new();
    subproof(size1, tree, true, &mut out);
    Ok(out)
}

fn subproof(m: u64, leaves: &[Hash], b: bool, out: &mut Vec<Hash>) {
    if m == leaves.len() as u64 {
        if !b {
            out.push(root_from_leaf_hashes(leaves));
        }
        return;
    }
    // Here 0 < m < n, hence n >= 2.
    let (left, right) = split(leaves);
    let k = left.len() as u64;
    if m <= k {
        subproof(m, left, b, out);
        out.push(root_from_leaf_hashes(right));
    } else {
        subproof(m - k, right, false, out);
        out.push(root_from_leaf_hashes(left));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{hash_from_slice, leaf_hash};

    /// The leaf inputs of the RFC 6962 / transparency-dev reference tree.
    pub(crate) fn reference_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| leaf_hash(&hex::decode(h).unwrap()))
        .collect()
    }

    fn hex32(s: &str) -> Hash {
        hash_from_slice(&hex::decode(s).unwrap()).unwrap()
    }

    #[test]
    fn known_roots_of_reference_tree() {
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves = reference_leaves();
        assert_eq!(root_from_leaf_hashes(&[]), empty_root());
        for (i, want) in roots.iter().enumerate() {
            assert_eq!(
                root_from_leaf_hashes(&leaves[..=i]),
                hex32(want),
                "size {}",
                i + 1
            );
        }
    }

    #[test]
    fn known_small_proofs() {
        let l = reference_leaves();
        let h = |a: usize, b: usize| root_from_leaf_hashes(&l[a..b]);
        // PATH(0, D[8]) = [d1, MTH(d2..4), MTH(d4..8)]
        assert_eq!(
            inclusion_proof(&l, 0, 8).unwrap(),
            vec![l[1], h(2, 4), h(4, 8)]
        );
        // PATH(6, D[7]) = [MTH(d4..6), MTH(d0..4)]
        assert_eq!(inclusion_proof(&l, 6, 7).unwrap(), vec![h(4, 6), h(0, 4)]);
        // PROOF(3, D[7]) = [c, d, g, l] of RFC 9162 §2.1.5.
        assert_eq!(
            consistency_proof(&l, 3, 7).unwrap(),
            vec![l[2], l[3], h(0, 2), h(4, 7)]
        );
        // PROOF(4, D[7]) = [l]; PROOF(6, D[7]) = [i, j, k].
        assert_eq!(consistency_proof(&l, 4, 7).unwrap(), vec![h(4, 7)]);
        assert_eq!(
            consistency_proof(&l, 6, 7).unwrap(),
            vec![h(4, 6), l[6], h(0, 4)]
        );
        assert_eq!(inclusion_proof(&l, 0, 1).unwrap(), Vec::<Hash>::new());
        assert_eq!(consistency_proof(&l, 5, 5).unwrap(), Vec::<Hash>::new());
    }

    #[test]
    fn generators_validate_arguments() {
        let l = reference_leaves();
        assert_eq!(
            inclusion_proof(&l, 8, 8).unwrap_err().to_string(),
            "leaf index 8 is not below tree size 8"
        );
        assert_eq!(
            inclusion_proof(&l, 0, 9),
            Err(MerkleError::SizeBeyondLeaves {
                size: 9,
                available: 8
            })
        );
        assert_eq!(
            consistency_proof(&l, 5, 4),
            Err(MerkleError::SizesOutOfOrder { size1: 5, size2: 4 })
        );
        assert_eq!(
            consistency_proof(&l, 0, 4),
            Err(MerkleError::ConsistencyFromEmptyTree { size2: 4 })
        );
        assert_eq!(consistency_proof(&l, 0, 0).unwrap(), Vec::<Hash>::new());
        assert!(consistency_proof(&l, 1, 9).is_err());
        assert!(inclusion_proof(&l, 0, u64::MAX).is_err());
    }
}
