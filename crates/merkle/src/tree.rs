//! An append-only in-memory Merkle tree storing every complete, aligned
//! subtree hash, so that roots and proofs for any size up to the current one
//! cost `O(log n)` hash operations.

use crate::{Hash, MerkleError, empty_root, node_hash, split_point};

/// Append-only Merkle tree (RFC 9162 hashing).
///
/// `levels[0]` holds the leaf hashes; `levels[k][i]` is the root of the
/// complete subtree over leaves `[i * 2^k, (i + 1) * 2^k)`. Level `k` holds
/// `floor(n / 2^k)` hashes, about `2n` hashes in total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl Default for MerkleTree {
    fn default() -> Self {
        Self::new()
    }
}

impl MerkleTree {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self {
            levels: vec![Vec::new()],
        }
    }

    /// Rebuilds a tree from its leaf hashes in order (e.g. at start-up).
    #[must_use]
    pub fn from_leaf_hashes<I: IntoIterator<Item = Hash>>(leaves: I) -> Self {
        let mut tree = Self::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Appends a leaf hash and returns its index.
    pub fn push(&mut self, leaf_hash: Hash) -> u64 {
        let index = self.len();
        let mut carry = Some(leaf_hash);
        let mut level = 0;
        while let Some(hash) = carry.take() {
            if level == self.levels.len() {
                self.levels.push(Vec::new());
            }
            let Some(nodes) = self.levels.get_mut(level) else {
                break;
            };
            nodes.push(hash);
            // An even count means a new complete subtree one level up.
            if nodes.len() % 2 == 0
                && let [.., left, right] = nodes.as_slice()
            {
                carry = Some(node_hash(left, right));
            }
            level += 1;
        }
        index
    }

    /// Drops every leaf from index `len` on, as if they had never been pushed (a no-op when
    /// the tree is not longer than `len`). For a writer whose append did not become durable.
    pub fn truncate(&mut self, len: u64) {
        for (level, nodes) in self.levels.iter_mut().enumerate() {
            let keep = usize::try_from(len >> level.min(63)).unwrap_or(usize::MAX);
            nodes.truncate(keep);
        }
        // Level k exists once some subtree of 2^k leaves did; keep the shape `push` builds.
        while self.levels.len() > 1 && self.levels.last().is_some_and(Vec::is_empty) {
            self.levels.pop();
        }
    }

    /// Number of leaves.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Whether the tree has no leaves.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hash of leaf `index`.
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, MerkleError> {
        let size = self.len();
        if index >= size {
            return Err(MerkleError::IndexBeyondSize { index, size });
        }
        self.node(0, index)
    }

    /// The root at the current size: folds the stored "peaks" (the last
    /// hash of every level with an odd count) from the smallest up.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut acc: Option<Hash> = None;
        for nodes in &self.levels {
            if nodes.len() % 2 == 1
                && let Some(peak) = nodes.last()
            {
                acc = Some(match acc {
                    None => *peak,
                    Some(right) => node_hash(peak, &right),
                });
            }
        }
        acc.unwrap_or_else(empty_root)
    }

    /// The roots of the complete subtrees along the right edge (one per set
    /// bit of the size), largest first, each with its number of leaves:
    /// what a streaming hasher that forgets the leaves keeps.
    #[must_use]
    pub fn peaks(&self) -> Vec<(u64, Hash)> {
        let mut peaks = Vec::new();
        for (level, nodes) in self.levels.iter().enumerate().rev() {
            if nodes.len() % 2 == 1
                && let Some(peak) = nodes.last()
            {
                peaks.push((1u64 << level.min(63), *peak));
            }
        }
        peaks
    }

    /// The root of the tree made of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, MerkleError> {
        self.check_size(size)?;
        self.range_hash(0, size)
    }

    /// RFC 9162 `PATH(index, D[size])`, identical to
    /// [`crate::inclusion_proof`] over the same leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, MerkleError> {
        if index >= size {
            return Err(MerkleError::IndexBeyondSize { index, size });
        }
        self.check_size(size)?;
        let mut out = Vec::new();
        self.path(index, 0, size, &mut out)?;
        Ok(out)
    }

    /// RFC 9162 `PROOF(size1, D[size2])`, identical to
    /// [`crate::consistency_proof`] over the same leaves.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, MerkleError> {
        if size1 > size2 {
            return Err(MerkleError::SizesOutOfOrder { size1, size2 });
        }
        self.check_size(size2)?;
        if size1 == size2 {
            return Ok(Vec::new());
        }
        if size1 == 0 {
            return Err(MerkleError::ConsistencyFromEmptyTree { size2 });
        }
        let mut out = Vec::new();
        self.subproof(size1, 0, size2, true, &mut out)?;
        Ok(out)
    }

    fn check_size(&self, size: u64) -> Result<(), MerkleError> {
        let available = self.len();
        if size > available {
            return Err(MerkleError::SizeBeyondLeaves { size, available });
        }
        Ok(())
    }

    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        usize::try_from(level)
            .ok()
            .and_then(|l| self.levels.get(l))
            .zip(usize::try_from(index).ok())
            .and_then(|(nodes, i)| nodes.get(i))
            .copied()
            .ok_or(MerkleError::MissingNode { level, index })
    }

    /// `MTH(D[start:end])` for `end <= len`. Complete aligned subtrees are
    /// read from storage; anything else is split as in RFC 9162 §2.1.1. For
    /// the ranges proofs ask for (a right edge), the left part is always a
    /// stored subtree, so this costs `O(log n)` hashes.
    fn range_hash(&self, start: u64, end: u64) -> Result<Hash, MerkleError> {
        let n = end - start;
        if n == 0 {
            return Ok(empty_root());
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let level = n.trailing_zeros();
            return self.node(level, start >> level);
        }
        let k = split_point(n);
        Ok(node_hash(
            &self.range_hash(start, start + k)?,
            &self.range_hash(start + k, end)?,
        ))
    }

    fn path(&self, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), MerkleError> {
        let n = end - start;
        if n <= 1 {
            return Ok(());
        }
        let k = split_point(n);
        if m < k {
            self.path(m, start, start + k, out)?;
            out.push(self.range_hash(start + k, end)?);
        } else {
            self.path(m - k, start + k, end, out)?;
            out.push(self.range_hash(start, start + k)?);
        }
        Ok(())
    }

    fn subproof(
        &self,
        m: u64,
        start: u64,
        end: u64,
        b: bool,
        out: &mut Vec<Hash>,
    ) -> Result<(), MerkleError> {
        let n = end - start;
        if m == n {
            if !b {
                out.push(self.range_hash(start, end)?);
            }
            return Ok(());
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, start + k, b, out)?;
            out.push(self.range_hash(start + k, end)?);
        } else {
            self.subproof(m - k, start + k, end, false, out)?;
            out.push(self.range_hash(start, start + k)?);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{consistency_proof, inclusion_proof, leaf_hash, root_from_leaf_hashes};

    #[test]
    fn truncate_is_as_if_the_leaves_were_never_pushed() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for len in [0usize, 1, 2, 3, 31, 32, 33, 64, 69, 70, 100] {
            let mut tree = MerkleTree::from_leaf_hashes(leaves.iter().copied());
            tree.truncate(len as u64);
            let kept = &leaves[..len.min(leaves.len())];
            assert_eq!(
                tree,
                MerkleTree::from_leaf_hashes(kept.iter().copied()),
                "{len}"
            );
            tree.push(leaf_hash(b"after"));
            let mut expected = kept.to_vec();
            expected.push(leaf_hash(b"after"));
            assert_eq!(tree.root(), root_from_leaf_hashes(&expected), "{len}");
        }
    }

    #[test]
    fn storage_is_about_two_hashes_per_leaf() {
        let tree = MerkleTree::from_leaf_hashes((0u32..1000).map(|i| leaf_hash(&i.to_be_bytes())));
        let stored: usize = tree.levels.iter().map(Vec::len).sum();
        assert!(stored < 2 * 1000, "{stored}");
        assert_eq!(tree.levels[3].len(), 1000 / 8);
    }

    #[test]
    fn matches_slice_functions_exhaustively_for_small_trees() {
        let leaves: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut tree = MerkleTree::new();
        assert_eq!(tree.root(), empty_root());
        for (i, leaf) in leaves.iter().enumerate() {
            assert_eq!(tree.push(*leaf), i as u64);
            let n = tree.len();
            assert_eq!(tree.root(), root_from_leaf_hashes(&leaves[..=i]));
            for size in 0..=n {
                assert_eq!(
                    tree.root_at(size).unwrap(),
                    root_from_leaf_hashes(&leaves[..size as usize])
                );
                for index in 0..size {
                    assert_eq!(
                        tree.inclusion_proof(index, size).unwrap(),
                        inclusion_proof(&leaves, index, size).unwrap()
                    );
                }
                for size1 in 0..=size {
                    assert_eq!(
                        tree.consistency_proof(size1, size),
                        consistency_proof(&leaves, size1, size)
                    );
                }
            }
        }
    }

    #[test]
    fn peaks_are_the_complete_subtrees_along_the_right_edge() {
        let leaves: Vec<Hash> = (0u32..45).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut tree = MerkleTree::new();
        assert!(tree.peaks().is_empty());
        for (i, leaf) in leaves.iter().enumerate() {
            tree.push(*leaf);
            let n = i as u64 + 1;
            let peaks = tree.peaks();
            // One peak per set bit of the size, largest first, covering the leaves in order.
            assert_eq!(peaks.len() as u32, n.count_ones(), "{n}");
            let mut start = 0u64;
            for &(width, hash) in &peaks {
                assert!(width.is_power_of_two() && n & width != 0, "{n} {width}");
                let end = start + width;
                assert_eq!(
                    hash,
                    root_from_leaf_hashes(&leaves[start as usize..end as usize]),
                    "{n} [{start}, {end})"
                );
                start = end;
            }
            assert_eq!(start, n);
        }
    }

    #[test]
    fn refuses_out_of_range_requests() {
        let tree = MerkleTree::from_leaf_hashes([leaf_hash(b"a"), leaf_hash(b"b")]);
        assert_eq!(
            tree.root_at(3),
            Err(MerkleError::SizeBeyondLeaves {
                size: 3,
                available: 2
            })
        );
        assert!(tree.inclusion_proof(2, 2).is_err());
        assert!(tree.inclusion_proof(0, 3).is_err());
        assert!(tree.consistency_proof(2, 1).is_err());
        assert!(tree.consistency_proof(1, 3).is_err());
        assert!(tree.leaf_hash(2).is_err());
        assert_eq!(tree.leaf_hash(1).unwrap(), leaf_hash(b"b"));
        assert!(!tree.is_empty());
        assert!(MerkleTree::default().is_empty());
    }
}
