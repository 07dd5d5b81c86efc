//! The crate's single error type.

use thiserror::Error;

/// Everything that can go wrong building or checking Merkle proofs and
/// checkpoints. Messages are lowercase and name what failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// A leaf index is outside the tree.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexBeyondSize { index: u64, size: u64 },

    /// A requested tree size is larger than the number of leaves available.
    #[error("tree size {size} exceeds the {available} leaves available")]
    SizeBeyondLeaves { size: u64, available: u64 },

    /// `size1 > size2` in a consistency request.
    #[error("size1 {size1} is greater than size2 {size2}")]
    SizesOutOfOrder { size1: u64, size2: u64 },

    /// A consistency proof from the empty tree was requested or presented.
    #[error("consistency proof from an empty tree to size {size2} is meaningless")]
    ConsistencyFromEmptyTree { size2: u64 },

    /// Inclusion proof of the wrong length (checked before hashing).
    #[error("inclusion proof has {got} hashes, expected {want}")]
    InclusionProofLength { got: usize, want: usize },

    /// Consistency proof of the wrong length (checked before hashing).
    #[error("consistency proof has {got} hashes, expected {want}")]
    ConsistencyProofLength { got: usize, want: usize },

    /// The inclusion path ended before reaching the root.
    #[error("inclusion proof not fully consumed")]
    InclusionProofNotConsumed,

    /// The consistency path ended before reaching the root of size2.
    #[error("consistency proof not fully consumed")]
    ConsistencyProofNotConsumed,

    /// The recomputed (second) root differs from the expected root.
    #[error("root mismatch")]
    RootMismatch,

    /// The root recomputed for size1 from a consistency proof differs from root1.
    #[error("size1 root mismatch")]
    FirstRootMismatch,

    /// A size-0 tree must have the empty root, `SHA-256("")`.
    #[error("root of an empty tree is not the empty root")]
    EmptyTreeRootMismatch,

    /// A byte string that should be a hash has the wrong length.
    #[error("hash has {got} bytes, expected 32")]
    InvalidHashLength { got: usize },

    /// Internal consistency failure of [`crate::MerkleTree`]'s storage.
    #[error("merkle tree has no node at level {level} index {index}")]
    MissingNode { level: u32, index: u64 },

    /// A checkpoint origin is empty or contains control characters.
    #[error("invalid checkpoint origin: {0}")]
    InvalidOrigin(&'static str),

    /// A signed-note key name is empty or contains whitespace or `+`.
    #[error("invalid key name {0:?}: must be non-empty without whitespace or '+'")]
    InvalidKeyName(String),

    /// The signer's key name differs from the checkpoint origin.
    #[error("checkpoint origin {origin:?} does not match signer name {name:?}")]
    SignerOriginMismatch { origin: String, name: String },

    /// The note text does not follow the signed-note format.
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),

    /// The note body does not follow the tlog-checkpoint format.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),

    /// The checkpoint's origin line is not the pinned origin.
    #[error("checkpoint origin {got:?} does not match expected origin {expected:?}")]
    OriginMismatch { expected: String, got: String },

    /// A signature line from the pinned key failed to verify.
    #[error("signature from key {0:?} does not verify")]
    InvalidSignature(String),

    /// No signature line from the pinned key was present.
    #[error("note has no signature from key {0:?}")]
    NoKnownSignature(String),

    /// A verifier key string (`name+hash+key`) could not be parsed.
    #[error("invalid verifier key: {0}")]
    InvalidVerifierKey(&'static str),
}
