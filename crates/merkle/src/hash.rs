//! RFC 9162 §2.1.1 hashing primitives.

use sha2::{Digest, Sha256};

use crate::MerkleError;

/// Length in bytes of every hash in the tree (SHA-256).
pub const HASH_LEN: usize = 32;

/// A SHA-256 tree hash.
pub type Hash = [u8; HASH_LEN];

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// `SHA-256(0x00 ‖ entry)`: the hash of a leaf holding `entry`.
#[must_use]
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// `SHA-256("")`: the root of the empty tree.
#[must_use]
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Converts a decoded byte string into a [`Hash`], refusing any length other
/// than 32.
pub fn hash_from_slice(bytes: &[u8]) -> Result<Hash, MerkleError> {
    Hash::try_from(bytes).map_err(|_| MerkleError::InvalidHashLength { got: bytes.len() })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> Hash {
        hash_from_slice(&hex::decode(s).unwrap()).unwrap()
    }

    #[test]
    fn empty_root_is_sha256_of_empty_string() {
        assert_eq!(
            empty_root(),
            hex32("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    #[test]
    fn leaf_and_node_hashes_are_domain_separated() {
        // RFC 6962 test vector: leaf hash of the empty entry.
        assert_eq!(
            leaf_hash(b""),
            hex32("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
        let mut concat = Vec::new();
        concat.extend_from_slice(&a);
        concat.extend_from_slice(&b);
        // A node is not the leaf hash of its children's concatenation.
        assert_ne!(node_hash(&a, &b), leaf_hash(&concat));
    }

    #[test]
    fn hash_from_slice_checks_length() {
        assert_eq!(hash_from_slice(&[7; 32]).unwrap(), [7; 32]);
        assert_eq!(
            hash_from_slice(&[7; 31]),
            Err(MerkleError::InvalidHashLength { got: 31 })
        );
        assert_eq!(
            hash_from_slice(&[]).unwrap_err().to_string(),
            "hash has 0 bytes, expected 32"
        );
    }
}
