//! tryggdel-merkle: a pure (no I/O) RFC 9162 Merkle tree over SHA-256 for the
//! append-only audit log (a transparency log), plus C2SP signed checkpoints.
//!
//! Invariants this crate upholds:
//!
//! * Hashing is exactly RFC 9162 §2.1.1 / RFC 6962: leaves are
//!   `SHA-256(0x00 ‖ entry)`, interior nodes `SHA-256(0x01 ‖ left ‖ right)`,
//!   and the empty tree is `SHA-256("")`. The tree shape is fully determined
//!   by the tree size (split at the largest power of two below `n`).
//! * Proof generation ([`inclusion_proof`], [`consistency_proof`] and the
//!   [`MerkleTree`] methods) produces exactly RFC 9162 `PATH` / `PROOF`
//!   output; the slice-based and tree-based generators agree hash for hash.
//! * Verification is pure and fail-closed: sizes and indices are validated
//!   first (`index < size`, `size1 <= size2`), the proof length is checked
//!   against the length the sizes dictate *before* any hashing, every proof
//!   hash must be consumed, and roots are compared last. Consistency from an
//!   empty tree to a non-empty one is refused as meaningless; the root of a
//!   size-0 tree must be the empty root.
//! * [`MerkleTree`] is append-only: leaves can be pushed, never changed or
//!   removed, and it keeps about two hashes per leaf (every complete, aligned
//!   `2^k` subtree), so roots and proofs for any past size cost `O(log n)`
//!   hash operations.
//! * Checkpoints ([`checkpoint`]) follow C2SP tlog-checkpoint and signed-note
//!   strictly; a checkpoint is only returned after a signature from the
//!   pinned key over the exact body bytes has verified.
//! * No `unsafe`, no panics on any input (no `unwrap`/`expect` outside tests).

#![forbid(unsafe_code)]

pub mod checkpoint;
mod error;
mod hash;
mod proof;
mod tree;
mod verify;

pub use error::MerkleError;
pub use hash::{HASH_LEN, Hash, empty_root, hash_from_slice, leaf_hash, node_hash};
pub use proof::{consistency_proof, inclusion_proof, root_from_leaf_hashes};
pub use tree::MerkleTree;
pub use verify::{
    consistency_proof_len, inclusion_proof_len, root_from_inclusion_proof, verify_consistency,
    verify_inclusion,
};

/// Largest power of two strictly smaller than `n`; requires `n >= 2`
/// (RFC 9162 §2.1.1's `k`). Returns 0 for `n < 2`.
pub(crate) fn split_point(n: u64) -> u64 {
    if n < 2 {
        return 0;
    }
    1u64 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::split_point;

    #[test]
    fn split_point_is_largest_power_of_two_below_n() {
        for n in 2u64..2000 {
            let k = split_point(n);
            assert!(k.is_power_of_two(), "n={n}");
            assert!(k < n && n <= 2 * k, "n={n} k={k}");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
        assert_eq!(split_point(1), 0);
    }
}
