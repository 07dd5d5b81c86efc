use tryggdel_merkle::MerkleError;

/// A policy that cannot be read, or a checkpoint it does not accept.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy text is malformed at a line.
    #[error("policy line {line}: {reason}")]
    Line { line: usize, reason: String },
    /// The policy has no quorum line.
    #[error("policy has no quorum line")]
    NoQuorum,
    /// The note or its checkpoint body is malformed.
    #[error("checkpoint note: {0}")]
    Note(MerkleError),
    /// The checkpoint's origin is not a log of the policy.
    #[error("the policy has no log with origin {0:?}")]
    UnknownLog(String),
    /// The log's signature is missing or does not verify.
    #[error("log signature: {0}")]
    LogSignature(MerkleError),
    /// A cosignature from a witness of the policy does not verify.
    #[error("the cosignature of witness {0} does not verify")]
    InvalidCosignature(String),
    /// The valid cosignatures do not meet the quorum.
    #[error("the quorum is not met (cosigned by: {})", cosigned_by.join(", "))]
    QuorumNotMet { cosigned_by: Vec<String> },
    /// The newest cosignature is older than allowed.
    #[error(
        "the newest cosignature (time {newest}) is more than {max_age_seconds} s before now ({now})"
    )]
    TooOld {
        newest: u64,
        now: u64,
        max_age_seconds: u64,
    },
    /// A cosignature claims a time well after now.
    #[error("a cosignature's time {time} is after now ({now})")]
    CosignatureFromTheFuture { time: u64, now: u64 },
}

/// A malformed tlog-witness request or tlog-proof bundle.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The text is not in the expected form.
    #[error("{0}")]
    Malformed(&'static str),
    /// The embedded note is malformed.
    #[error("note: {0}")]
    Note(#[from] MerkleError),
}

/// A tlog-proof bundle that does not verify.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bundle is malformed.
    #[error("malformed bundle: {0}")]
    Format(#[from] FormatError),
    /// The checkpoint does not satisfy the policy.
    #[error("{0}")]
    Policy(#[from] PolicyError),
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error("inclusion proof: {0}")]
    Inclusion(MerkleError),
}
